//! Every spec in `specs/` against the exact values of pycls and torchvision.

mod zoo_data;

use std::path::PathBuf;

use regnet_spec::{CompiledSpec, compile_file};
use zoo_data::{Expected, PYCLS_ZOO, TORCHVISION};

fn spec_path(file: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../specs")
        .join(format!("{file}.yaml"))
}

fn compile(file: &str) -> CompiledSpec {
    let path = spec_path(file);
    compile_file(&path, &path.display().to_string()).unwrap_or_else(|e| panic!("{e}"))
}

fn check(expected: &Expected) {
    zoo_data::assert_matches(&compile(expected.file), expected);
}

#[test]
fn pycls_zoo_is_exact() {
    for expected in &PYCLS_ZOO {
        check(expected);
    }
}

#[test]
fn torchvision_variants_are_exact() {
    for expected in &TORCHVISION {
        check(expected);
    }
}

#[test]
fn compiled_architectures_validate_and_broken_ones_do_not() {
    for expected in PYCLS_ZOO.iter().chain(&TORCHVISION) {
        let net = compile(expected.file);
        assert_eq!(
            net.architecture(expected.file).validate(),
            Ok(()),
            "{}",
            expected.file
        );
    }
    let net = compile("regnety_200mf");
    let mut stages = net.stages.clone();
    stages[2].in_size = 27;
    assert!(net.architecture("x").validate().is_ok());
    let broken = regnet_spec::Architecture {
        stages: &stages,
        ..net.architecture("x")
    };
    assert!(broken.validate().unwrap_err().contains("stage 3"));
    let mut stages = net.stages.clone();
    stages[0].group_width = 5;
    let broken = regnet_spec::Architecture {
        stages: &stages,
        ..net.architecture("x")
    };
    assert!(broken.validate().unwrap_err().contains("group width"));
}

#[test]
fn x_and_y_without_se_differ_only_in_se() {
    // RegNetX-200MF and RegNetY-200MF share their spec apart from SE.
    let x = compile("regnetx_200mf");
    let y = compile("regnety_200mf");
    for (sx, sy) in x.stages.iter().zip(&y.stages) {
        assert_eq!(
            (sx.depth, sx.width, sx.group_width),
            (sy.depth, sy.width, sy.group_width)
        );
        assert_eq!(sx.se_width, None);
        assert!(sy.se_width.is_some());
    }
}

/// Every spec in the RegNet form is a zoo model checked above (the per-stage examples are
/// checked through the zoo in `stage_form.rs` and snapshotted at the top level).
#[test]
fn every_regnet_spec_file_is_covered() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../specs");
    let mut files: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|path| {
            let source = std::fs::read_to_string(path).unwrap();
            regnet_spec::parse_spec(&source).unwrap().regnet().is_some()
        })
        .map(|path| path.file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    files.sort();
    let mut covered: Vec<String> = PYCLS_ZOO
        .iter()
        .chain(&TORCHVISION)
        .map(|e| e.file.to_owned())
        .collect();
    covered.sort();
    assert_eq!(files, covered);
}
