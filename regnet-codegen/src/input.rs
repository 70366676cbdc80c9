use std::path::{Path, PathBuf};

use proc_macro2::Span;
use regnet_spec::{Network, SpecError, compile_file};
use syn::parse::{Parse, ParseStream};
use syn::{Ident, LitStr, Token, Visibility};

/// `regnet!("specs/x.yaml")` or `regnet!(pub Name = "specs/x.yaml")`.
pub struct MacroInput {
    /// `pub` when the type is not named explicitly.
    pub visibility: Visibility,
    /// The type's name when written (`Name = ...`); `None` derives it from the spec's `name`
    /// or the file stem.
    pub type_name: Option<Ident>,
    /// The spec's path as written, relative to the crate's root (`CARGO_MANIFEST_DIR`); errors
    /// about the spec point at this literal.
    pub path: LitStr,
}

impl Parse for MacroInput {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let usage = |error: syn::Error| {
            syn::Error::new(
                error.span(),
                "expected the spec's path as a string literal: regnet!(\"specs/x.yaml\") or \
                 regnet!(pub Name = \"specs/x.yaml\")",
            )
        };
        let (visibility, type_name) = if input.peek(LitStr) {
            (syn::parse_quote!(pub), None)
        } else {
            let visibility: Visibility = input.parse()?;
            let name: Ident = input.parse().map_err(usage)?;
            input.parse::<Token![=]>().map_err(usage)?;
            (visibility, Some(name))
        };
        let path = input.parse().map_err(usage)?;
        input.parse::<Option<Token![,]>>()?;
        Ok(MacroInput {
            visibility,
            type_name,
            path,
        })
    }
}

/// A macro input whose spec compiled.
pub struct Resolved {
    /// The compiled spec.
    pub network: Network,
    /// The type's name: the one written, else derived (`RegNetY-1.6GF` → `RegNetY1_6GF`).
    pub type_name: Ident,
    /// Absolute path of the spec, for rebuild tracking.
    pub tracked_path: String,
}

impl MacroInput {
    /// Reads and compiles the spec relative to `manifest_dir`, reporting every problem at the
    /// path literal.
    pub fn resolve(&self, manifest_dir: Option<&Path>) -> syn::Result<Resolved> {
        let written = self.path.value();
        let span = self.path.span();
        let fail = |message: String| syn::Error::new(span, message);
        if Path::new(&written).is_absolute() {
            return Err(fail(format!(
                "`{written}` is an absolute path, which only works on this machine; write it \
                 relative to the crate's root (CARGO_MANIFEST_DIR)"
            )));
        }
        let manifest_dir = manifest_dir.ok_or_else(|| {
            fail("CARGO_MANIFEST_DIR is not set; regnet! must be built by cargo".into())
        })?;
        let path: PathBuf = manifest_dir.join(&written);
        if !path.is_file() {
            return Err(fail(format!(
                "{written}: spec file not found (paths are relative to the crate's root, \
                 CARGO_MANIFEST_DIR)"
            )));
        }
        let network = compile_file(&path, &written).map_err(|error| spec_errors(&error, span))?;
        let type_name = match &self.type_name {
            Some(name) => name.clone(),
            None => derive_type_name(&network, &written).map_err(fail)?,
        };
        Ok(Resolved {
            network,
            type_name,
            tracked_path: path.display().to_string(),
        })
    }
}

/// One compile error per problem, all pointing at the path literal.
fn spec_errors(error: &SpecError, span: Span) -> syn::Error {
    error
        .lines()
        .map(|line| syn::Error::new(span, line))
        .reduce(|mut all, next| {
            all.combine(next);
            all
        })
        .unwrap_or_else(|| syn::Error::new(span, error.origin.clone()))
}

/// `RegNetY-1.6GF` → `RegNetY1_6GF`: hyphens dropped, dots to underscores. Without a `name`,
/// the file stem in CamelCase (`my_net.yaml` → `MyNet`).
fn derive_type_name(network: &Network, written: &str) -> Result<Ident, String> {
    let candidate: String = match &network.spec.name {
        Some(name) => name
            .chars()
            .filter(|c| *c != '-')
            .map(|c| if c == '.' { '_' } else { c })
            .collect(),
        None => {
            let stem = Path::new(written)
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            stem.split(['_', '-'])
                .map(|part| {
                    let mut chars = part.chars();
                    chars
                        .next()
                        .map(|first| first.to_ascii_uppercase().to_string() + chars.as_str())
                        .unwrap_or_default()
                })
                .collect::<String>()
                .replace('.', "_")
        }
    };
    let valid = candidate
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic())
        && candidate
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_');
    if valid {
        Ok(Ident::new(&candidate, Span::call_site()))
    } else {
        Err(format!(
            "{written}: field `name`: cannot make a Rust type name from `{candidate}`; name the type yourself: \
             regnet!(pub MyNet = \"{written}\")"
        ))
    }
}
