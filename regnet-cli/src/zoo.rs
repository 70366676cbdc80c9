//! The model a command names: a built-in model by its spec's file stem (`regnety_1.6gf`, from
//! `regnet::zoo`), or a spec file (`specs/my_net.yaml`).

use std::path::Path;

use regnet::runtime::spec::{Architecture, CompiledSpec, SpecError, compile_file, compile_str};

/// A model chosen on the command line, compiled.
pub struct Chosen {
    /// The spec's file stem: how results name the model.
    pub stem: String,
    /// The compiled spec (for the stage table, the graph, the plot).
    pub compiled: &'static CompiledSpec,
    /// Its architecture, labelled with the spec's `name` or the stem.
    pub architecture: Architecture<'static>,
    /// The other width-rounding rule's name and stage widths, where they differ (for load
    /// errors).
    pub compat_alternative: Option<(&'static str, &'static [usize])>,
}

/// Why a model argument names no model.
pub enum Unchosen {
    /// A spec file that does not compile (or cannot be read): its located errors.
    Spec(SpecError),
    /// Neither a built-in name nor a spec file.
    Unknown(String),
}

/// The model `argument` names: a built-in model when it is one's file stem, else the spec file
/// at that path. A command compiles one model and runs until it exits, so the compiled spec is
/// leaked to give the architecture the `'static` lifetime networks take.
pub fn choose(argument: &Path) -> Result<Chosen, Unchosen> {
    let built_in = argument.to_str().and_then(regnet::zoo::find);
    let (compiled, stem) = match built_in {
        Some(listed) => {
            let origin = format!("specs/{}.yaml", listed.name);
            let compiled = compile_str(listed.spec, &origin).map_err(Unchosen::Spec)?;
            (compiled, listed.name.to_owned())
        }
        None if looks_like_a_path(argument) => {
            let origin = argument.display().to_string();
            let compiled = compile_file(argument, &origin).map_err(Unchosen::Spec)?;
            let stem = argument
                .file_stem()
                .map_or(origin, |s| s.to_string_lossy().into_owned());
            (compiled, stem)
        }
        None => {
            return Err(Unchosen::Unknown(format!(
                "no model `{}`; give a spec file's path (ending in .yaml) or one of the built-in \
                 models, the specs' file stems: {}",
                argument.display(),
                names()
            )));
        }
    };
    let compiled: &'static CompiledSpec = Box::leak(Box::new(compiled));
    let name: &'static str = Box::leak(compiled.display_name(&stem).to_owned().into_boxed_str());
    let compat_alternative = compiled
        .compat_alternative()
        .map(|(compat, widths)| (compat.name(), &*Box::leak(widths.into_boxed_slice())));
    Ok(Chosen {
        stem,
        architecture: compiled.architecture(name),
        compiled,
        compat_alternative,
    })
}

/// Whether an argument that is no built-in name is meant as a file: a YAML extension, a
/// directory part, or an existing file.
fn looks_like_a_path(argument: &Path) -> bool {
    argument
        .extension()
        .is_some_and(|extension| extension == "yaml" || extension == "yml")
        || argument.components().count() > 1
        || argument.exists()
}

/// The built-in model names, for messages.
fn names() -> String {
    regnet::zoo::MODELS
        .iter()
        .map(|m| m.name)
        .collect::<Vec<_>>()
        .join(", ")
}
