use std::path::{Path, PathBuf};

use proc_macro2::Span;
use regnet_spec::{CompiledSpec, SpecError, compile_file, excerpt};
use syn::parse::{Parse, ParseStream};
use syn::{Ident, LitStr, Token, Visibility};

/// `regnet!("specs/x.yaml")` or `regnet!(pub Name = "specs/x.yaml")`, optionally followed by
/// `, crate = path::to::regnet`.
pub struct MacroInput {
    /// `pub` when the type is not named explicitly.
    pub visibility: Visibility,
    /// The type's name when written (`Name = ...`); `None` derives it from the spec's `name`
    /// or the file stem.
    pub type_name: Option<Ident>,
    /// The spec's path as written, relative to the crate's root (`CARGO_MANIFEST_DIR`); errors
    /// about the spec point at this literal.
    pub path: LitStr,
    /// `crate = path`: where the generated code finds the `regnet` crate, for a crate that
    /// re-exports `regnet!` (as serde's `#[serde(crate = "...")]`). `None`: the name the
    /// calling crate's manifest gives it.
    pub facade: Option<syn::Path>,
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
        let mut facade = None;
        while input.parse::<Option<Token![,]>>()?.is_some() && !input.is_empty() {
            let option = input.fork();
            input.parse::<Token![crate]>().map_err(|_| {
                syn::Error::new(
                    option.span(),
                    "expected `crate = path::to::regnet`, the only option after the spec's path",
                )
            })?;
            input.parse::<Token![=]>()?;
            let written: syn::Path = input.parse()?;
            if facade.replace(written).is_some() {
                return Err(syn::Error::new(
                    option.span(),
                    "`crate = ...` is given twice",
                ));
            }
        }
        if !input.is_empty() {
            return Err(input.error(
                "unexpected tokens after the spec's path; the one option there is \
                 `, crate = path::to::regnet`",
            ));
        }
        Ok(MacroInput {
            visibility,
            type_name,
            path,
            facade,
        })
    }
}

/// A macro input whose spec compiled.
pub struct Resolved {
    /// The compiled spec.
    pub network: CompiledSpec,
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
        // Whatever exists (a directory, a FIFO, a device) is left to `compile_file`, which says
        // what it is instead of "not found".
        if !path.exists() {
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

/// Names that are identifiers but would break the generated code as a type name: the primitive
/// types, which a struct may shadow (the generated `[f32; N]` and `usize` would then mean it).
const PRIMITIVE_TYPES: [&str; 19] = [
    "bool", "char", "str", "f16", "f32", "f64", "f128", "i8", "i16", "i32", "i64", "i128", "isize",
    "u8", "u16", "u32", "u64", "u128", "usize",
];

/// `RegNetY-1.6GF` → `RegNetY1_6GF`: hyphens dropped, dots to underscores. Without a `name`,
/// the file stem in CamelCase (`my_net.yaml` → `MyNet`). A name that cannot be a type name is
/// an error pointing at the spec's `name` (or naming the file), never a baffling rustc error.
fn derive_type_name(network: &CompiledSpec, written: &str) -> Result<Ident, String> {
    let (candidate, source) = match &network.spec.name {
        Some(name) => {
            let derived = name
                .chars()
                .filter(|c| *c != '-')
                .map(|c| if c == '.' { '_' } else { c })
                .collect();
            let location = network
                .name_location
                .map_or(String::new(), |location| format!(":{location}"));
            (derived, format!("{written}{location}: field `name`"))
        }
        None => {
            let stem = Path::new(written)
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            let derived = stem
                .split(['_', '-'])
                .map(|part| {
                    let mut chars = part.chars();
                    chars
                        .next()
                        .map(|first| first.to_ascii_uppercase().to_string() + chars.as_str())
                        .unwrap_or_default()
                })
                .collect::<String>()
                .replace('.', "_");
            (
                derived,
                format!("{written}: the file name (the spec has no `name`)"),
            )
        }
    };
    let identifier = candidate
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic())
        && candidate
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_');
    let problem = if !identifier {
        "is not a Rust identifier"
    } else if syn::parse_str::<Ident>(&candidate).is_err() {
        "is a Rust keyword"
    } else if PRIMITIVE_TYPES.contains(&candidate.as_str()) {
        "is a Rust primitive type"
    } else {
        return Ok(Ident::new(&candidate, Span::call_site()));
    };
    Err(format!(
        "{source}: the type name derived from it, `{}`, {problem}; name the type yourself: \
         regnet!(pub MyNet = \"{written}\")",
        excerpt(&candidate)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const PARAMETERS: &str = "d: 13\nw0: 24\nwa: 36.44\nwm: 2.49\ng: 8\n";

    fn type_name(name_line: &str, written: &str) -> Result<String, String> {
        let source = format!("{PARAMETERS}{name_line}");
        let network = regnet_spec::compile_str(&source, written).unwrap();
        derive_type_name(&network, written).map(|ident| ident.to_string())
    }

    #[test]
    fn keywords_and_primitive_types_are_refused_at_the_name() {
        for (name, problem) in [
            ("fn", "is a Rust keyword"),
            ("Self", "is a Rust keyword"),
            ("crate", "is a Rust keyword"),
            ("async", "is a Rust keyword"),
            ("type", "is a Rust keyword"),
            ("f32", "is a Rust primitive type"),
            ("u8", "is a Rust primitive type"),
            ("usize", "is a Rust primitive type"),
            ("str", "is a Rust primitive type"),
            ("bool", "is a Rust primitive type"),
            ("char", "is a Rust primitive type"),
            ("2fast", "is not a Rust identifier"),
            ("net work", "is not a Rust identifier"),
        ] {
            let error = type_name(&format!("name: {name}\n"), "net.yaml").unwrap_err();
            assert_eq!(
                error,
                format!(
                    "net.yaml:6:1: field `name`: the type name derived from it, `{name}`, \
                     {problem}; name the type yourself: regnet!(pub MyNet = \"net.yaml\")"
                )
            );
        }
    }

    #[test]
    fn a_file_stem_that_makes_a_keyword_is_refused_by_file_name() {
        let error = type_name("", "specs/self.yaml").unwrap_err();
        assert!(
            error.starts_with(
                "specs/self.yaml: the file name (the spec has no `name`): the type name derived \
                 from it, `Self`, is a Rust keyword"
            ),
            "{error}"
        );
        assert_eq!(type_name("", "specs/fn.yaml").unwrap(), "Fn");
    }

    #[test]
    fn a_long_name_is_quoted_in_part() {
        let long = "x ".repeat(10_000);
        let error = type_name(&format!("name: \"{long}\"\n"), "net.yaml").unwrap_err();
        assert!(error.len() < 300, "{error}");
        assert!(error.contains("…`, is not a Rust identifier"), "{error}");
    }
}
