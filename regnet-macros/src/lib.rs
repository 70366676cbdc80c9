//! `regnet!`: compiles a RegNet spec (YAML) into a statically shaped network type.
//! All the work happens in `regnet-codegen`; this crate only hands it the tokens.

use std::path::PathBuf;

/// Compiles a RegNet spec into a network type at build time.
///
/// `regnet!("specs/regnety_1.6gf.yaml")` defines `pub struct RegNetY1_6GF` (named from the
/// spec's `name`); `regnet!(pub Backbone = "specs/x.yaml")` names the type. The path is relative
/// to the crate's root (`CARGO_MANIFEST_DIR`), and editing the spec rebuilds the crate. A bad
/// spec is a compile error for each broken rule, naming the file, line:column and field.
#[proc_macro]
pub fn regnet(input: proc_macro::TokenStream) -> proc_macro::TokenStream {
    let manifest_dir = std::env::var_os("CARGO_MANIFEST_DIR").map(PathBuf::from);
    regnet_codegen::expand(input.into(), manifest_dir.as_deref()).into()
}
