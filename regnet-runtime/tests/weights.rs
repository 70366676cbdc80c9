//! Checkpoint loading: the shared fixtures of all three libraries, round trips through every
//! naming scheme and dtype, the compat hint, and malformed files, which must produce errors that
//! name every problem and never a panic.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use regnet_runtime::spec::{Architecture, CompiledSpec, compile_file, compile_str};
use regnet_runtime::weights::{
    BatchNorm, ConvBn, LISTED_KEYS, Linear, LoadError, NetworkWeights, Scheme, decode_f32,
    expected_tensors, load, load_bytes,
};
use safetensors::tensor::TensorView;
use safetensors::{Dtype, SafeTensors};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/fixtures");
const SPECS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../specs");

/// Two stages (widths 8 and 16), a projection-free second block in stage 2, SE, 10 classes: every
/// kind of tensor in a few kilobytes.
const TINY: &str = "d: 3\nw0: 8\nwa: 5\nwm: 2\ng: 8\nse: true\nresolution: 32\nnum_classes: 10\n";

fn spec(file: &str) -> CompiledSpec {
    let path = Path::new(SPECS).join(file);
    compile_file(&path, file).unwrap_or_else(|e| panic!("{file}: {e}"))
}

fn tiny() -> CompiledSpec {
    compile_str(TINY, "tiny.yaml").expect("the tiny spec compiles")
}

/// The shared fixtures, or `None` (with a note) where this checkout has none.
fn fixtures() -> Option<PathBuf> {
    let dir = PathBuf::from(FIXTURES);
    if dir.is_dir() {
        Some(dir)
    } else {
        // Written past the test harness's capture so a skip shows in every run's output.
        let _ = writeln!(
            std::io::stderr(),
            "skipped: the shared fixtures are not at {} (they live in shared/fixtures beside the \
             repository)",
            dir.display()
        );
        None
    }
}

/// A directory of its own under the system temp dir, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(label: &str) -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "regnet-weights-{}-{}-{label}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).expect("create a temp dir");
        TempDir(dir)
    }

    fn write(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, bytes).expect("write a temp file");
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// One tensor to write: key, dtype, shape and raw little-endian bytes.
struct Raw {
    key: String,
    dtype: Dtype,
    shape: Vec<usize>,
    bytes: Vec<u8>,
}

impl Raw {
    fn f32(key: &str, shape: &[usize], values: &[f32]) -> Self {
        Raw {
            key: key.to_owned(),
            dtype: Dtype::F32,
            shape: shape.to_vec(),
            bytes: values.iter().flat_map(|v| v.to_le_bytes()).collect(),
        }
    }
}

fn serialize(tensors: &[Raw]) -> Vec<u8> {
    let views: Vec<(String, TensorView<'_>)> = tensors
        .iter()
        .map(|t| {
            let view = TensorView::new(t.dtype, t.shape.clone(), &t.bytes).expect("a valid view");
            (t.key.clone(), view)
        })
        .collect();
    safetensors::serialize(views, None).expect("serialize")
}

/// Every tensor of `weights` in forward order (the order of `expected_tensors`).
fn flatten(weights: &NetworkWeights) -> Vec<&[f32]> {
    fn conv_bn<'a>(out: &mut Vec<&'a [f32]>, c: &'a ConvBn) {
        let BatchNorm {
            weight,
            bias,
            running_mean,
            running_var,
        } = &c.bn;
        out.extend([&c.weight[..], weight, bias, running_mean, running_var]);
    }
    fn linear<'a>(out: &mut Vec<&'a [f32]>, l: &'a Linear) {
        out.extend([&l.weight[..], &l.bias[..]]);
    }
    let mut out = Vec::new();
    conv_bn(&mut out, &weights.stem);
    for block in &weights.blocks {
        if let Some(projection) = &block.projection {
            conv_bn(&mut out, projection);
        }
        conv_bn(&mut out, &block.reduce);
        conv_bn(&mut out, &block.grouped);
        if let Some(se) = &block.squeeze_excite {
            linear(&mut out, &se.hidden);
            linear(&mut out, &se.gate);
        }
        conv_bn(&mut out, &block.expand);
    }
    linear(&mut out, &weights.classifier);
    out
}

/// `weights` as an F32 checkpoint with `scheme`'s key names.
fn checkpoint(architecture: &Architecture, scheme: Scheme, weights: &NetworkWeights) -> Vec<Raw> {
    let expected = expected_tensors(architecture, scheme);
    let values = flatten(weights);
    assert_eq!(expected.len(), values.len());
    expected
        .iter()
        .zip(values)
        .map(|((key, shape), values)| Raw::f32(key, shape, values))
        .collect()
}

fn tiny_checkpoint(scheme: Scheme) -> Vec<Raw> {
    let network = tiny();
    let architecture = network.architecture("tiny");
    checkpoint(
        &architecture,
        scheme,
        &NetworkWeights::random(&architecture, 1),
    )
}

fn load_tiny(bytes: &[u8]) -> Result<(NetworkWeights, Scheme), LoadError> {
    let network = tiny();
    load_bytes(
        bytes,
        Path::new("tiny.safetensors"),
        &network.architecture("tiny"),
        None,
    )
}

fn numel(weights: &NetworkWeights) -> usize {
    flatten(weights).iter().map(|t| t.len()).sum()
}

#[test]
fn fixtures_load_with_their_scheme() {
    let Some(dir) = fixtures() else { return };
    // (fixture, spec, scheme, every tensor's element count as in the fixture's meta.json)
    let cases = [
        (
            "regnet_x_400mf",
            "regnetx_400mf_tv.yaml",
            Scheme::Torchvision,
            5_533_832,
        ),
        (
            "regnet_y_400mf",
            "regnety_400mf.yaml",
            Scheme::Torchvision,
            4_371_296,
        ),
        (
            "timm_regnety_002",
            "regnety_200mf.yaml",
            Scheme::Timm,
            3_183_844,
        ),
        (
            "pycls_regnetx_200mf",
            "regnetx_200mf.yaml",
            Scheme::Pycls,
            2_705_640,
        ),
    ];
    for (fixture, spec_file, scheme, elements) in cases {
        let network = spec(spec_file);
        let architecture = network.architecture(fixture);
        let path = dir.join(fixture).join("model.safetensors");
        let (weights, detected) =
            load(&path, &architecture, None).unwrap_or_else(|e| panic!("{fixture}: {e}"));
        assert_eq!(detected, scheme, "{fixture}");
        assert_eq!(numel(&weights), elements, "{fixture}");
        // The running statistics are buffers, not parameters, in pycls's count.
        let bn_channels: usize = std::iter::once(&weights.stem)
            .chain(weights.blocks.iter().flat_map(|b| {
                b.projection
                    .iter()
                    .chain([&b.reduce, &b.grouped, &b.expand])
            }))
            .map(|c| c.bn.running_mean.len() + c.bn.running_var.len())
            .sum();
        assert_eq!(
            (elements - bn_channels) as u64,
            network.complexity.params,
            "{fixture}"
        );

        let blocks: Vec<_> = architecture.blocks().collect();
        assert_eq!(weights.blocks.len(), blocks.len(), "{fixture}");
        for (block, loaded) in blocks.iter().zip(&weights.blocks) {
            assert_eq!(
                loaded.projection.is_some(),
                block.has_projection(),
                "{fixture}"
            );
            assert_eq!(
                loaded.squeeze_excite.is_some(),
                block.se_width.is_some(),
                "{fixture}"
            );
        }

        // Every value lands where its key says: compare each tensor with the file's bytes.
        let bytes = std::fs::read(&path).expect("read the fixture");
        let file = SafeTensors::deserialize(&bytes).expect("a valid fixture");
        for ((key, _), values) in expected_tensors(&architecture, scheme)
            .iter()
            .zip(flatten(&weights))
        {
            let view = file.tensor(key).expect("present");
            let raw = decode_f32(view.dtype(), view.data()).expect("F32");
            assert_eq!(raw, values, "{fixture}: {key}");
        }
    }
}

#[test]
fn torchvision_widths_against_the_pycls_spec_suggest_the_tv_spec() {
    let Some(dir) = fixtures() else { return };
    let network = spec("regnetx_400mf.yaml");
    let architecture = network.architecture("RegNetX-400MF");
    let path = dir.join("regnet_x_400mf/model.safetensors");
    let tv_widths: &[usize] = &[32, 64, 160, 400];

    let error = load(&path, &architecture, Some(("torchvision", tv_widths))).unwrap_err();
    let LoadError::Mismatch {
        scheme,
        hint,
        wrong_shape,
        ..
    } = &error
    else {
        panic!("expected a mismatch, got {error}");
    };
    assert_eq!(*scheme, Scheme::Torchvision);
    assert!(!wrong_shape.is_empty());
    let hint = hint.as_deref().expect("a hint");
    assert!(hint.contains("[32, 64, 160, 400]"), "{hint}");
    assert!(hint.contains("[32, 64, 160, 384]"), "{hint}");
    let message = error.to_string();
    assert!(message.contains("`compat: torchvision`"), "{message}");
    assert!(message.contains("_tv"), "{message}");
    let full = error.full_report();
    for (key, expected, found) in wrong_shape {
        assert!(
            full.contains(&format!(
                "wrong shape: {key}: expected {expected:?}, found {found:?}"
            )),
            "{key} not listed in:\n{full}"
        );
    }

    // Without the other rule's widths the hint still explains, but suggests no spec.
    let error = load(&path, &architecture, None).unwrap_err().to_string();
    assert!(error.contains("[32, 64, 160, 400]"), "{error}");
    assert!(!error.contains("compat:"), "{error}");
    // A different alternative is not claimed to match.
    let error = load(&path, &architecture, Some(("torchvision", &[8, 16])))
        .unwrap_err()
        .to_string();
    assert!(!error.contains("compat:"), "{error}");
}

#[test]
fn every_scheme_round_trips_the_tiny_network() {
    let network = tiny();
    let architecture = network.architecture("tiny");
    // The tiny network must exercise every kind of tensor.
    let blocks: Vec<_> = architecture.blocks().collect();
    assert!(blocks.iter().any(|b| b.has_projection()));
    assert!(blocks.iter().any(|b| !b.has_projection()));
    assert!(blocks.iter().all(|b| b.se_width.is_some()));
    assert!(blocks.iter().any(|b| b.groups > 1));

    let weights = NetworkWeights::random(&architecture, 42);
    for scheme in Scheme::ALL {
        let bytes = serialize(&checkpoint(&architecture, scheme, &weights));
        let (loaded, detected) = load_tiny(&bytes).unwrap_or_else(|e| panic!("{scheme}: {e}"));
        assert_eq!(detected, scheme);
        assert_eq!(loaded, weights, "{scheme}");

        // Tensor data at odd addresses (a checkpoint in memory at an unaligned offset) reads the same.
        let mut shifted = vec![0u8];
        shifted.extend_from_slice(&bytes);
        let (loaded, _) = load_tiny(&shifted[1..]).expect("unaligned data loads");
        assert_eq!(loaded, weights, "{scheme}, unaligned");
    }
}

#[test]
fn expected_keys_follow_each_library() {
    let network = tiny();
    let architecture = network.architecture("tiny");
    let keys = |scheme| -> Vec<(String, Vec<usize>)> { expected_tensors(&architecture, scheme) };
    let has = |scheme, key: &str, shape: &[usize]| {
        assert!(
            keys(scheme)
                .iter()
                .any(|(k, s)| k == key && s.as_slice() == shape),
            "{scheme}: no {key} {shape:?} in {:?}",
            keys(scheme)
        );
    };
    // Stage 1: 32 → 8 channels, group width 8 (1 group), SE width 32/4 = 8.
    has(Scheme::Pycls, "stem.conv.weight", &[32, 3, 3, 3]);
    has(Scheme::Pycls, "s1.b1.proj.weight", &[8, 32, 1, 1]);
    has(Scheme::Pycls, "s1.b1.bn.running_var", &[8]);
    has(Scheme::Pycls, "s1.b1.f.b.weight", &[8, 8, 3, 3]);
    has(Scheme::Pycls, "s1.b1.f.se.f_ex.0.weight", &[8, 8, 1, 1]);
    has(Scheme::Pycls, "s1.b1.f.se.f_ex.2.bias", &[8]);
    has(Scheme::Pycls, "s1.b1.f.c_bn.weight", &[8]);
    has(Scheme::Pycls, "head.fc.weight", &[10, 16]);
    has(Scheme::Timm, "stem.bn.bias", &[32]);
    has(Scheme::Timm, "s1.b1.downsample.conv.weight", &[8, 32, 1, 1]);
    has(Scheme::Timm, "s1.b1.conv2.conv.weight", &[8, 8, 3, 3]);
    has(Scheme::Timm, "s1.b1.se.fc1.weight", &[8, 8, 1, 1]);
    has(Scheme::Timm, "s2.b2.conv3.bn.running_mean", &[16]);
    has(Scheme::Timm, "head.fc.bias", &[10]);
    has(Scheme::Torchvision, "stem.0.weight", &[32, 3, 3, 3]);
    has(Scheme::Torchvision, "stem.1.running_mean", &[32]);
    // Stage 2: 8 → 16 channels, 2 groups of 8; its first block's SE width is 8/4 = 2.
    has(
        Scheme::Torchvision,
        "trunk_output.block2.block2-0.proj.0.weight",
        &[16, 8, 1, 1],
    );
    has(
        Scheme::Torchvision,
        "trunk_output.block2.block2-0.f.se.fc1.weight",
        &[2, 16, 1, 1],
    );
    has(
        Scheme::Torchvision,
        "trunk_output.block2.block2-1.f.b.0.weight",
        &[16, 8, 3, 3],
    );
    has(
        Scheme::Torchvision,
        "trunk_output.block2.block2-1.f.se.fc2.weight",
        &[16, 4, 1, 1],
    );
    has(Scheme::Torchvision, "fc.weight", &[10, 16]);
    // Blocks without a shape change have no projection.
    for scheme in Scheme::ALL {
        assert!(
            !keys(scheme)
                .iter()
                .any(|(k, _)| k.contains("s2.b2.proj") || k.contains("block2-1.proj")),
            "{scheme}"
        );
    }
    assert_eq!(Scheme::Torchvision.to_string(), "torchvision");
    assert_eq!(Scheme::Timm.to_string(), "timm");
    assert_eq!(Scheme::Pycls.to_string(), "pycls");
}

#[test]
fn detection_votes_on_block_keys() {
    assert_eq!(
        Scheme::detect(["trunk_output.block1.block1-0.f.a.0.weight"]),
        Some(Scheme::Torchvision)
    );
    assert_eq!(
        Scheme::detect(["stem.conv.weight", "s1.b1.conv1.conv.weight"]),
        Some(Scheme::Timm)
    );
    assert_eq!(
        Scheme::detect(["stem.conv.weight", "s1.b1.f.a.weight"]),
        Some(Scheme::Pycls)
    );
    // Without s1.b1, other blocks still decide.
    assert_eq!(
        Scheme::detect(["s3.b12.f.c_bn.weight", "s4.b1.bn.bias"]),
        Some(Scheme::Pycls)
    );
    // Stem and head keys are shared by pycls and timm: not enough to tell.
    assert_eq!(Scheme::detect(["stem.conv.weight", "head.fc.weight"]), None);
    assert_eq!(
        Scheme::detect(["s1.b1.conv1.conv.weight", "s1.b1.f.a.weight"]),
        None
    );
    assert_eq!(
        Scheme::detect(["model.sx.b1.f.a.weight", "s.b1.f.a", "s1.bx.f"]),
        None
    );
    assert_eq!(Scheme::detect(std::iter::empty()), None);
}

#[test]
fn missing_unexpected_and_misshapen_tensors_are_all_listed() {
    let mut tensors = tiny_checkpoint(Scheme::Pycls);
    let dropped = [
        "s1.b1.f.a.weight",
        "stem.bn.running_var",
        "s2.b2.f.se.f_ex.2.bias",
    ];
    tensors.retain(|t| !dropped.contains(&t.key.as_str()));
    tensors.push(Raw::f32("s9.b9.f.extra.weight", &[2], &[1.0, 2.0]));
    tensors.push(Raw::f32("decoder.weight", &[1], &[1.0]));
    // Ignored wherever they appear, and whatever their dtype.
    tensors.push(Raw {
        key: "s1.b1.f.a_bn.num_batches_tracked".into(),
        dtype: Dtype::I64,
        shape: vec![],
        bytes: 7i64.to_le_bytes().to_vec(),
    });
    for t in &mut tensors {
        if t.key == "s1.b1.f.b.weight" {
            t.shape = vec![8, 1, 8, 9]; // same element count, wrong layout
        }
        if t.key == "head.fc.bias" {
            *t = Raw::f32("head.fc.bias", &[11], &[0.0; 11]);
        }
    }
    let error = load_tiny(&serialize(&tensors)).unwrap_err();
    let message = error.to_string();
    let LoadError::Mismatch {
        scheme,
        missing,
        unexpected,
        wrong_shape,
        ..
    } = &error
    else {
        panic!("expected a mismatch, got {message}");
    };
    assert_eq!(*scheme, Scheme::Pycls);
    let missing_keys: Vec<&str> = missing.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        missing_keys,
        [
            "stem.bn.running_var",
            "s1.b1.f.a.weight",
            "s2.b2.f.se.f_ex.2.bias"
        ]
    );
    assert_eq!(unexpected, &["decoder.weight", "s9.b9.f.extra.weight"]);
    assert_eq!(
        wrong_shape,
        &[
            (
                "s1.b1.f.b.weight".to_owned(),
                vec![8, 8, 3, 3],
                vec![8, 1, 8, 9]
            ),
            ("head.fc.bias".to_owned(), vec![10], vec![11]),
        ]
    );
    for line in [
        "3 missing, 2 unexpected, 2 with the wrong shape",
        "missing: stem.bn.running_var [32]",
        "missing: s1.b1.f.a.weight [8, 32, 1, 1]",
        "missing: s2.b2.f.se.f_ex.2.bias [16]",
        "unexpected: decoder.weight",
        "unexpected: s9.b9.f.extra.weight",
        "wrong shape: s1.b1.f.b.weight: expected [8, 8, 3, 3], found [8, 1, 8, 9]",
        "wrong shape: head.fc.bias: expected [10], found [11]",
        "hint:",
    ] {
        assert!(message.contains(line), "`{line}` not in:\n{message}");
    }
    assert!(!message.contains("num_batches_tracked"), "{message}");
}

/// A checkpoint of another network listed hundreds of keys, the useful hint last.
#[test]
fn a_large_mismatch_is_summarized_hint_first_and_listed_whole_on_request() {
    let mut tensors = tiny_checkpoint(Scheme::Pycls);
    // Keep the stem and one block's tensors only, and add many strangers.
    tensors.retain(|t| t.key.starts_with("stem.") || t.key.starts_with("s1.b1."));
    for i in 0..40 {
        tensors.push(Raw::f32(&format!("s1.b1.f.extra{i}.weight"), &[1], &[0.0]));
    }
    let error = load_tiny(&serialize(&tensors)).unwrap_err();
    let LoadError::Mismatch {
        missing,
        unexpected,
        ..
    } = &error
    else {
        panic!("expected a mismatch, got {error}");
    };
    assert!(missing.len() > LISTED_KEYS, "{}", missing.len());
    assert_eq!(unexpected.len(), 40);
    let message = error.to_string();
    let lines: Vec<&str> = message.lines().collect();
    assert!(lines[1].starts_with("hint: "), "{message}");
    let listed = |kind: &str| {
        lines
            .iter()
            .filter(|l| l.trim_start().starts_with(kind))
            .count()
    };
    assert_eq!(listed("missing: "), LISTED_KEYS, "{message}");
    assert_eq!(listed("unexpected: "), LISTED_KEYS, "{message}");
    let left_out = missing.len() - LISTED_KEYS + 40 - LISTED_KEYS;
    assert!(
        message.ends_with(&format!(
            "... and {left_out} more (the first {LISTED_KEYS} of each kind are shown; \
             `LoadError::full_report` lists them all)"
        )),
        "{message}"
    );
    assert_eq!(lines.len(), 2 + 2 * LISTED_KEYS + 1, "{message}");
    let full = error.full_report();
    for (key, shape) in missing {
        assert!(full.contains(&format!("missing: {key} {shape:?}")), "{key}");
    }
    for key in unexpected {
        assert!(full.contains(&format!("unexpected: {key}\n")) || full.ends_with(key.as_str()));
    }
    assert!(!full.contains("more (the first"), "{full}");
}

#[test]
fn num_batches_tracked_is_ignored() {
    let mut tensors = tiny_checkpoint(Scheme::Torchvision);
    tensors.push(Raw {
        key: "stem.1.num_batches_tracked".into(),
        dtype: Dtype::I64,
        shape: vec![],
        bytes: 0i64.to_le_bytes().to_vec(),
    });
    let (_, scheme) = load_tiny(&serialize(&tensors)).expect("loads");
    assert_eq!(scheme, Scheme::Torchvision);
}

#[test]
fn hints_name_the_spec_fields_to_change() {
    // A checkpoint of the tiny network against variants of its spec.
    let bytes = serialize(&tiny_checkpoint(Scheme::Timm));
    let cases = [
        (
            TINY.replace("num_classes: 10", "num_classes: 5"),
            "`num_classes: 10`",
        ),
        (TINY.replace("se: true\n", ""), "add `se: true`"),
        (
            TINY.replace("d: 3\nw0: 8\nwa: 5", "d: 4\nw0: 8\nwa: 4"),
            "stage depths are [1, 2] but this network's are [1, 3]",
        ),
        (
            TINY.replace("w0: 8", "w0: 16"),
            "stage widths are [8, 16] but this network's are [16, 32]",
        ),
    ];
    for (source, expected) in cases {
        let network = compile_str(&source, "variant.yaml").expect("compiles");
        let error = load_bytes(
            &bytes,
            Path::new("tiny.safetensors"),
            &network.architecture("variant"),
            None,
        )
        .unwrap_err();
        let message = error.to_string();
        assert!(
            matches!(error, LoadError::Mismatch { .. }),
            "{source}: {message}"
        );
        assert!(
            message.contains(expected),
            "{source}: `{expected}` not in:\n{message}"
        );
    }
}

#[test]
fn unsupported_dtypes_are_named() {
    let mut tensors = tiny_checkpoint(Scheme::Timm);
    for t in &mut tensors {
        if t.key == "s1.b1.conv2.bn.running_var" {
            t.dtype = Dtype::I64;
            t.bytes.resize(t.bytes.len() * 2, 0);
        }
        if t.key == "head.fc.bias" {
            // F64 is not accepted either; only the first in forward order is reported.
            t.dtype = Dtype::F64;
            t.bytes.resize(t.bytes.len() * 2, 0);
        }
    }
    let error = load_tiny(&serialize(&tensors)).unwrap_err();
    let message = error.to_string();
    let LoadError::UnsupportedDtype { key, dtype, .. } = &error else {
        panic!("expected UnsupportedDtype, got {message}");
    };
    assert_eq!(key, "s1.b1.conv2.bn.running_var");
    assert_eq!(dtype, "I64");
    assert!(message.contains("F32, F16 and BF16"), "{message}");
}

#[test]
fn f16_and_bf16_convert_exactly() {
    // Values exact in both formats (at most 8 significant bits), including signs, zero and
    // the extremes of f16's range.
    let pool: Vec<f32> = (-128..128)
        .map(|k| k as f32 / 8.0)
        .chain([-0.0, 1.0 / 1024.0, 32768.0, -0.5])
        .collect();
    let network = tiny();
    let architecture = network.architecture("tiny");
    let expected = expected_tensors(&architecture, Scheme::Pycls);
    let mut values = pool.iter().copied().cycle();

    let mut tensors = Vec::new();
    let mut originals = Vec::new();
    for (i, (key, shape)) in expected.iter().enumerate() {
        let len: usize = shape.iter().product();
        let mut data: Vec<f32> = values.by_ref().take(len).collect();
        if key.ends_with("running_var") {
            // The loader refuses a negative variance.
            data.iter_mut().for_each(|v| *v = v.abs());
        }
        // Alternate F16, BF16 and F32 so one file mixes all three.
        let (dtype, bytes): (Dtype, Vec<u8>) = match i % 3 {
            0 => (
                Dtype::F16,
                data.iter()
                    .flat_map(|&v| half::f16::from_f32(v).to_le_bytes())
                    .collect(),
            ),
            1 => (
                Dtype::BF16,
                data.iter()
                    .flat_map(|&v| half::bf16::from_f32(v).to_le_bytes())
                    .collect(),
            ),
            _ => (
                Dtype::F32,
                data.iter().flat_map(|v| v.to_le_bytes()).collect(),
            ),
        };
        tensors.push(Raw {
            key: key.clone(),
            dtype,
            shape: shape.clone(),
            bytes,
        });
        originals.push(data);
    }
    let (weights, _) = load_tiny(&serialize(&tensors)).expect("loads");
    let loaded = flatten(&weights);
    for (((key, _), original), loaded) in expected.iter().zip(&originals).zip(loaded) {
        let same = original
            .iter()
            .zip(loaded)
            .all(|(a, b)| a.to_bits() == b.to_bits());
        assert!(same, "{key}: {original:?} became {loaded:?}");
    }

    // Known bit patterns: f16 0x3c00 = 1, 0xc000 = -2, 0x7bff = 65504; bf16 0x3f80 = 1,
    // 0xc040 = -3, 0x3e80 = 0.25.
    let f16_bytes: Vec<u8> = [0x3c00u16, 0xc000, 0x7bff]
        .iter()
        .flat_map(|b| b.to_le_bytes())
        .collect();
    let bf16_bytes: Vec<u8> = [0x3f80u16, 0xc040, 0x3e80]
        .iter()
        .flat_map(|b| b.to_le_bytes())
        .collect();
    for t in &mut tensors {
        if t.key == "head.fc.bias" {
            // 10 classes: pad the known values with zeros.
            t.dtype = Dtype::F16;
            t.bytes = f16_bytes.clone();
            t.bytes.resize(20, 0);
        }
        if t.key == "stem.bn.bias" {
            t.dtype = Dtype::BF16;
            t.bytes = bf16_bytes.clone();
            t.bytes.resize(64, 0);
        }
    }
    let (weights, _) = load_tiny(&serialize(&tensors)).expect("loads");
    assert_eq!(weights.classifier.bias[..3], [1.0, -2.0, 65504.0]);
    assert_eq!(weights.stem.bn.bias[..3], [1.0, -3.0, 0.25]);
}

fn assert_not_safetensors(result: Result<(NetworkWeights, Scheme), LoadError>, why: &str) {
    match result {
        Err(error @ LoadError::NotSafetensors { .. }) => {
            let message = error.to_string();
            assert!(message.contains(why), "`{why}` not in: {message}");
        }
        Err(other) => panic!("expected NotSafetensors ({why}), got {other}"),
        Ok(_) => panic!("expected NotSafetensors ({why}), but it loaded"),
    }
}

#[test]
fn files_that_are_not_safetensors_are_rejected() {
    let dir = TempDir::new("not-safetensors");
    let network = tiny();
    let architecture = network.architecture("tiny");
    let open = |name: &str, bytes: &[u8]| load(&dir.write(name, bytes), &architecture, None);

    assert_not_safetensors(open("empty.safetensors", b""), "the file is empty");
    assert_not_safetensors(open("short.safetensors", b"\x08\0\0"), "too short");
    let mut noise = Vec::new();
    let mut state = 0x1234_5678_u64;
    for _ in 0..4096 {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        noise.push(state as u8);
    }
    assert_not_safetensors(open("noise.safetensors", &noise), "header length");
    assert_not_safetensors(
        open("model.json", br#"{"stem.conv.weight": [1, 2, 3]}"#),
        "JSON text",
    );
    // A zip archive is read as a PyTorch checkpoint, and this one is cut short.
    let error = open("model.pth", b"PK\x03\x04\x14\0\0\0\0\0archive/data.pkl").unwrap_err();
    assert!(
        matches!(error, LoadError::PyTorch { .. })
            && error.to_string().contains("not a readable zip archive"),
        "{error}"
    );
    assert_not_safetensors(
        open("model.pyth", b"\x80\x02}q\0(X\x0b\0\0\0model_state"),
        "a Python pickle, but not one torch.save wrote",
    );
    // A valid length followed by a header that is not JSON.
    let mut bad_header = 6u64.to_le_bytes().to_vec();
    bad_header.extend_from_slice(b"nope!!");
    assert_not_safetensors(open("header.safetensors", &bad_header), "JSON header");
}

#[test]
fn truncated_files_are_rejected() {
    let bytes = serialize(&tiny_checkpoint(Scheme::Pycls));
    let dir = TempDir::new("truncated");
    let network = tiny();
    let architecture = network.architecture("tiny");
    let header_end = 8 + u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    for length in [
        4,
        8,
        header_end / 2,
        header_end,
        header_end + 3,
        bytes.len() - 1,
    ] {
        let path = dir.write("cut.safetensors", &bytes[..length]);
        let result = load(&path, &architecture, None);
        assert!(
            matches!(result, Err(LoadError::NotSafetensors { .. })),
            "cut at {length}: {:?}",
            result.err()
        );
    }
    // Many other lengths, without the file system: never a panic, always an error. Every length
    // around the length field and the header's end, a sample elsewhere.
    let lengths = (0..=16)
        .chain(header_end - 8..header_end + 8)
        .chain((0..bytes.len()).step_by(97));
    for length in lengths {
        let result = load_bytes(
            &bytes[..length],
            Path::new("cut.safetensors"),
            &architecture,
            None,
        );
        assert!(result.is_err(), "cut at {length}");
    }
    // A truncated copy of a real checkpoint.
    if let Some(fixtures) = fixtures() {
        let real = std::fs::read(fixtures.join("pycls_regnetx_200mf/model.safetensors"))
            .expect("read the fixture");
        let path = dir.write("half.safetensors", &real[..real.len() / 2]);
        let network = spec("regnetx_200mf.yaml");
        let error = load(&path, &network.architecture("x200"), None).unwrap_err();
        let message = error.to_string();
        assert!(
            matches!(error, LoadError::NotSafetensors { .. }),
            "{message}"
        );
        assert!(message.contains("truncated"), "{message}");
    }
}

/// A file with `header` as its JSON header and `data_len` zero bytes of data.
fn handmade(header: &str, data_len: usize) -> Vec<u8> {
    let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(header.as_bytes());
    bytes.resize(bytes.len() + data_len, 0);
    bytes
}

#[test]
fn bad_offsets_are_rejected() {
    let one = |dtype: &str, shape: usize, end: usize| {
        format!(
            r#"{{"stem.conv.weight":{{"dtype":"{dtype}","shape":[{shape}],"data_offsets":[0,{end}]}}}}"#
        )
    };
    // The tensor claims 16 bytes but the file holds 8 after the header.
    assert_not_safetensors(load_tiny(&handmade(&one("F32", 4, 16), 8)), "truncated");
    // The byte range and the shape disagree.
    assert_not_safetensors(
        load_tiny(&handmade(&one("F32", 4, 8), 8)),
        "shape and dtype",
    );
    // A shape too large to count in bytes.
    let huge = usize::MAX - 4;
    assert_not_safetensors(
        load_tiny(&handmade(&one("F32", huge, huge), 8)),
        "too large",
    );
    // Offsets so large that adding the header length overflows: nine tensors of up to
    // 2^61 - 1 bytes (one more byte and the size in bits would overflow) reach usize::MAX.
    let mut parts = Vec::new();
    let mut start = 0usize;
    let step = (1usize << 61) - 1;
    for i in 0..9 {
        let end = if i == 8 { usize::MAX } else { start + step };
        parts.push(format!(
            r#""t{i}":{{"dtype":"U8","shape":[{}],"data_offsets":[{start},{end}]}}"#,
            end - start
        ));
        start = end;
    }
    let header = format!("{{{}}}", parts.join(","));
    assert_not_safetensors(load_tiny(&handmade(&header, 16)), "truncated");
    // A gap between two tensors.
    let gap = r#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}}"#;
    assert_not_safetensors(load_tiny(&handmade(gap, 12)), "overlap or leave a gap");
}

#[test]
fn unknown_naming_lists_sample_keys_and_the_known_schemes() {
    let tensors: Vec<Raw> = (0..8)
        .map(|i| Raw::f32(&format!("encoder.layer{i}.weight"), &[1], &[0.0]))
        .collect();
    let error = load_tiny(&serialize(&tensors)).unwrap_err();
    let message = error.to_string();
    let LoadError::UnknownScheme {
        tensors, sample, ..
    } = &error
    else {
        panic!("expected UnknownScheme, got {message}");
    };
    assert_eq!(*tensors, 8);
    assert_eq!(sample.len(), 5);
    for key in sample {
        assert!(message.contains(key.as_str()), "{message}");
    }
    for scheme in ["torchvision", "timm", "pycls", "module."] {
        assert!(message.contains(scheme), "{message}");
    }
    // A file without tensors.
    assert!(matches!(
        load_tiny(&serialize(&[])),
        Err(LoadError::UnknownScheme { tensors: 0, .. })
    ));
}

#[test]
fn load_error_stays_small() {
    // Clippy's `result_large_err` flags every function returning a Result with an error of
    // 128 bytes or more, including the callers of `load`.
    assert!(std::mem::size_of::<LoadError>() < 128);
}

#[test]
fn unreadable_paths_are_io_errors() {
    let network = tiny();
    let architecture = network.architecture("tiny");
    let dir = TempDir::new("io");
    let missing = dir.0.join("nowhere.safetensors");
    let mut paths = vec![missing.as_path(), dir.0.as_path()];
    // A device is not a checkpoint either (and a FIFO would block if opened).
    let device = Path::new("/dev/null");
    if device.exists() {
        paths.push(device);
    }
    for path in paths {
        let error = load(path, &architecture, None).unwrap_err();
        let message = error.to_string();
        assert!(matches!(error, LoadError::Io { .. }), "{message}");
        assert!(
            message.starts_with(&format!("cannot read {}", path.display())),
            "{message}"
        );
    }
    let error = load(&dir.0, &architecture, None).unwrap_err().to_string();
    assert_eq!(
        error,
        format!(
            "cannot read {}: it is a directory, not a regular file; give the path of a \
             .safetensors file",
            dir.0.display()
        )
    );
}

/// A FIFO given as the checkpoint is refused at once: opening one for reading would wait for a
/// writer forever.
#[cfg(unix)]
#[test]
fn a_fifo_checkpoint_is_refused_without_blocking() {
    let network = tiny();
    let architecture = network.architecture("tiny");
    let dir = TempDir::new("fifo");
    let fifo = dir.0.join("model.safetensors");
    let made = std::process::Command::new("mkfifo").arg(&fifo).status();
    if !made.is_ok_and(|status| status.success()) {
        eprintln!("SKIPPED: mkfifo is not available");
        return;
    }
    let error = load(&fifo, &architecture, None).unwrap_err().to_string();
    assert_eq!(
        error,
        format!(
            "cannot read {}: it is a FIFO (named pipe), not a regular file; give the path of a \
             .safetensors file",
            fifo.display()
        )
    );
}

#[test]
fn corrupted_bytes_never_panic() {
    let bytes = serialize(&tiny_checkpoint(Scheme::Timm));
    let header_end = 8 + u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let mut state = 0x9e37_79b9_u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for _ in 0..400 {
        let mut copy = bytes.clone();
        // Mostly the header, where structure lives; sometimes the length field or the data.
        for _ in 0..(1 + next() % 4) {
            let at = match next() % 8 {
                0 => (next() % 8) as usize,
                1 => (next() as usize) % copy.len(),
                _ => 8 + (next() as usize) % (header_end - 8),
            };
            copy[at] = next() as u8;
        }
        // Either outcome is fine; a panic fails the test.
        let _ = load_tiny(&copy).map_err(|e| e.to_string());
    }
}

#[test]
fn random_weights_are_deterministic_and_well_shaped() {
    let network = tiny();
    let architecture = network.architecture("tiny");
    let a = NetworkWeights::random(&architecture, 3);
    assert_eq!(a, NetworkWeights::random(&architecture, 3));
    assert_ne!(a, NetworkWeights::random(&architecture, 4));

    let expected = expected_tensors(&architecture, Scheme::Timm);
    let tensors = flatten(&a);
    assert_eq!(expected.len(), tensors.len());
    for ((key, shape), values) in expected.iter().zip(&tensors) {
        assert_eq!(values.len(), shape.iter().product::<usize>(), "{key}");
        assert!(values.iter().all(|v| v.is_finite()), "{key}");
        let within = |low: f32, high: f32| values.iter().all(|&v| (low..=high).contains(&v));
        if key.ends_with("bn.weight") {
            assert!(within(0.5, 1.5), "{key}");
        } else if key.ends_with("running_var") {
            assert!(within(0.5, 2.0), "{key}");
        } else if key.ends_with("conv.weight") {
            let fan_in: usize = shape[1..].iter().product();
            // The values are drawn in f64 and rounded to f32: allow that rounding.
            let bound = 0.5 * (6.0 / fan_in as f32).sqrt() * (1.0 + 1e-6);
            assert!(within(-bound, bound), "{key}");
        }
    }
    // Not constant: a degenerate generator would still pass the range checks.
    let stem = &a.stem.weight;
    assert!(stem.iter().any(|&v| v != stem[0]));

    // A real network: every block present, parameters as pycls counts them.
    let network = spec("regnety_400mf.yaml");
    let architecture = network.architecture("RegNetY-400MF");
    let weights = NetworkWeights::random(&architecture, 0);
    assert_eq!(weights.blocks.len(), architecture.blocks().count());
    assert_eq!(numel(&weights), 4_371_296);
}

/// A checkpoint cut short and restored over and over while it loads (an editor saving, a copy
/// still running): each load either succeeds or says what went wrong, and the process survives.
/// A memory-mapped reader dies here of SIGBUS the first time it touches a page past the new end.
#[cfg(unix)]
#[test]
fn a_checkpoint_truncated_while_loading_is_an_error_not_a_crash() {
    use std::os::unix::fs::FileExt as _;
    use std::sync::atomic::AtomicBool;
    use std::time::{Duration, Instant};

    let network = spec("regnetx_200mf.yaml");
    let architecture = network.architecture("x200");
    let weights = NetworkWeights::random(&architecture, 7);
    let bytes = serialize(&checkpoint(&architecture, Scheme::Pycls, &weights));
    let dir = TempDir::new("shrinking");
    let path = dir.write("model.safetensors", &bytes);
    let stop = AtomicBool::new(false);
    let (mut loaded, mut refused) = (0, 0);
    std::thread::scope(|scope| {
        scope.spawn(|| {
            let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
            let mut cut = bytes.len();
            while !stop.load(Ordering::Relaxed) {
                // Cuts everywhere from the data's end down to the header, then the full file back.
                cut = (cut * 7 + 12_345) % bytes.len();
                file.set_len(cut as u64).unwrap();
                file.write_all_at(&bytes[cut..], cut as u64).unwrap();
            }
        });
        let deadline = Instant::now() + Duration::from_secs(10);
        while loaded + refused < 200 && Instant::now() < deadline {
            match load(&path, &architecture, None) {
                Ok((read, _)) => {
                    // A load that succeeds must have read one whole, consistent file.
                    assert_eq!(read, weights);
                    loaded += 1;
                }
                Err(LoadError::Changed { .. } | LoadError::NotSafetensors { .. }) => refused += 1,
                Err(other) => panic!("a shrinking file gave an unexpected error: {other}"),
            }
        }
        stop.store(true, Ordering::Relaxed);
    });
    eprintln!("{loaded} loads succeeded, {refused} were refused");
    let (read, _) = load(&path, &architecture, None).expect("the restored file loads");
    assert_eq!(read, weights);
}

/// A negative or non-finite running variance would fold into NaN weights (or, for +∞, a channel
/// stuck at its BN bias); the loader names the tensor and the entry instead.
#[test]
fn invalid_running_variances_are_refused() {
    let key = "s1.b1.conv2.bn.running_var";
    for (bad, shown) in [
        (-1.0, "-1"),
        (f32::NAN, "NaN"),
        (f32::INFINITY, "inf"),
        (f32::NEG_INFINITY, "-inf"),
    ] {
        let mut tensors = tiny_checkpoint(Scheme::Timm);
        let variance = tensors.iter_mut().find(|t| t.key == key).unwrap();
        let mut values = decode_f32(Dtype::F32, &variance.bytes).unwrap();
        values[3] = bad;
        *variance = Raw::f32(key, &variance.shape.clone(), &values);
        let error = load_tiny(&serialize(&tensors)).unwrap_err();
        assert!(
            matches!(&error, LoadError::InvalidVariance { key: k, index: 3, others: 0, .. } if k == key),
            "{error}"
        );
        assert_eq!(
            error.to_string(),
            format!(
                "tiny.safetensors: tensor `{key}` is a BatchNorm running variance but holds \
                 {shown} at index 3; a variance must be finite and non-negative, so the \
                 checkpoint is corrupt (export it again from the trained model)"
            )
        );
    }
    // Every bad entry is counted, and a variance of zero (a channel that never varied) is fine.
    let mut tensors = tiny_checkpoint(Scheme::Timm);
    let variance = tensors.iter_mut().find(|t| t.key == key).unwrap();
    let mut values = vec![-1.0; variance.bytes.len() / 4];
    values[0] = 0.0;
    *variance = Raw::f32(key, &variance.shape.clone(), &values);
    let message = load_tiny(&serialize(&tensors)).unwrap_err().to_string();
    let others = values.len() - 2;
    assert!(
        message.contains(&format!(
            "holds -1 at index 1 and {others} more invalid values;"
        )),
        "{message}"
    );
}

/// A CPU network reads its checkpoint step by step, folding and packing each step's tensors as
/// they arrive, not through `load`: it must run exactly the weights `load` reads (the logits of
/// the same random weights, bit for bit), and refuse a bad file with the error `load` gives.
#[test]
fn a_network_read_step_by_step_runs_what_load_reads_and_refuses_what_it_refuses() {
    use regnet_runtime::{Network, Workspace};

    let spec: &'static CompiledSpec = Box::leak(Box::new(tiny()));
    let architecture = spec.architecture("tiny");
    let dir = TempDir::new("step-by-step");
    let images = 2 * 3 * architecture.resolution * architecture.resolution;
    let input: Vec<f32> = (0..images)
        .map(|i| ((i * 37 % 101) as f32 - 50.0) / 25.0)
        .collect();
    let logits = |network: &Network| {
        let mut workspace = Workspace::new(&architecture, 2).unwrap();
        network.forward(&input, &mut workspace).unwrap().to_vec()
    };
    let expected = logits(&Network::random(architecture, 5).unwrap());
    for scheme in Scheme::ALL {
        let weights = NetworkWeights::random(&architecture, 5);
        let bytes = serialize(&checkpoint(&architecture, scheme, &weights));
        let path = dir.write(&format!("{scheme}.safetensors"), &bytes);
        let network = Network::load(architecture, &path, None).unwrap();
        assert_eq!(network.scheme(), Some(scheme));
        let got = logits(&network);
        assert!(
            got.iter()
                .zip(&expected)
                .all(|(a, b)| a.to_bits() == b.to_bits()),
            "{scheme}: {got:?} != {expected:?}"
        );
    }

    type Breaks = fn(&mut Vec<Raw>) -> usize;
    let broken: [(&str, Breaks); 4] = [
        ("variance", |tensors| {
            let variance = tensors
                .iter_mut()
                .find(|t| t.key.ends_with("conv2.bn.running_var"));
            let variance = variance.unwrap();
            *variance = Raw::f32(&variance.key.clone(), &variance.shape.clone(), &[-1.0; 8]);
            0
        }),
        ("dtypes", |tensors| {
            // Bad tensors read by different threads: the first in forward order is named.
            for t in tensors.iter_mut().filter(|t| t.key.ends_with("bias")) {
                t.dtype = Dtype::I64;
                t.bytes.resize(t.bytes.len() * 2, 0);
            }
            0
        }),
        ("missing", |tensors| {
            tensors.retain(|t| !t.key.starts_with("s2."));
            0
        }),
        // The file's last byte cut off.
        ("truncated", |_| 1),
    ];
    for (name, breaks) in broken {
        let mut tensors = tiny_checkpoint(Scheme::Timm);
        let cut = breaks(&mut tensors);
        let bytes = serialize(&tensors);
        let path = dir.write(&format!("{name}.safetensors"), &bytes[..bytes.len() - cut]);
        let by_load = load(&path, &architecture, None).unwrap_err().to_string();
        let Err(by_network) = Network::load(architecture, &path, None) else {
            panic!("{name}: the network loaded a checkpoint `load` refuses ({by_load})");
        };
        assert_eq!(by_network.to_string(), by_load, "{name}");
    }
}

/// The repository's fixture `name`'s directory and its architecture.
fn own_fixture(name: &str) -> (PathBuf, CompiledSpec) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures")
        .join(name);
    let spec = compile_file(&dir.join("spec.yaml"), "spec.yaml").unwrap();
    (dir, spec)
}

/// Files saved by PyTorch's torch.save (`tools/make_pth_fixtures.py`): the zip layout with a
/// transposed, non-contiguous tensor, and the legacy layout wrapped as pycls's .pyth. The same
/// weights as the fixtures' safetensors, from a path and from bytes.
#[test]
fn pytorch_checkpoints_of_both_layouts_give_their_safetensors_weights() {
    for (fixture, file) in [("tv_y", "model.pth"), ("pycls_y", "model.pyth")] {
        let (dir, spec) = own_fixture(fixture);
        let architecture = spec.architecture("x");
        let (want, want_scheme) =
            load(&dir.join("model.safetensors"), &architecture, None).unwrap();
        let (got, scheme) = load(&dir.join(file), &architecture, None).unwrap();
        assert_eq!(scheme, want_scheme, "{file}");
        assert_eq!(flatten(&got), flatten(&want), "{file}");
        let bytes = std::fs::read(dir.join(file)).unwrap();
        let (from_bytes, _) = load_bytes(&bytes, Path::new(file), &architecture, None).unwrap();
        assert_eq!(flatten(&from_bytes), flatten(&want), "{file}");
    }
}

/// Every prefix and many single-byte changes of both files: an error or a load, never a panic,
/// and a cut file is named a PyTorch checkpoint that cannot be read.
#[test]
fn damaged_pytorch_checkpoints_are_errors() {
    for (fixture, file) in [("tv_y", "model.pth"), ("pycls_y", "model.pyth")] {
        let (dir, spec) = own_fixture(fixture);
        let architecture = spec.architecture("x");
        let bytes = std::fs::read(dir.join(file)).unwrap();
        let name = Path::new(file);
        for cut in (4..bytes.len()).step_by(997).chain([bytes.len() - 1]) {
            let error = load_bytes(&bytes[..cut], name, &architecture, None).unwrap_err();
            assert!(
                matches!(error, LoadError::PyTorch { .. }),
                "{file} cut at {cut}: {error}"
            );
        }
        for position in (4..bytes.len()).step_by(211) {
            let mut damaged = bytes.clone();
            damaged[position] ^= 0x5a;
            let _ = load_bytes(&damaged, name, &architecture, None);
        }
    }
}

/// A legacy torch.save stream whose object is `pickle` (protocol 2 opcodes).
fn legacy_stream(pickle: &[u8]) -> Vec<u8> {
    let mut stream = vec![0x80, 0x02, 0x8a, 0x0a];
    stream.extend_from_slice(&0x1950_a86a_20f9_469c_fc6c_u128.to_le_bytes()[..10]);
    stream.push(b'.');
    stream.extend_from_slice(b"\x80\x02M\xe9\x03.");
    stream.extend_from_slice(b"\x80\x02}q\x00X\r\x00\x00\x00little_endian\x88s.");
    stream.extend_from_slice(pickle);
    // The storage keys: none.
    stream.extend_from_slice(b"\x80\x02].");
    stream
}

#[test]
fn hostile_pickles_are_refused_quickly() {
    let tiny = tiny();
    let architecture = tiny.architecture("tiny");
    let refused = |pickle: &[u8], why: &str| {
        let start = std::time::Instant::now();
        let error = load_bytes(
            &legacy_stream(pickle),
            Path::new("x.pth"),
            &architecture,
            None,
        )
        .unwrap_err()
        .to_string();
        assert!(error.contains(why), "{why}: {error}");
        assert!(start.elapsed() < std::time::Duration::from_secs(2), "{why}");
    };
    // Lists nested 10,000 deep (dropping them recursively would overflow the stack).
    let mut deep = b"\x80\x02".to_vec();
    deep.extend(std::iter::repeat_n(b']', 10_000));
    deep.extend(std::iter::repeat_n(b'a', 9_999));
    deep.push(b'.');
    refused(&deep, "nest more than 64 deep");
    // A tuple doubled through the memo 60 times: 2^60 values from 400 bytes.
    let mut bomb = b"\x80\x02)q\x00".to_vec();
    for _ in 0..60 {
        bomb.extend_from_slice(b"h\x00h\x00\x86q\x00");
    }
    bomb.push(b'.');
    refused(
        &bomb,
        "copies more values than a checkpoint of its size can hold",
    );
    // A callable that is not a tensor's rebuild runs nothing; a state dict of it is refused.
    refused(
        b"\x80\x02}q\x00X\x01\x00\x00\x00kcos\nsystem\nX\x02\x00\x00\x00lsq\x01\x85Rs.".as_slice(),
        "the state dict's `k` is a `os.system` object, not a tensor",
    );
    refused(b"\x80\x02\xff.", "opcode 0xff");
    refused(b"\x80\x02X\xff\xff\xff\xff", "truncated");
}
