//! `regnet!`: compiles a RegNet spec (YAML) into a statically shaped network type.
//! All the work happens in `regnet-codegen`; this crate only hands it the tokens and the
//! calling crate's environment.

use std::path::PathBuf;

use proc_macro_crate::{FoundCrate, crate_name};

/// Compiles a RegNet spec into a network type at build time.
///
/// `regnet!("specs/regnety_1.6gf.yaml")` defines `pub type RegNetY1_6GF` (named from the spec's
/// `name`), a `regnet::runtime::Model`; `regnet!(pub Backbone = "specs/x.yaml")` names the type.
/// The path is relative to the crate's root (`CARGO_MANIFEST_DIR`), and editing the spec
/// rebuilds the crate. A bad spec is a compile error for each broken rule, naming the file,
/// line:column and field.
///
/// The generated code names the `regnet` crate as the calling crate's `Cargo.toml` does (so a
/// renamed dependency works); a crate that re-exports `regnet!` passes its own path:
/// `regnet!("specs/x.yaml", crate = ::my_wrapper::regnet)`.
#[proc_macro]
pub fn regnet(input: proc_macro::TokenStream) -> proc_macro::TokenStream {
    let manifest_dir = std::env::var_os("CARGO_MANIFEST_DIR").map(PathBuf::from);
    // `regnet` itself declares `extern crate self as regnet`, so `::regnet` works inside it; a
    // crate that does not depend on `regnet` directly (a wrapper's user) must say `crate = ...`.
    let name = match crate_name("regnet") {
        Ok(FoundCrate::Name(name)) => name,
        Ok(FoundCrate::Itself) | Err(_) => "regnet".to_owned(),
    };
    regnet_codegen::expand(input.into(), manifest_dir.as_deref(), &name).into()
}
