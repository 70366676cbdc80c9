//! The generated code of a small spec, formatted as `cargo expand` would show it.

use std::path::Path;

use proc_macro2::TokenStream;
use quote::quote;
use regnet_codegen::expand;

fn expand_formatted(input: TokenStream) -> String {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let tokens = expand(input, Some(&manifest_dir));
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
    assert!(text.contains("pub(crate) struct Backbone {"), "{text}");
    assert!(
        text.contains("pub const NAME: &'static str = \"RegNetX-200MF\";"),
        "{text}"
    );
}

#[test]
fn bad_specs_expand_to_compile_errors_not_panics() {
    let text = expand(
        quote!("specs/does_not_exist.yaml"),
        Some(Path::new(env!("CARGO_MANIFEST_DIR"))),
    )
    .to_string();
    assert!(text.contains("compile_error"), "{text}");
    assert!(text.contains("spec file not found"), "{text}");
    let text = expand(quote!(42), None).to_string();
    assert!(text.contains("compile_error"), "{text}");
}
