#![warn(missing_docs)]
//! The code behind `regnet!`: parse the macro input, compile the spec with `regnet-spec`, emit the
//! network type. Everything here works on `proc_macro2` tokens, so it is tested as a plain library
//! (snapshot tests of the generated code) and the proc-macro crate stays a one-line shell.

mod emit;
mod input;

use std::path::Path;

use proc_macro2::TokenStream;

pub use emit::generate;
pub use input::MacroInput;

/// Expands `regnet!(...)`: the tokens of the network type, or `compile_error!`s for every
/// problem found (bad input, unreadable file, every broken rule of the spec).
///
/// `facade` is the name the calling crate gives the `regnet` crate (the proc-macro crate finds
/// it in the crate's manifest), used unless the input says `crate = ...`.
pub fn expand(tokens: TokenStream, manifest_dir: Option<&Path>, facade: &str) -> TokenStream {
    match expand_checked(tokens, manifest_dir, facade) {
        Ok(generated) => generated,
        Err(error) => error.to_compile_error(),
    }
}

fn expand_checked(
    tokens: TokenStream,
    manifest_dir: Option<&Path>,
    facade: &str,
) -> syn::Result<TokenStream> {
    let input: MacroInput = syn::parse2(tokens)?;
    let resolved = input.resolve(manifest_dir)?;
    let named: syn::Path;
    let facade = match &input.facade {
        Some(written) => written,
        None => {
            let name: syn::Ident = syn::parse_str(facade).map_err(|_| {
                syn::Error::new(
                    input.path.span(),
                    format!(
                        "the `regnet` crate's name in Cargo.toml, `{facade}`, is not an \
                         identifier; say where it is with `crate = path::to::regnet`"
                    ),
                )
            })?;
            named = syn::parse_quote!(::#name);
            &named
        }
    };
    Ok(generate(
        &resolved.network,
        &resolved.type_name,
        &input.visibility,
        facade,
        Some(&resolved.tracked_path),
    ))
}
