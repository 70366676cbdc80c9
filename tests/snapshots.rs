//! Snapshots of every spec in `specs/`, taken through the types `regnet!` generates: the stage
//! table with the complexity, and the operation graph in DOT. Review changes with
//! `cargo insta review`.

use regnet::spec::{graph, stage_table};

macro_rules! snapshot_specs {
    ($($test:ident: $spec:literal,)*) => {
        $(
            #[test]
            fn $test() {
                regnet::regnet!(Net = $spec);
                let complexity = regnet::spec::Complexity {
                    flops: Net::FLOPS,
                    params: Net::PARAMS,
                    acts: Net::ACTS,
                };
                let table = format!("{}\n{}", Net::NAME, stage_table(&Net::ARCHITECTURE, &complexity));
                insta::assert_snapshot!(concat!(stringify!($test), "_stages"), table);
                insta::assert_snapshot!(
                    concat!(stringify!($test), "_graph"),
                    graph::to_dot(&Net::graph(), Net::NAME)
                );
            }
        )*

        #[test]
        fn every_spec_has_a_snapshot() {
            let mut listed = vec![$($spec.trim_start_matches("specs/").trim_end_matches(".yaml")),*];
            listed.sort();
            let mut files: Vec<String> = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/specs"))
                .unwrap()
                .map(|entry| entry.unwrap().path().file_stem().unwrap().to_string_lossy().into_owned())
                .collect();
            files.sort();
            assert_eq!(files, listed);
        }
    };
}

snapshot_specs! {
    anynetx_e_400mf: "specs/anynetx_e_400mf.yaml",
    regnetx_200mf: "specs/regnetx_200mf.yaml",
    regnetx_400mf: "specs/regnetx_400mf.yaml",
    regnetx_400mf_tv: "specs/regnetx_400mf_tv.yaml",
    regnetx_600mf: "specs/regnetx_600mf.yaml",
    regnetx_800mf: "specs/regnetx_800mf.yaml",
    regnetx_1_6gf: "specs/regnetx_1.6gf.yaml",
    regnetx_3_2gf: "specs/regnetx_3.2gf.yaml",
    regnetx_4_0gf: "specs/regnetx_4.0gf.yaml",
    regnetx_6_4gf: "specs/regnetx_6.4gf.yaml",
    regnetx_8_0gf: "specs/regnetx_8.0gf.yaml",
    regnetx_12gf: "specs/regnetx_12gf.yaml",
    regnetx_16gf: "specs/regnetx_16gf.yaml",
    regnetx_32gf: "specs/regnetx_32gf.yaml",
    regnety_200mf: "specs/regnety_200mf.yaml",
    regnety_400mf: "specs/regnety_400mf.yaml",
    regnety_600mf: "specs/regnety_600mf.yaml",
    regnety_800mf: "specs/regnety_800mf.yaml",
    regnety_800mf_tv: "specs/regnety_800mf_tv.yaml",
    regnety_1_6gf: "specs/regnety_1.6gf.yaml",
    regnety_3_2gf: "specs/regnety_3.2gf.yaml",
    regnety_4_0gf: "specs/regnety_4.0gf.yaml",
    regnety_6_4gf: "specs/regnety_6.4gf.yaml",
    regnety_8_0gf: "specs/regnety_8.0gf.yaml",
    regnety_8_0gf_tv: "specs/regnety_8.0gf_tv.yaml",
    regnety_12gf: "specs/regnety_12gf.yaml",
    regnety_16gf: "specs/regnety_16gf.yaml",
    regnety_32gf: "specs/regnety_32gf.yaml",
    regnety_128gf: "specs/regnety_128gf.yaml",
}
