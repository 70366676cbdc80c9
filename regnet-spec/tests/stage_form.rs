//! The per-stage (AnyNet) spec form: every zoo and torchvision model written stage by stage
//! compiles to its exact stages and complexity; a hand-counted network with a bottleneck ratio
//! and groups; and the form's errors.

mod zoo_data;

use regnet_spec::{Design, Location, compile_str};
use zoo_data::{Expected, PYCLS_ZOO, TORCHVISION};

/// The zoo model as a per-stage spec, built from zoo.json's stage table (not from the RegNet
/// parameters), with SE for the RegNetY models.
fn per_stage_yaml(expected: &Expected) -> String {
    let column = |i: usize| {
        let values: Vec<String> = expected.stages.iter().map(|s| s[i].to_string()).collect();
        values.join(", ")
    };
    let ratios: Vec<String> = expected
        .stages
        .iter()
        .map(|s| (s[1] as f64 / s[3] as f64).to_string())
        .collect();
    format!(
        "depths: [{}]\nwidths: [{}]\ngroup_widths: [{}]\nbottleneck_ratios: [{}]\nse: {}\n",
        column(0),
        column(1),
        column(2),
        ratios.join(", "),
        expected.file.starts_with("regnety")
    )
}

#[test]
fn every_zoo_and_torchvision_model_written_per_stage_has_the_same_numbers() {
    for expected in PYCLS_ZOO.iter().chain(&TORCHVISION) {
        let yaml = per_stage_yaml(expected);
        let net = compile_str(&yaml, expected.file).unwrap_or_else(|e| panic!("{e}\n{yaml}"));
        assert!(matches!(net.spec.design, Design::Stages(_)));
        zoo_data::assert_matches(&net, expected);
    }
}

/// Counted by hand with pycls's rules: a 32×32 input, a 16-wide stem and
/// one stage of width 32, bottleneck 32 / 4 = 8 in groups of 4, into 10 classes.
///
/// | layer | flops | params | acts |
/// |---|---|---|---|
/// | stem 3→16 3×3 at 16², BN | 9·3·16·256 = 110,592 | 432 + 32 | 4,096 |
/// | projection 16→32 at 8², BN | 16·32·64 = 32,768 | 512 + 64 | 2,048 |
/// | a: 16→8 at 16², BN | 16·8·256 = 32,768 | 128 + 16 | 2,048 |
/// | b: 8→8 3×3, 2 groups, at 8², BN | 9·8·8·64 / 2 = 18,432 | 288 + 16 | 512 |
/// | c: 8→32 at 8², BN | 8·32·64 = 16,384 | 256 + 64 | 2,048 |
/// | fc 32→10 + bias | 320 + 10 | 320 + 10 | 10 |
/// | total | 211,274 | 2,138 | 10,762 |
#[test]
fn a_hand_counted_network_with_a_bottleneck_ratio_and_groups() {
    let yaml = "depths: [1]\nwidths: [32]\ngroup_widths: [4]\nbottleneck_ratios: [4]\n\
                resolution: 32\nstem_w: 16\nnum_classes: 10\n";
    let net = compile_str(yaml, "tiny.yaml").unwrap();
    let stage = net.stages[0];
    assert_eq!(
        (stage.width, stage.bottleneck_width, stage.group_width),
        (32, 8, 4)
    );
    assert_eq!(stage.groups(), 2);
    let cx = net.complexity;
    assert_eq!((cx.flops, cx.params, cx.acts), (211_274, 2_138, 10_762));
}

#[test]
fn a_group_width_above_the_bottleneck_is_clipped_as_pycls_does() {
    let net = compile_str(
        "depths: [2, 2]\nwidths: [64, 128]\ngroup_widths: [32, 32]\nbottleneck_ratios: [4, 2]\n",
        "clip.yaml",
    )
    .unwrap();
    let got: Vec<_> = net
        .stages
        .iter()
        .map(|s| (s.bottleneck_width, s.group_width, s.groups()))
        .collect();
    assert_eq!(got, [(16, 16, 1), (64, 32, 2)]);
}

#[test]
fn the_bottleneck_ratios_default_to_one() {
    let net = compile_str(
        "depths: [1, 2]\nwidths: [24, 48]\ngroup_widths: [8, 8]\n",
        "d.yaml",
    )
    .unwrap();
    assert!(net.stages.iter().all(|s| s.bottleneck_width == s.width));
}

/// Each error line of compiling `yaml`.
fn errors(yaml: &str) -> Vec<String> {
    compile_str(yaml, "bad.yaml").unwrap_err().lines().collect()
}

#[test]
fn a_group_width_that_does_not_divide_the_bottleneck_is_located_and_explained() {
    let error = compile_str(
        "depths: [1, 1]\nwidths: [32, 40]\ngroup_widths: [8, 12]\n",
        "bad.yaml",
    )
    .unwrap_err();
    assert_eq!(error.diagnostics.len(), 1, "{error}");
    let d = &error.diagnostics[0];
    assert_eq!(d.field.as_deref(), Some("group_widths"));
    assert_eq!(d.location, Some(Location { line: 3, column: 1 }));
    assert_eq!(
        d.message,
        "stage 2: group width 12 does not divide the bottleneck width 40 (width 40 / ratio 1); \
         group widths that do: 10, 8, 5"
    );
}

#[test]
fn mixing_the_two_forms_names_every_regnet_key() {
    let lines = errors("d: 13\ndepths: [1]\nwidths: [32]\ngroup_widths: [8]\nwa: 3\n");
    assert_eq!(lines.len(), 2, "{lines:#?}");
    assert!(lines[0].starts_with("bad.yaml:1:1: field `d`: the per-stage lists"));
    assert!(lines[1].starts_with("bad.yaml:5:1: field `wa`: the per-stage lists"));
}

#[test]
fn lists_of_different_lengths_are_reported_with_both_lengths() {
    let lines = errors("depths: [1, 2]\nwidths: [32]\ngroup_widths: [8, 8, 8]\n");
    assert_eq!(
        lines,
        [
            "bad.yaml:2:1: field `widths`: widths has 1 entry and depths 2; every per-stage \
             list has one entry per stage",
            "bad.yaml:3:1: field `group_widths`: group_widths has 3 entries and depths 2; every \
             per-stage list has one entry per stage",
        ]
    );
}

#[test]
fn every_entry_breaking_a_rule_is_reported() {
    let lines = errors(
        "depths: [0, 2]\nwidths: [32, 0]\ngroup_widths: [0, 8]\nbottleneck_ratios: [1, .nan]\n\
         q: 8\n",
    );
    assert_eq!(
        lines,
        [
            "bad.yaml:1:1: field `depths`: depths[0] = 0 must be at least 1",
            "bad.yaml:2:1: field `widths`: widths[1] = 0 must be from 1 to 1048576",
            "bad.yaml:3:1: field `group_widths`: group_widths[0] = 0 must be positive",
            "bad.yaml:4:1: field `bottleneck_ratios`: bottleneck_ratios[1] = NaN must be finite \
             and at least 1/1024 (bottleneck width = width / ratio)",
            "bad.yaml:5:1: field `q`: q applies to the RegNet parameters' quantization; \
             per-stage widths are taken as written",
        ]
    );
}

#[test]
fn missing_lists_and_empty_lists_are_errors() {
    assert_eq!(
        errors("depths: [1]\nbottleneck_ratios: [1]\n"),
        [
            "bad.yaml: field `widths`: missing required field",
            "bad.yaml: field `group_widths`: missing required field",
        ]
    );
    assert_eq!(
        errors("depths: []\nwidths: []\ngroup_widths: []\n"),
        ["bad.yaml:1:1: field `depths`: depths must list at least one stage"]
    );
    assert_eq!(
        errors("depths: [1, x]\nwidths: [8, 8]\ngroup_widths: [8, 8]\n"),
        [
            "bad.yaml:1:1: field `depths`: entry 1: expected a whole number from 0 to 4294967295, \
             found the string \"x\""
        ]
    );
}

#[test]
fn too_many_blocks_in_total_is_an_error_not_an_overflow() {
    let lines = errors("depths: [4294967295, 4294967295]\nwidths: [8, 8]\ngroup_widths: [8, 8]\n");
    assert_eq!(
        lines,
        [
            "bad.yaml:1:1: field `depths`: the depths add up to 8589934590 blocks; at most 1024 \
          are allowed"
        ]
    );
}
