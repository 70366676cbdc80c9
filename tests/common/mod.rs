//! What the parity tests share: reading fixture tensors and comparing a forward pass's logits and
//! stage outputs with PyTorch's.

use std::path::Path;

use std::fmt::Debug;

use regnet::runtime::FeatureMaps;
use regnet::runtime::weights::decode_f32;
use safetensors::SafeTensors;

/// Stem and stage outputs must match PyTorch's within this; logits within `LOGIT_TOLERANCE`.
pub const FEATURE_TOLERANCE: f32 = 1e-4;
pub const LOGIT_TOLERANCE: f32 = 1e-5;

/// An F32 tensor of a safetensors file: data and shape.
pub fn tensor(path: &Path, name: &str) -> (Vec<f32>, Vec<usize>) {
    let bytes = std::fs::read(path).unwrap();
    let tensors = SafeTensors::deserialize(&bytes).unwrap();
    let view = tensors.tensor(name).unwrap();
    assert_eq!(view.dtype(), safetensors::Dtype::F32, "{name} dtype");
    let data = decode_f32(view.dtype(), view.data()).unwrap();
    (data, view.shape().to_vec())
}

fn max_difference(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f32::max)
}

/// Checks one forward pass against `expected.safetensors` (logits, stem, s1..): shapes exactly,
/// values within the tolerances; prints the measured differences.
/// `isa` names where the pass ran (an `Isa`, or a GPU).
pub fn check(
    fixture: &str,
    isa: impl Debug,
    expected: &Path,
    logits: &[f32],
    features: &FeatureMaps<'_>,
) {
    let mut report = Vec::new();
    let (want, shape) = tensor(expected, "stem");
    let (stem, stem_shape) = features.stem();
    assert_eq!(stem_shape.to_vec(), shape, "{fixture} stem shape");
    report.push((
        "stem".to_owned(),
        max_difference(stem, &want),
        FEATURE_TOLERANCE,
    ));
    for stage in 1..=features.stages() {
        let name = format!("s{stage}");
        let (want, shape) = tensor(expected, &name);
        let (got, got_shape) = features.stage(stage).unwrap();
        assert_eq!(got_shape.to_vec(), shape, "{fixture} {name} shape");
        report.push((name, max_difference(got, &want), FEATURE_TOLERANCE));
    }
    let (want, _) = tensor(expected, "logits");
    report.push((
        "logits".to_owned(),
        max_difference(logits, &want),
        LOGIT_TOLERANCE,
    ));
    eprintln!("{fixture} {isa:?}: {report:?}");
    for (name, difference, tolerance) in report {
        assert!(
            difference <= tolerance,
            "{fixture} {name} ({isa:?}): max |difference| {difference} > {tolerance}"
        );
    }
}

/// Checks logits of the fixture's images in the order `images` against `expected.safetensors`.
pub fn check_logits(
    fixture: &str,
    isa: impl Debug,
    expected: &Path,
    logits: &[f32],
    images: &[usize],
) {
    let (want, shape) = tensor(expected, "logits");
    let classes = shape[1];
    let want: Vec<f32> = images
        .iter()
        .flat_map(|&n| want[n * classes..(n + 1) * classes].to_vec())
        .collect();
    let difference = max_difference(logits, &want);
    eprintln!("{fixture} {isa:?} images {images:?}: logits {difference}");
    assert!(
        difference <= LOGIT_TOLERANCE,
        "{fixture} logits of images {images:?} ({isa:?}): max |difference| {difference} > {LOGIT_TOLERANCE}"
    );
}

/// Defines a test that loads `$net` from the fixture directory `$dir` (an `Option<PathBuf>`;
/// `None` skips), expects naming scheme `$scheme`, and checks both instruction sets.
macro_rules! parity {
    ($test:ident, $net:ident, $dir:expr, $scheme:expr) => {
        #[test]
        fn $test() {
            let Some(dir) = $dir else { return };
            let model = $net::load(dir.join("model.safetensors")).unwrap();
            assert_eq!(
                model.network().scheme(),
                Some($scheme),
                "{} scheme",
                stringify!($test)
            );
            let (input, input_shape) = common::tensor(&dir.join("input.safetensors"), "input");
            let [channels, height, width] = $net::INPUT_SHAPE;
            assert_eq!(input_shape, [2, channels, height, width], "input shape");
            // Every instruction set of this architecture, the best first (one the CPU lacks
            // runs the best it has below it).
            #[cfg(not(target_arch = "aarch64"))]
            let isas = [
                regnet::runtime::Isa::Avx512,
                regnet::runtime::Isa::Avx2Fma,
                regnet::runtime::Isa::Scalar,
            ];
            #[cfg(target_arch = "aarch64")]
            let isas = [regnet::runtime::Isa::Neon, regnet::runtime::Isa::Scalar];
            for isa in isas {
                let options = regnet::runtime::Options {
                    threads: 2,
                    isa,
                    features: true,
                    ..Default::default()
                };
                let mut workspace = $net::workspace_with(2, options).unwrap();
                let isa = workspace.options().isa;
                let expected = dir.join("expected.safetensors");
                let (logits, features) = model.forward_features(&input, &mut workspace).unwrap();
                common::check(stringify!($test), isa, &expected, logits, &features);
                // Without features, whole images run on each thread (one after another on
                // one thread), and a batch that does not divide among the threads runs its
                // last images layer by layer: three images (the second fixture image, then the
                // first twice) on one and two threads take every path.
                let image = input.len() / 2;
                let three: Vec<f32> = [&input[image..], &input[..image], &input[..image]].concat();
                for threads in [1, 2] {
                    let options = regnet::runtime::Options {
                        threads,
                        isa,
                        features: false,
                        ..Default::default()
                    };
                    let mut workspace = $net::workspace_with(3, options).unwrap();
                    let logits = model.forward_slice(&three, &mut workspace).unwrap();
                    common::check_logits(stringify!($test), isa, &expected, logits, &[1, 0, 0]);
                }
            }
        }
    };
}
pub(crate) use parity;
