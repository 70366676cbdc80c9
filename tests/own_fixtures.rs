//! Parity with PyTorch on the repository's own small fixtures (`tests/fixtures/*`, made by
//! `tools/make_fixtures.py` with torchvision and timm, and timm's network saved with pycls's key
//! names): tiny RegNetX and RegNetY (SE) networks with random weights and randomized BatchNorm,
//! in each naming scheme, on the SIMD and the scalar kernels. Stem and stage outputs within 1e-4,
//! logits within 1e-5. The fixtures ship with the repository, so this test never skips.

use std::path::{Path, PathBuf};

use regnet::runtime::{Isa, Options, Scheme};
use safetensors::SafeTensors;

regnet::regnet!(TvX = "tests/fixtures/tv_x/spec.yaml");
regnet::regnet!(TvY = "tests/fixtures/tv_y/spec.yaml");
regnet::regnet!(TimmX = "tests/fixtures/timm_x/spec.yaml");
regnet::regnet!(TimmY = "tests/fixtures/timm_y/spec.yaml");
regnet::regnet!(PyclsX = "tests/fixtures/pycls_x/spec.yaml");
regnet::regnet!(PyclsY = "tests/fixtures/pycls_y/spec.yaml");

const FEATURE_TOLERANCE: f32 = 1e-4;
const LOGIT_TOLERANCE: f32 = 1e-5;

fn fixture(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    assert!(
        dir.is_dir(),
        "{} is missing; it ships with the repository (tools/make_fixtures.py makes it)",
        dir.display()
    );
    dir
}

fn tensor(path: &Path, name: &str) -> (Vec<f32>, Vec<usize>) {
    let bytes = std::fs::read(path).unwrap();
    let tensors = SafeTensors::deserialize(&bytes).unwrap();
    let view = tensors.tensor(name).unwrap();
    assert_eq!(view.dtype(), safetensors::Dtype::F32, "{name} dtype");
    let data = view
        .data()
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
        .collect();
    (data, view.shape().to_vec())
}

fn max_difference(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f32::max)
}

macro_rules! parity {
    ($test:ident, $net:ident, $fixture:literal, $scheme:expr) => {
        #[test]
        fn $test() {
            let dir = fixture($fixture);
            let model = $net::load(dir.join("model.safetensors")).unwrap();
            assert_eq!(
                model.network().scheme(),
                Some($scheme),
                "{} scheme",
                $fixture
            );
            let (input, input_shape) = tensor(&dir.join("input.safetensors"), "input");
            let [channels, height, width] = $net::INPUT_SHAPE;
            assert_eq!(input_shape, [2, channels, height, width], "input shape");
            let expected = dir.join("expected.safetensors");
            for isa in [Isa::Avx2Fma, Isa::Scalar] {
                let options = Options {
                    threads: 2,
                    isa,
                    features: true,
                };
                let mut workspace = $net::workspace_with(2, options);
                let (logits, features) = model.forward_features(&input, &mut workspace).unwrap();
                let mut report = Vec::new();
                let (want, shape) = tensor(&expected, "stem");
                let (stem, stem_shape) = features.stem();
                assert_eq!(stem_shape.to_vec(), shape, "stem shape");
                report.push(("stem", max_difference(stem, &want), FEATURE_TOLERANCE));
                assert_eq!(features.stages(), 4, "stages");
                for stage in 1..=features.stages() {
                    let name = format!("s{stage}");
                    let (want, shape) = tensor(&expected, &name);
                    let (got, got_shape) = features.stage(stage).unwrap();
                    assert_eq!(got_shape.to_vec(), shape, "{name} shape");
                    report.push((
                        ["s1", "s2", "s3", "s4"][stage - 1],
                        max_difference(got, &want),
                        FEATURE_TOLERANCE,
                    ));
                }
                let (want, shape) = tensor(&expected, "logits");
                assert_eq!(shape, [2, $net::NUM_CLASSES], "logits shape");
                report.push(("logits", max_difference(logits, &want), LOGIT_TOLERANCE));
                eprintln!("{} {:?}: {:?}", $fixture, workspace.options().isa, report);
                for (name, difference, tolerance) in report {
                    assert!(
                        difference <= tolerance,
                        "{} {name} ({isa:?}): max |difference| {difference} > {tolerance}",
                        $fixture
                    );
                }
            }
        }
    };
}

parity!(torchvision_tiny_x, TvX, "tv_x", Scheme::Torchvision);
parity!(torchvision_tiny_y, TvY, "tv_y", Scheme::Torchvision);
parity!(timm_tiny_x, TimmX, "timm_x", Scheme::Timm);
parity!(timm_tiny_y, TimmY, "timm_y", Scheme::Timm);
parity!(pycls_tiny_x, PyclsX, "pycls_x", Scheme::Pycls);
parity!(pycls_tiny_y, PyclsY, "pycls_y", Scheme::Pycls);
