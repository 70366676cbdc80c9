//! Every spec in `specs/`, compiled into the CLI with `regnet!`: `regnet run` and `regnet bench`
//! take a model by its spec's file stem.

use regnet::runtime::spec::Architecture;

/// A compiled model: its architecture and the other compatibility rule's widths, for load errors.
pub struct Model {
    pub name: &'static str,
    pub architecture: Architecture<'static>,
    pub compat_alternative: Option<(&'static str, &'static [usize])>,
}

macro_rules! zoo {
    ($($stem:literal => $ty:ident = $path:literal,)*) => {
        $(regnet::regnet!($ty = $path);)*

        /// The models, by spec file stem, in file-name order.
        pub const MODELS: &[Model] = &[$(Model {
            name: $stem,
            architecture: $ty::ARCHITECTURE,
            compat_alternative: $ty::COMPAT_ALTERNATIVE,
        }),*];
    };
}

zoo! {
    "anynetx_e_400mf" => AnynetxE400mf = "../specs/anynetx_e_400mf.yaml",
    "regnetx_1.6gf" => Regnetx1_6gf = "../specs/regnetx_1.6gf.yaml",
    "regnetx_12gf" => Regnetx12gf = "../specs/regnetx_12gf.yaml",
    "regnetx_16gf" => Regnetx16gf = "../specs/regnetx_16gf.yaml",
    "regnetx_200mf" => Regnetx200mf = "../specs/regnetx_200mf.yaml",
    "regnetx_3.2gf" => Regnetx3_2gf = "../specs/regnetx_3.2gf.yaml",
    "regnetx_32gf" => Regnetx32gf = "../specs/regnetx_32gf.yaml",
    "regnetx_4.0gf" => Regnetx4_0gf = "../specs/regnetx_4.0gf.yaml",
    "regnetx_400mf" => Regnetx400mf = "../specs/regnetx_400mf.yaml",
    "regnetx_400mf_tv" => Regnetx400mfTv = "../specs/regnetx_400mf_tv.yaml",
    "regnetx_6.4gf" => Regnetx6_4gf = "../specs/regnetx_6.4gf.yaml",
    "regnetx_600mf" => Regnetx600mf = "../specs/regnetx_600mf.yaml",
    "regnetx_8.0gf" => Regnetx8_0gf = "../specs/regnetx_8.0gf.yaml",
    "regnetx_800mf" => Regnetx800mf = "../specs/regnetx_800mf.yaml",
    "regnety_1.6gf" => Regnety1_6gf = "../specs/regnety_1.6gf.yaml",
    "regnety_128gf" => Regnety128gf = "../specs/regnety_128gf.yaml",
    "regnety_12gf" => Regnety12gf = "../specs/regnety_12gf.yaml",
    "regnety_16gf" => Regnety16gf = "../specs/regnety_16gf.yaml",
    "regnety_200mf" => Regnety200mf = "../specs/regnety_200mf.yaml",
    "regnety_3.2gf" => Regnety3_2gf = "../specs/regnety_3.2gf.yaml",
    "regnety_32gf" => Regnety32gf = "../specs/regnety_32gf.yaml",
    "regnety_4.0gf" => Regnety4_0gf = "../specs/regnety_4.0gf.yaml",
    "regnety_400mf" => Regnety400mf = "../specs/regnety_400mf.yaml",
    "regnety_6.4gf" => Regnety6_4gf = "../specs/regnety_6.4gf.yaml",
    "regnety_600mf" => Regnety600mf = "../specs/regnety_600mf.yaml",
    "regnety_8.0gf" => Regnety8_0gf = "../specs/regnety_8.0gf.yaml",
    "regnety_8.0gf_tv" => Regnety8_0gfTv = "../specs/regnety_8.0gf_tv.yaml",
    "regnety_800mf" => Regnety800mf = "../specs/regnety_800mf.yaml",
    "regnety_800mf_tv" => Regnety800mfTv = "../specs/regnety_800mf_tv.yaml",
}

/// The model whose spec file stem is `name`.
pub fn find(name: &str) -> Option<&'static Model> {
    MODELS.iter().find(|model| model.name == name)
}

/// The model names, for messages.
pub fn names() -> String {
    MODELS.iter().map(|m| m.name).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::MODELS;

    #[test]
    fn every_spec_file_is_a_model() {
        let mut files: Vec<String> =
            std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../specs"))
                .unwrap()
                .map(|entry| {
                    entry
                        .unwrap()
                        .path()
                        .file_stem()
                        .unwrap()
                        .to_string_lossy()
                        .into_owned()
                })
                .collect();
        files.sort();
        let names: Vec<&str> = MODELS.iter().map(|m| m.name).collect();
        assert_eq!(files, names);
    }
}
