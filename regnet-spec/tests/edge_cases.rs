//! The edge cases of REFERENCE.md §2, the float-precision and rounding-mode cases, every
//! validation rule, and inputs that must be rejected (or accepted) without panicking.
//!
//! Expected values come from REFERENCE.md (§2's table, §3 and §5), or are derived by hand from
//! the algorithm of §1 where the table gives only part of the answer (depths, spatial sizes); each
//! such derivation is written next to its assertion.

use std::panic;
use std::path::Path;
use std::time::{Duration, Instant};

use regnet_spec::graph::{self, Op};
use regnet_spec::{
    CompiledSpec, Location, MAX_REPORTED, MAX_SPEC_BYTES, SpecError, compile_file, compile_str,
    format_number,
};

const ORIGIN: &str = "edge.yaml";

/// A spec with one field per line, in the order d, w0, wa, wm, g, b (lines 1–6), then `extra`
/// (which starts on line 7).
fn yaml(d: u32, w0: u32, wa: f64, wm: f64, g: u32, extra: &str) -> String {
    format!("d: {d}\nw0: {w0}\nwa: {wa:?}\nwm: {wm:?}\ng: {g}\nb: 1\n{extra}")
}

fn compile(d: u32, w0: u32, wa: f64, wm: f64, g: u32, extra: &str) -> CompiledSpec {
    let source = yaml(d, w0, wa, wm, g, extra);
    compile_str(&source, ORIGIN).unwrap_or_else(|e| panic!("{source}\n{e}"))
}

fn widths(net: &CompiledSpec) -> Vec<usize> {
    net.stages.iter().map(|s| s.width).collect()
}

fn depths(net: &CompiledSpec) -> Vec<usize> {
    net.stages.iter().map(|s| s.depth).collect()
}

fn out_sizes(net: &CompiledSpec) -> Vec<usize> {
    net.stages.iter().map(|s| s.out_size).collect()
}

fn compile_err(source: &str) -> SpecError {
    match compile_str(source, ORIGIN) {
        Ok(net) => panic!(
            "expected an error for\n{source}\ngot stages {:?}",
            net.stages
        ),
        Err(e) => e,
    }
}

/// Asserts that `source` is rejected with a diagnostic on `field` located at `line`, column 1
/// (every spec here writes its keys at the start of a line), and that the rendered error reads
/// `edge.yaml:LINE:1: field `FIELD`: ...`.
fn assert_field_error(source: &str, field: &str, line: usize) -> SpecError {
    let error = compile_err(source);
    let (index, diagnostic) = error
        .diagnostics
        .iter()
        .enumerate()
        .find(|(_, d)| d.field.as_deref() == Some(field))
        .unwrap_or_else(|| panic!("no diagnostic on `{field}` for\n{source}\ngot: {error}"));
    assert_eq!(
        diagnostic.location,
        Some(Location { line, column: 1 }),
        "location of the `{field}` diagnostic for\n{source}\n{error}"
    );
    assert!(!diagnostic.message.is_empty());
    let rendered: Vec<String> = error.lines().collect();
    let prefix = format!("{ORIGIN}:{line}:1: field `{field}`: ");
    assert!(
        rendered[index].starts_with(&prefix),
        "{:?} does not start with {prefix:?}",
        rendered[index]
    );
    error
}

// ---------------------------------------------------------------------------------------------
// REFERENCE.md §2, one test per row of the edge-case table.
// ---------------------------------------------------------------------------------------------

/// `8,24,20,2.5,8,1`: 3 stages [24,64,152]. Depths by hand: u = 24,44,…,164, exponents
/// 0,1,1,1,2,2,2,2, so [1,3,4].
#[test]
fn fewer_than_four_stages() {
    let net = compile(8, 24, 20.0, 2.5, 8, "");
    assert_eq!(widths(&net), [24, 64, 152]);
    assert_eq!(depths(&net), [1, 3, 4]);
    assert!(net.stages.iter().all(|s| s.stride == 2));
}

/// `10,64,0,2.5,16,1`: wa = 0 gives one stage of depth 10 (width 64 = 4·16 passes compat).
#[test]
fn zero_slope_gives_one_stage() {
    let net = compile(10, 64, 0.0, 2.5, 16, "");
    assert_eq!(depths(&net), [10]);
    assert_eq!(widths(&net), [64]);
    assert_eq!(net.stages[0].group_width, 16);
    assert_eq!(net.stages[0].groups(), 4);
}

/// `30,8,12,1.6,8,1`: 8 stages (total_stages 9: one exponent, 1, is skipped). Widths and depths
/// from §1 by hand: exponents 0,2,3,4,4,5×4,6×5,7×8,8×8. Spatial sizes follow (h-1)/2+1 from the
/// 112×112 stem output, down to 1×1 and staying there.
#[test]
fn more_than_four_stages() {
    let net = compile(30, 8, 12.0, 1.6, 8, "");
    assert_eq!(net.stages.len(), 8);
    assert_eq!(depths(&net).iter().sum::<usize>(), 30);
    assert_eq!(widths(&net), [8, 24, 32, 56, 80, 136, 216, 344]);
    assert_eq!(depths(&net), [1, 1, 1, 2, 4, 5, 8, 8]);
    assert_eq!(out_sizes(&net), [56, 28, 14, 7, 4, 2, 1, 1]);
}

/// `10,8,100,2,8,1`: the exponent jumps 0 → 4 (u_1/w0 = 13.5), giving 5 stages. By hand:
/// exponents 0,4,5,5,6,6,6,6,7,7, widths 8·2^k.
#[test]
fn skipped_exponent() {
    let net = compile(10, 8, 100.0, 2.0, 8, "");
    assert_eq!(net.stages.len(), 5);
    assert_eq!(widths(&net), [8, 128, 256, 512, 1024]);
    assert_eq!(depths(&net), [1, 1, 2, 4, 2]);
}

/// `12,8,0.5,1.05,8,1`: 12 exponents but only widths 8 and 16, so 2 stages. By hand: 1.05^k
/// rounds to 1 for k ≤ 8 and to 2 from k = 9 (1.05^9 = 1.551), reached at j = 9.
#[test]
fn exponents_merging() {
    let net = compile(12, 8, 0.5, 1.05, 8, "");
    assert_eq!(widths(&net), [8, 16]);
    assert_eq!(depths(&net), [9, 3]);
}

/// RegNetX-8.0GF (`23,80,49.56,2.88,120`) s1: g' = min(120, 80) = 80, one group; RegNetY-32GF s1
/// likewise has groups = 1 (REFERENCE §2 and §5).
#[test]
fn group_width_larger_than_width() {
    let x8 = compile(23, 80, 49.56, 2.88, 120, "");
    assert_eq!(widths(&x8), [80, 240, 720, 1920]);
    let s1 = &x8.stages[0];
    assert_eq!(
        (s1.group_width, s1.bottleneck_width, s1.groups()),
        (80, 80, 1)
    );
    let rest: Vec<usize> = x8.stages[1..].iter().map(|s| s.group_width).collect();
    assert_eq!(rest, [120, 120, 120]);

    let y32 = compile(20, 232, 115.89, 2.53, 232, "se: true\n");
    assert_eq!(widths(&y32), [232, 696, 1392, 3712]);
    assert_eq!(y32.stages[0].groups(), 1);
    assert_eq!(y32.stages[0].group_width, 232);
}

/// `6,24,8,1.34,16,1`: before compat [24,32,40,56], after compat [32,32,32,64]. The stages are
/// not merged: each starts with a stride-2 block that has a projection, even where the width
/// does not change.
#[test]
fn equal_widths_after_compat_are_not_merged() {
    let net = compile(6, 24, 8.0, 1.34, 16, "");
    assert_eq!(widths(&net), [32, 32, 32, 64]);
    // By hand: exponents 0,1,2,2,3,3.
    assert_eq!(depths(&net), [1, 1, 2, 2]);
    assert!(net.stages.iter().all(|s| s.stride == 2));
    assert_eq!(out_sizes(&net), [56, 28, 14, 7]);

    let arch = net.architecture("equal");
    let blocks: Vec<_> = arch.blocks().collect();
    assert_eq!(blocks.len(), 6);
    for block in &blocks {
        let first = block.index == 1;
        assert_eq!(block.stride, if first { 2 } else { 1 }, "{block:?}");
        assert_eq!(block.has_projection(), first, "{block:?}");
    }
    // s2.b1 and s3.b1 go from 32 to 32 channels, yet downsample and project.
    let s2b1 = blocks
        .iter()
        .find(|b| (b.stage, b.index) == (2, 1))
        .unwrap();
    assert_eq!((s2b1.in_width, s2b1.width, s2b1.stride), (32, 32, 2));

    let graph = graph::build(&arch);
    let names: Vec<&str> = graph.node_weights().map(|n| n.name.as_str()).collect();
    for proj in ["s1.b1.proj", "s2.b1.proj", "s3.b1.proj", "s4.b1.proj"] {
        assert!(names.contains(&proj), "missing {proj}");
    }
    assert!(!names.contains(&"s3.b2.proj"));
    assert!(!names.contains(&"s4.b2.proj"));
}

/// `8,24,10,2,18,1`: [18,54,90], multiples of g' = 18 but not of 8. Depths by hand: exponents
/// 0,1,1,1,1,2,2,2.
#[test]
fn widths_not_multiples_of_eight() {
    let net = compile(8, 24, 10.0, 2.0, 18, "");
    assert_eq!(widths(&net), [18, 54, 90]);
    assert_eq!(depths(&net), [1, 4, 3]);
    assert!(widths(&net).iter().any(|w| w % 8 != 0));
    assert!(net.stages.iter().all(|s| s.group_width == 18));
}

/// Same model with SE: s2.b1 has w_in = 18, and 18/4 = 4.5 rounds to 4 (half-even). The other
/// SE widths follow §1 step 6 (round(w_in/4), half-even): 32/4 = 8; 54/4 = 13.5 → 14;
/// 90/4 = 22.5 → 22.
#[test]
fn se_tie_rounds_half_to_even() {
    let net = compile(8, 24, 10.0, 2.0, 18, "se: true\n");
    assert!(net.spec.se);
    assert_eq!(widths(&net), [18, 54, 90]);
    let se: Vec<_> = net
        .stages
        .iter()
        .map(|s| (s.se_width, s.se_width_rest))
        .collect();
    assert_eq!(
        se,
        [(Some(8), None), (Some(4), Some(14)), (Some(14), Some(22))]
    );

    let arch = net.architecture("se-tie");
    let s2b1 = arch
        .blocks()
        .find(|b| (b.stage, b.index) == (2, 1))
        .unwrap();
    assert_eq!((s2b1.in_width, s2b1.se_width), (18, Some(4)));
    let graph = graph::build(&arch);
    let se_node = graph
        .node_weights()
        .find(|n| n.name == "s2.b1.f.se")
        .expect("s2.b1.f.se");
    assert_eq!(se_node.op, Op::SqueezeExcite { width: 4 });
}

/// `w0 = 20`: rejected (not rounded), with a diagnostic on w0 at its line:column.
#[test]
fn w0_not_a_multiple_of_eight_is_rejected() {
    let source = yaml(13, 20, 36.44, 2.49, 8, "");
    let error = assert_field_error(&source, "w0", 2);
    assert_eq!(error.diagnostics.len(), 1, "{error}");
    assert_eq!(error.origin, ORIGIN);
}

// ---------------------------------------------------------------------------------------------
// REFERENCE.md §2, float precision and rounding mode.
// ---------------------------------------------------------------------------------------------

/// w0 = 200, wm = 2.3: 460/8 = 57.5 exactly, but f64 gives 459.99999999999994 → 456 (pycls),
/// while f32 gives 460.0 → 58·8 = 464 (torchvision). Both pass their compat rule with g = 8.
#[test]
fn float64_versus_float32_quantization() {
    let pycls = compile(2, 200, 260.0, 2.3, 8, "");
    assert_eq!(widths(&pycls), [200, 456]);
    assert_eq!(depths(&pycls), [1, 1]);
    let tv = compile(2, 200, 260.0, 2.3, 8, "compat: torchvision\n");
    assert_eq!(widths(&tv), [200, 464]);
    assert_eq!(depths(&tv), [1, 1]);
}

/// RegNetX-1.6GF: the quantize tie 80·2.25/8 = 22.5 rounds to 22 (176 → compat 168), not 23
/// (→ 192, 1.683 GF). torchvision (f32, torch.round is half-even too) agrees (§3: x_1_6gf "=").
#[test]
fn regnetx_1_6gf_quantize_tie() {
    let net = compile(18, 80, 34.01, 2.25, 24, "");
    assert_eq!(net.stages[1].width, 168);
    assert_eq!(widths(&net), [72, 168, 408, 912]);
    assert_eq!(depths(&net), [2, 4, 10, 2]);
    assert_eq!(net.complexity.flops, 1_602_850_792);
    let tv = compile(18, 80, 34.01, 2.25, 24, "compat: torchvision\n");
    assert_eq!(widths(&tv), [72, 168, 408, 912]);
}

/// RegNetX-400MF: the compat tie 392/16 = 24.5 rounds to 24, so s4 = 384 (not 400). torchvision's
/// half-up rule gives 400 (§3).
#[test]
fn regnetx_400mf_compat_tie() {
    let net = compile(22, 24, 24.48, 2.54, 16, "");
    assert_eq!(net.stages[3].width, 384);
    assert_eq!(widths(&net), [32, 64, 160, 384]);
    let cx = net.complexity;
    assert_eq!(
        (cx.flops, cx.params, cx.acts),
        (397_678_568, 5_157_512, 3_143_272)
    );
    let tv = compile(22, 24, 24.48, 2.54, 16, "compat: torchvision\n");
    assert_eq!(widths(&tv), [32, 64, 160, 400]);
    let cx = tv.complexity;
    assert_eq!(
        (cx.flops, cx.params, cx.acts),
        (413_813_608, 5_495_976, 3_174_632)
    );
}

/// RegNetY-800MF: the compat ties 136/16 = 8.5 and 776/16 = 48.5 give s2 = 128 and s4 = 768
/// (half-even), where half-up (torchvision) gives 144 and 784 (§3).
#[test]
fn regnety_800mf_compat_ties() {
    let net = compile(14, 56, 38.84, 2.4, 16, "se: true\n");
    assert_eq!(net.stages[1].width, 128);
    assert_eq!(net.stages[3].width, 768);
    assert_eq!(widths(&net), [64, 128, 320, 768]);
    let cx = net.complexity;
    assert_eq!(
        (cx.flops, cx.params, cx.acts),
        (797_183_328, 6_263_168, 5_249_888)
    );
    let tv = compile(14, 56, 38.84, 2.4, 16, "se: true\ncompat: torchvision\n");
    assert_eq!(widths(&tv), [64, 144, 320, 784]);
    let cx = tv.complexity;
    assert_eq!(
        (cx.flops, cx.params, cx.acts),
        (833_862_848, 6_432_512, 5_420_896)
    );
}

// ---------------------------------------------------------------------------------------------
// Validation: every rule names its field and where it is.
// ---------------------------------------------------------------------------------------------

/// RegNetX-200MF with one line replaced (lines: 1 d, 2 w0, 3 wa, 4 wm, 5 g, 6 b, 7 extra).
fn x200_with(field: &str, value: &str) -> String {
    let mut lines = vec![
        "d: 13".to_owned(),
        "w0: 24".to_owned(),
        "wa: 36.44".to_owned(),
        "wm: 2.49".to_owned(),
        "g: 8".to_owned(),
        "b: 1".to_owned(),
    ];
    let line = format!("{field}: {value}");
    match lines
        .iter()
        .position(|l| l.starts_with(&format!("{field}:")))
    {
        Some(i) => lines[i] = line,
        None => lines.push(line),
    }
    lines.join("\n") + "\n"
}

fn line_of(source: &str, field: &str) -> usize {
    source
        .lines()
        .position(|l| l.starts_with(&format!("{field}:")))
        .map(|i| i + 1)
        .unwrap()
}

/// Asserts that setting `field: value` on an otherwise valid spec is rejected on that field.
fn rejects(field: &str, value: &str) {
    let source = x200_with(field, value);
    assert_field_error(&source, field, line_of(&source, field));
}

#[test]
fn the_base_spec_is_valid() {
    let net = compile_str(&x200_with("b", "1"), ORIGIN).unwrap();
    assert_eq!(widths(&net), [24, 56, 152, 368]);
}

#[test]
fn d_zero_is_rejected() {
    rejects("d", "0");
}

#[test]
fn d_above_the_maximum_is_rejected() {
    rejects("d", "4294967295");
}

#[test]
fn g_zero_is_rejected() {
    rejects("g", "0");
}

#[test]
fn wm_not_above_one_is_rejected() {
    rejects("wm", "1");
    rejects("wm", "1.0");
    rejects("wm", "0.5");
    rejects("wm", "0");
    rejects("wm", "-2.5");
}

#[test]
fn negative_wa_is_rejected() {
    rejects("wa", "-1");
    rejects("wa", "-0.001");
}

#[test]
fn non_positive_b_is_rejected() {
    rejects("b", "0");
    rejects("b", "-1");
}

#[test]
fn zero_resolution_is_rejected() {
    rejects("resolution", "0");
}

#[test]
fn zero_num_classes_is_rejected() {
    rejects("num_classes", "0");
}

#[test]
fn zero_stem_width_is_rejected() {
    rejects("stem_w", "0");
}

#[test]
fn w0_not_a_multiple_of_q_is_rejected() {
    rejects("w0", "20");
    rejects("w0", "4");
    // With q = 4, w0 = 20 is fine; with q = 16, w0 = 24 is not.
    let source = x200_with("w0", "20") + "q: 4\n";
    assert!(compile_str(&source, ORIGIN).is_ok(), "{source}");
    let source = x200_with("q", "16");
    assert_field_error(&source, "w0", 2);
}

#[test]
fn w0_zero_is_rejected() {
    rejects("w0", "0");
}

#[test]
fn q_zero_is_rejected() {
    let source = x200_with("q", "0");
    let error = assert_field_error(&source, "q", 7);
    // No division by zero and no second complaint about w0 % q.
    assert_eq!(error.diagnostics.len(), 1, "{error}");
}

#[test]
fn nan_and_infinity_are_rejected() {
    for value in [".nan", ".NaN", ".inf", "-.inf", ".Inf"] {
        rejects("wa", value);
        rejects("wm", value);
        rejects("b", value);
    }
    // Integer fields cannot hold them at all.
    for value in [".nan", ".inf"] {
        rejects("d", value);
        rejects("w0", value);
        rejects("g", value);
        rejects("resolution", value);
    }
    let source = x200_with("se", "true") + "se_ratio: .nan\n";
    assert_field_error(&source, "se_ratio", 8);
}

#[test]
fn unknown_key_is_rejected() {
    let source = x200_with("foo", "1");
    let error = assert_field_error(&source, "foo", 7);
    assert_eq!(error.diagnostics.len(), 1, "{error}");
    // A misspelt optional field is an unknown key too, not silently ignored.
    rejects("resolutoin", "224");
}

#[test]
fn wrong_type_is_rejected() {
    let source = x200_with("wa", "twenty");
    let error = assert_field_error(&source, "wa", 3);
    assert_eq!(error.diagnostics.len(), 1, "{error}");
    rejects("d", "thirteen");
    rejects("d", "-1");
    rejects("d", "13.5");
    rejects("se", "maybe");
    rejects("compat", "keras");
    rejects("w0", "[24]");
}

#[test]
fn missing_required_field_is_reported() {
    let source = "d: 13\nw0: 24\nwa: 36.44\ng: 8\n";
    let error = compile_err(source);
    let fields: Vec<_> = error
        .diagnostics
        .iter()
        .map(|d| d.field.as_deref())
        .collect();
    assert_eq!(fields, [Some("wm")]);
}

/// Five rules broken at once (d = 0, w0 % 8 ≠ 0, wa < 0, wm ≤ 1, g = 0): five diagnostics in one
/// error, each at its own line of the source, in file order.
#[test]
fn every_value_error_is_reported_at_once() {
    let source = "d: 0\nw0: 20\nwa: -1\nwm: 1\ng: 0\n";
    let error = compile_err(source);
    assert_eq!(error.diagnostics.len(), 5, "{error}");
    let located: Vec<(&str, Location)> = error
        .diagnostics
        .iter()
        .map(|d| (d.field.as_deref().unwrap(), d.location.unwrap()))
        .collect();
    let at = |line| Location { line, column: 1 };
    assert_eq!(
        located,
        [
            ("d", at(1)),
            ("w0", at(2)),
            ("wa", at(3)),
            ("wm", at(4)),
            ("g", at(5))
        ]
    );
    assert_eq!(error.lines().count(), 5);
    assert_eq!(error.to_string().lines().count(), 5);
}

/// Parse-level problems are collected too: an unknown key, a wrongly typed value and a missing
/// field give three diagnostics (the missing field has no position, so it comes last).
#[test]
fn every_parse_error_is_reported_at_once() {
    let source = "d: 13\nw0: 24\nwa: twenty\nwm: 2.49\nfoo: 1\n";
    let error = compile_err(source);
    let fields: Vec<&str> = error
        .diagnostics
        .iter()
        .map(|d| d.field.as_deref().unwrap())
        .collect();
    assert_eq!(fields, ["wa", "foo", "g"], "{error}");
    let locations: Vec<_> = error.diagnostics.iter().map(|d| d.location).collect();
    assert_eq!(
        locations,
        [
            Some(Location { line: 3, column: 1 }),
            Some(Location { line: 5, column: 1 }),
            None
        ]
    );
}

/// Parse problems and rule violations come in the same error: d = 0 (rule), wa of the wrong type,
/// wm ≤ 1 (rule) and an unknown key give four diagnostics.
#[test]
fn parse_and_value_errors_are_reported_together() {
    let source = "d: 0\nw0: 24\nwa: twenty\nwm: 1\ng: 8\nfoo: 1\n";
    let error = compile_err(source);
    let located: Vec<(&str, usize)> = error
        .diagnostics
        .iter()
        .map(|d| (d.field.as_deref().unwrap(), d.location.unwrap().line))
        .collect();
    assert_eq!(
        located,
        [("d", 1), ("wa", 3), ("wm", 4), ("foo", 6)],
        "{error}"
    );
}

/// A mistyped or missing field is reported once, not again by the rule its placeholder breaks
/// (wm = 0, g = 0 would also violate wm > 1 and g ≥ 1).
#[test]
fn unusable_fields_are_reported_once() {
    let source = x200_with("wm", "twenty");
    let error = compile_err(&source);
    assert_eq!(error.diagnostics.len(), 1, "{error}");
    assert_eq!(error.diagnostics[0].field.as_deref(), Some("wm"));
    let error = compile_err("d: 13\nw0: 24\nwa: 36.44\nwm: 2.49\n");
    assert_eq!(error.diagnostics.len(), 1, "{error}");
    assert_eq!(error.diagnostics[0].field.as_deref(), Some("g"));
}

#[test]
fn non_mapping_documents_are_rejected() {
    for source in ["", "13", "- d: 13\n", "d: [13\n"] {
        let error = compile_err(source);
        assert!(!error.diagnostics.is_empty(), "{source:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// Bad inputs never panic.
// ---------------------------------------------------------------------------------------------

/// Compiles `source`, turning a panic into a test failure that names the input.
fn compile_without_panic(source: &str) -> Result<CompiledSpec, SpecError> {
    let owned = source.to_owned();
    panic::catch_unwind(move || compile_str(&owned, ORIGIN))
        .unwrap_or_else(|_| panic!("compile_str panicked on\n{source}"))
}

#[test]
fn huge_values_are_rejected_without_panicking() {
    // Each is outside the crate's bounds (d ≤ 1024, widths ≤ 2^20) or gives counts beyond u64.
    let cases = [
        ("d", "4294967295"),
        ("w0", "4294967288"),
        ("stem_w", "4294967295"),
        ("resolution", "4294967295"),
        ("wa", "1e308"),
        ("wa", "1e400"),
    ];
    for (field, value) in cases {
        let source = x200_with(field, value);
        let result = compile_without_panic(&source);
        assert!(result.is_err(), "{source} was accepted");
    }
    // A width past the f64 → u64 cast used to be reported as 18446744073709551615 channels.
    let error =
        compile_without_panic("d: 1024\nw0: 1048576\nwa: 1e300\nwm: 1e300\ng: 8\n").unwrap_err();
    assert_eq!(
        error.diagnostics[0].message,
        "stage 2 quantizes to more than 1048576 channels; widths must be between 1 and 1048576 \
         (check w0, wa and wm)"
    );
    // All of them at once.
    let source = "d: 4294967295\nw0: 4294967288\nwa: 1e308\nwm: 1e308\ng: 4294967295\n\
                  resolution: 4294967295\nstem_w: 4294967295\nnum_classes: 4294967295\n";
    assert!(compile_without_panic(source).is_err());
}

#[test]
fn huge_but_representable_values_do_not_panic() {
    // These may be accepted: the counts still fit in a u64.
    let cases = [
        ("num_classes", "4294967295"),
        ("g", "4294967295"),
        ("resolution", "65536"),
        ("stem_w", "1048576"),
        ("d", "1024"),
    ];
    for (field, value) in cases {
        let source = x200_with(field, value);
        let _ = compile_without_panic(&source);
    }
    // A single block: u_0 = w0, whatever wa and wm are.
    let source = "d: 1\nw0: 24\nwa: 1e308\nwm: 1e308\ng: 8\n";
    let net = compile_without_panic(source).unwrap();
    assert_eq!(widths(&net), [24]);
    // wm = 1e308: every exponent ln(u_j/24)/ln(1e308) < 0.005 rounds to 0, so one stage.
    let net = compile_without_panic(&x200_with("wm", "1e308")).unwrap();
    assert_eq!((widths(&net), depths(&net)), (vec![24], vec![13]));
    // wm barely above 1: exponents become huge, widths stay finite.
    let _ = compile_without_panic(&x200_with("wm", "1.0000000000000002"));
    // Values past the integer types are type errors, not panics.
    for (field, value) in [("w0", "-8"), ("g", "1e3"), ("d", "4294967296")] {
        rejects(field, value);
    }
    // Past u64, the YAML layer itself refuses the number: a general diagnostic at the value.
    let error = compile_without_panic(&x200_with("d", "18446744073709551616")).unwrap_err();
    assert_eq!(error.diagnostics.len(), 1, "{error}");
    assert_eq!(error.diagnostics[0].location.map(|l| l.line), Some(1));
    let net = compile_without_panic(&x200_with("num_classes", "4294967295")).unwrap();
    assert!(net.complexity.params > 4_294_967_295);
}

/// A tiny paper b (a huge bottleneck multiplier 1/b) makes the bottleneck width enormous. The
/// crate bounds stage widths by 2^20 but not bottleneck widths, so these overflow integer
/// arithmetic: `lcm` in `quantize::compatible` (1/b saturates to usize::MAX), and the u128
/// complexity counter (bottleneck width 2^60 with b = 2^-40).
#[test]
fn tiny_b_does_not_panic() {
    let x200 = |b: &str| x200_with("b", b);
    let cases = [
        x200("1e-30"),
        x200("1e-300"),
        x200("9.094947017729282e-13") + "compat: torchvision\n",
        // 1/b = 10^18: width 8, bottleneck width 8·10^18; 9·w_b² overflows u128.
        "d: 1\nw0: 8\nwa: 0\nwm: 2\ng: 8\nb: 1e-18\n".to_owned(),
        "d: 1\nw0: 1048576\nwa: 0\nwm: 2\ng: 8\nb: 9.094947017729282e-13\n".to_owned(),
        "d: 1\nw0: 1048576\nwa: 0\nwm: 2\ng: 8\nb: 9.094947017729282e-13\ncompat: torchvision\n"
            .to_owned(),
    ];
    let panicking: Vec<&String> = cases
        .iter()
        .filter(|source| {
            let owned = (*source).clone();
            panic::catch_unwind(move || compile_str(&owned, ORIGIN)).is_err()
        })
        .collect();
    assert!(
        panicking.is_empty(),
        "compile_str panicked on {panicking:#?}"
    );
}

// ---------------------------------------------------------------------------------------------
// Hostile input: what a file is, how large and how slow it may be, and what errors echo.
// ---------------------------------------------------------------------------------------------

const X200: &str = "d: 13\nw0: 24\nwa: 36.44\nwm: 2.49\ng: 8\n";

/// The rendered error lines of a spec that must be rejected.
fn error_lines(source: &str) -> Vec<String> {
    compile_err(source).lines().collect()
}

/// A file of its own in the temp directory, removed when dropped.
struct TempFile(std::path::PathBuf);

impl TempFile {
    fn new(name: &str) -> Self {
        let path = std::env::temp_dir().join(format!("regnet-edge-{}-{name}", std::process::id()));
        let _ = std::fs::remove_file(&path);
        TempFile(path)
    }

    fn with(name: &str, contents: &[u8]) -> Self {
        let file = TempFile::new(name);
        std::fs::write(&file.0, contents).unwrap();
        file
    }

    fn compile_error(&self) -> Vec<String> {
        let error = compile_file(&self.0, "spec.yaml").expect_err("the file must be refused");
        error.lines().collect()
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[test]
fn what_is_not_a_regular_file_is_named_not_read() {
    let directory = compile_file(&std::env::temp_dir(), "dir").unwrap_err();
    assert_eq!(
        directory.to_string(),
        "dir: cannot read the spec: it is a directory, not a regular file"
    );
    #[cfg(unix)]
    for device in ["/dev/zero", "/dev/urandom"] {
        let error = compile_file(Path::new(device), device).unwrap_err();
        assert_eq!(
            error.to_string(),
            format!("{device}: cannot read the spec: it is a character device, not a regular file")
        );
    }
}

/// A FIFO used to block `compile_file` forever: the open waits for a writer.
#[cfg(unix)]
#[test]
fn a_fifo_is_refused_without_waiting_for_a_writer() {
    let fifo = TempFile::new("fifo.yaml");
    let made = std::process::Command::new("mkfifo").arg(&fifo.0).status();
    if !made.is_ok_and(|status| status.success()) {
        eprintln!("SKIPPED: mkfifo is not available");
        return;
    }
    let path = fifo.0.clone();
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || sender.send(compile_file(&path, "spec.yaml").map(|_| ())));
    let result = receiver
        .recv_timeout(Duration::from_secs(10))
        .expect("compile_file blocked on a FIFO");
    assert_eq!(
        result.unwrap_err().to_string(),
        "spec.yaml: cannot read the spec: it is a FIFO (named pipe), not a regular file"
    );
}

#[test]
fn a_spec_file_over_the_cap_is_refused_and_one_at_it_is_read() {
    let padding = MAX_SPEC_BYTES as usize - X200.len();
    let mut at_cap = X200.as_bytes().to_vec();
    at_cap.resize(MAX_SPEC_BYTES as usize, b'\n');
    let at = TempFile::with("at-cap.yaml", &at_cap);
    assert!(
        compile_file(&at.0, "spec.yaml").is_ok(),
        "{padding} blank lines"
    );
    at_cap.push(b'\n');
    let over = TempFile::with("over-cap.yaml", &at_cap);
    assert_eq!(
        over.compile_error(),
        ["spec.yaml: cannot read the spec: it is 1048577 bytes; a spec is at most 1048576 bytes"]
    );
}

#[test]
fn invalid_utf8_is_located() {
    let file = TempFile::with("latin1.yaml", b"d: 13\nw0: 24\nname: caf\xe9\n");
    assert_eq!(
        file.compile_error(),
        ["spec.yaml:3:10: the spec is not UTF-8 text (a spec is YAML, which is UTF-8)"]
    );
}

/// `se_ratio: 1e12` gave SE widths of 10^13 channels, past the 2^20 cap; at 1e15 the error
/// blamed the resolution and widths.
#[test]
fn se_ratio_is_at_most_one() {
    for ratio in ["1e12", "1e15", "1.01", "0", "-0.25", ".inf"] {
        let source = x200_with("se", "true") + &format!("se_ratio: {ratio}\n");
        let error = assert_field_error(&source, "se_ratio", 8);
        assert_eq!(error.diagnostics.len(), 1, "{error}");
    }
    assert_eq!(
        error_lines(&(x200_with("se", "true") + "se_ratio: 1e12\n")),
        [
            "edge.yaml:8:1: field `se_ratio`: se_ratio = 1000000000000 must be greater than 0 and \
             at most 1 (SE width = se_ratio × block input width)"
        ]
    );
    // The bound itself is valid: the SE is as wide as the block's input.
    let net = compile(13, 24, 36.44, 2.49, 8, "se: true\nse_ratio: 1\n");
    assert_eq!(net.stages[0].se_width, Some(32), "the stem's width");
}

#[test]
fn a_leading_byte_order_mark_is_accepted() {
    let net = compile_str(&format!("\u{feff}{X200}"), ORIGIN).unwrap();
    assert_eq!(widths(&net), [24, 56, 152, 368]);
    // Positions are the editor's: the mark takes no column.
    let error = compile_err(&format!("\u{feff}{X200}colour: red\n"));
    assert_eq!(
        error.diagnostics[0].location,
        Some(Location { line: 6, column: 1 })
    );
}

#[test]
fn huge_numbers_are_echoed_compactly() {
    assert_eq!(
        error_lines(&x200_with("w0", "1e308")),
        [
            "edge.yaml:2:1: field `w0`: expected a whole number from 0 to 4294967295, found the number 1e308"
        ]
    );
    assert_eq!(
        error_lines(&x200_with("b", "-1e300")),
        [
            "edge.yaml:6:1: field `b`: b = -1e300 must be finite and greater than 0 (bottleneck width = width / b)"
        ]
    );
    let stages = "depths: [1]\nwidths: [8]\ngroup_widths: [8]\nbottleneck_ratios: [1e300]\n";
    assert_eq!(
        error_lines(stages),
        [
            "edge.yaml:4:1: field `bottleneck_ratios`: stage 1: width 8 / bottleneck ratio 1e300 rounds to 0 bottleneck channels; it must be from 1 to 1048576"
        ]
    );
    assert_eq!(format_number(36.44), "36.44");
    assert_eq!(format_number(1e12), "1000000000000");
    assert_eq!(format_number(5e-324), "5e-324");
}

/// `d: !foo 13` was read as 13, the tag dropped.
#[test]
fn yaml_tags_are_refused_at_the_value() {
    assert_eq!(
        error_lines(&x200_with("d", "!foo 13")),
        [
            "edge.yaml:1:4: field `d`: the YAML tag `!foo` is not supported; a spec's values are \
             plain numbers, strings, booleans and lists"
        ]
    );
    let lines = error_lines(&x200_with("wa", "[1, !!python/object 2]"));
    assert_eq!(lines.len(), 1, "{lines:#?}");
    assert!(
        lines[0].starts_with(
            "edge.yaml:3:9: field `wa`: the YAML tag `tag:yaml.org,2002:python/object`"
        ),
        "{lines:#?}"
    );
    // The core schema's tags say what YAML already infers.
    let net = compile_str(&x200_with("d", "!!int 13"), ORIGIN).unwrap();
    assert_eq!(depths(&net), [1, 1, 4, 7]);
}

/// A spec that is one string used to be echoed whole: a symlink to a system file printed it.
#[test]
fn echoed_values_are_one_line_of_at_most_60_characters() {
    let long = "x".repeat(5_000_000);
    let lines = error_lines(&long);
    assert_eq!(
        lines,
        [format!(
            "edge.yaml: a spec is a YAML mapping of fields (d, w0, wa, wm, g, ... or depths, \
             widths, ...), found the string \"{}…\"",
            "x".repeat(60)
        )]
    );
    let lines = error_lines(&X200.replace("w0: 24", "w0: \"first line\\nsecond line\""));
    assert_eq!(
        lines,
        [
            "edge.yaml:2:1: field `w0`: expected a whole number from 0 to 4294967295, found the string \"first line…\""
        ]
    );
    // A key is quoted too, escaped so that it cannot drive the terminal.
    let lines = error_lines(&format!("{X200}\"\\e[2J{}\": 1\n", "k".repeat(1000)));
    assert_eq!(lines.len(), 1);
    assert!(
        lines[0].starts_with("edge.yaml:6:1: field `\\u{1b}[2Jkkk"),
        "{lines:#?}"
    );
    assert!(lines[0].len() < 300, "{}", lines[0]);
}

/// Every key's position used to re-parse the whole file: 10,000 unknown keys took 112 s.
#[test]
fn many_keys_are_located_in_one_pass_and_reported_in_a_bounded_list() {
    let keys: String = (0..4000).map(|i| format!("key{i}: 1\n")).collect();
    let start = Instant::now();
    let error = compile_err(&format!("{X200}{keys}"));
    let elapsed = start.elapsed();
    assert!(elapsed < Duration::from_secs(5), "{elapsed:?}");
    let lines: Vec<String> = error.lines().collect();
    assert_eq!(lines.len(), MAX_REPORTED + 1);
    assert!(
        lines[0].starts_with("edge.yaml:6:1: field `key0`: unknown key"),
        "{}",
        lines[0]
    );
    assert!(lines[19].starts_with("edge.yaml:25:1: field `key19`: unknown key"));
    assert_eq!(
        lines[20],
        "edge.yaml: 3980 more problems not shown (the first 20 are above)"
    );
}

/// 200 KB of `[` took 60 s: libyaml's scanner costs the depth for each token.
#[test]
fn deep_nesting_is_refused_quickly_at_its_place() {
    // The document's mapping is level 1, so the 32nd opening bracket is the 33rd level: column
    // 4 + 31 for `[`, 4 + 31 × 4 for `{a: `.
    for (value, column) in [("[".repeat(200_000), 35), ("{a: ".repeat(50_000), 128)] {
        let start = Instant::now();
        let lines = error_lines(&format!("{X200}b: {value}\n"));
        let elapsed = start.elapsed();
        assert!(elapsed < Duration::from_secs(5), "{elapsed:?}");
        assert_eq!(
            lines,
            [format!(
                "edge.yaml:6:{column}: field `b`: lists and mappings nest more than 32 levels \
                 deep here; a spec's values are numbers, strings or flat lists"
            )]
        );
    }
}

/// Lists, keys or values by the hundred thousand cost serde_yaml seconds and memory: reading
/// stops past what any valid spec needs.
#[test]
fn a_spec_of_too_many_nodes_is_refused_quickly() {
    let long_list = format!("{X200}q: [{}1]\n", "1, ".repeat(300_000));
    let start = Instant::now();
    let lines = error_lines(&long_list);
    let elapsed = start.elapsed();
    assert!(elapsed < Duration::from_secs(5), "{elapsed:?}");
    // Nodes: the mapping, 6 keys, 5 values and the list are 13, so node 8193 is entry 8179,
    // at column 5 + 3 × 8179 = 24542.
    assert_eq!(
        lines,
        [
            "edge.yaml:6:24542: field `q`: the spec has more than 8192 keys, values and lists; a \
             spec has at most 18 fields and 1024 entries per list"
        ]
    );
}

/// An alias repeats its anchor's value without repeating its text: 50,000 aliases of a
/// 100,000-entry list would be 5·10⁹ values.
#[test]
fn aliases_are_refused() {
    assert_eq!(
        error_lines(&format!("{X200}depths: &d [1, 2]\nwidths: *d\n")),
        [
            "edge.yaml:7:9: field `widths`: YAML aliases (`*name`) are not supported in a spec; \
             write the value out"
        ]
    );
}
