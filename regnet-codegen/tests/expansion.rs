//! The generated code of a small spec, formatted as `cargo expand` would show it.

use std::path::Path;

use proc_macro2::TokenStream;
use quote::quote;
use regnet_codegen::expand;

fn expand_formatted(input: TokenStream) -> String {
    expand_named(input, "regnet")
}

/// The expansion in a crate whose manifest names the `regnet` crate `facade`.
fn expand_named(input: TokenStream, facade: &str) -> String {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let tokens = expand(input, Some(&manifest_dir), facade);
    let file: syn::File = syn::parse2(tokens).expect("the expansion parses as Rust items");
    let text = prettyplease::unparse(&file);
    // The rebuild-tracking include names this machine's absolute path.
    let root = manifest_dir.canonicalize().unwrap();
    text.replace(&manifest_dir.display().to_string(), "$ROOT")
        .replace(&root.display().to_string(), "$ROOT")
}

#[test]
fn regnety_200mf_expansion() {
    insta::assert_snapshot!(expand_formatted(quote!("specs/regnety_200mf.yaml")));
}

#[test]
fn named_type_keeps_its_visibility() {
    let text = expand_formatted(quote!(pub(crate) Backbone = "specs/regnetx_200mf.yaml"));
    assert!(
        text.contains(
            "pub(crate) type Backbone = ::regnet::runtime::Model<BackboneArchitecture, 224, 1000>;"
        ),
        "{text}"
    );
    assert!(
        text.contains("pub(crate) struct BackboneArchitecture;"),
        "{text}"
    );
    assert!(text.contains("name: \"RegNetX-200MF\","), "{text}");
}

#[test]
fn the_generated_code_names_the_regnet_crate_as_the_manifest_or_the_input_does() {
    let renamed = expand_named(quote!("specs/regnetx_200mf.yaml"), "rn");
    assert!(renamed.contains("::rn::runtime::Model<"), "{renamed}");
    assert!(!renamed.contains("::regnet::"), "{renamed}");
    let wrapped = expand_named(
        quote!(pub Net = "specs/regnetx_200mf.yaml", crate = ::wrapper::regnet,),
        "rn",
    );
    assert!(
        wrapped.contains("::wrapper::regnet::runtime::Model<"),
        "{wrapped}"
    );
    assert!(!wrapped.contains("::rn::"), "{wrapped}");
}

#[test]
fn options_after_the_path_other_than_one_crate_are_refused() {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    for (input, message) in [
        (
            quote!("specs/regnetx_200mf.yaml", krate = ::x),
            "expected `crate = path::to::regnet`",
        ),
        (
            quote!("specs/regnetx_200mf.yaml", crate = ::x, crate = ::y),
            "`crate = ...` is given twice",
        ),
        (quote!("specs/regnetx_200mf.yaml" ::x), "unexpected tokens"),
    ] {
        let text = expand(input, Some(&manifest_dir), "regnet").to_string();
        assert!(text.contains("compile_error"), "{text}");
        assert!(text.contains(message), "{message}: {text}");
    }
}

#[test]
fn bad_specs_expand_to_compile_errors_not_panics() {
    let text = expand(
        quote!("specs/does_not_exist.yaml"),
        Some(Path::new(env!("CARGO_MANIFEST_DIR"))),
        "regnet",
    )
    .to_string();
    assert!(text.contains("compile_error"), "{text}");
    assert!(text.contains("spec file not found"), "{text}");
    let text = expand(quote!(42), None, "regnet").to_string();
    assert!(text.contains("compile_error"), "{text}");
}

/// A folder of its own under the temp directory, as a crate root for `expand`; removed when
/// dropped.
struct CrateRoot(std::path::PathBuf);

impl CrateRoot {
    fn new(name: &str) -> Self {
        let path =
            std::env::temp_dir().join(format!("regnet-expand-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        CrateRoot(path)
    }
}

impl Drop for CrateRoot {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The compile errors of `regnet!("spec.yaml")` in the crate at `root`, one per line.
fn errors(root: &Path) -> Vec<String> {
    let tokens = expand(quote!("spec.yaml"), Some(root), "regnet");
    let file: syn::File = syn::parse2(tokens).unwrap();
    file.items
        .iter()
        .map(|item| {
            let syn::Item::Macro(call) = item else {
                panic!("expected only compile_error!s")
            };
            let message: syn::LitStr = call.mac.parse_body().unwrap();
            message.value()
        })
        .collect()
}

/// Locating each key re-parsed the spec: 3,000 keys took 47 s to expand.
#[test]
fn thousands_of_unknown_keys_expand_quickly_to_a_bounded_list_of_errors() {
    let root = CrateRoot::new("keys");
    let keys: String = (0..3000).map(|i| format!("key{i}: 1\n")).collect();
    std::fs::write(
        root.0.join("spec.yaml"),
        format!("d: 13\nw0: 24\nwa: 36.44\nwm: 2.49\ng: 8\n{keys}"),
    )
    .unwrap();
    let start = std::time::Instant::now();
    let lines = errors(&root.0);
    let elapsed = start.elapsed();
    assert!(elapsed < std::time::Duration::from_secs(5), "{elapsed:?}");
    assert_eq!(lines.len(), 21);
    assert!(
        lines[0].starts_with("spec.yaml:6:1: field `key0`: unknown key"),
        "{}",
        lines[0]
    );
    assert_eq!(
        lines[20],
        "spec.yaml: 2980 more problems not shown (the first 20 are above)"
    );
}

/// The macro waited forever for a writer on a FIFO, and called a directory "not found".
#[cfg(unix)]
#[test]
fn a_fifo_or_a_directory_is_named_not_read() {
    let root = CrateRoot::new("fifo");
    let made = std::process::Command::new("mkfifo")
        .arg(root.0.join("spec.yaml"))
        .status();
    if !made.is_ok_and(|status| status.success()) {
        eprintln!("SKIPPED: mkfifo is not available");
        return;
    }
    let (sender, receiver) = std::sync::mpsc::channel();
    let path = root.0.clone();
    std::thread::spawn(move || sender.send(errors(&path)));
    let lines = receiver
        .recv_timeout(std::time::Duration::from_secs(10))
        .expect("the macro blocked on a FIFO");
    assert_eq!(
        lines,
        ["spec.yaml: cannot read the spec: it is a FIFO (named pipe), not a regular file"]
    );
    let root = CrateRoot::new("directory");
    std::fs::create_dir(root.0.join("spec.yaml")).unwrap();
    assert_eq!(
        errors(&root.0),
        ["spec.yaml: cannot read the spec: it is a directory, not a regular file"]
    );
}
