//! Parity with PyTorch on the shared fixtures (torchvision, timm and pycls models with random
//! weights and randomized BatchNorm), on the SIMD and the scalar kernels: stem and stage outputs
//! within 1e-4, logits within 1e-5.

use std::path::{Path, PathBuf};

use regnet::runtime::{Isa, Options};
use safetensors::SafeTensors;

regnet::regnet!(TorchvisionX400 = "specs/regnetx_400mf_tv.yaml");
regnet::regnet!(TorchvisionY400 = "specs/regnety_400mf.yaml");
regnet::regnet!(TimmY200 = "specs/regnety_200mf.yaml");
regnet::regnet!(PyclsX200 = "specs/regnetx_200mf.yaml");

const FEATURE_TOLERANCE: f32 = 1e-4;
const LOGIT_TOLERANCE: f32 = 1e-5;

fn shared_fixture(name: &str) -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/fixtures")
        .join(name);
    if dir.is_dir() {
        Some(dir)
    } else {
        eprintln!(
            "SKIPPED: {} not found; the shared fixtures are beside the repository in CI",
            dir.display()
        );
        None
    }
}

fn tensor(path: &Path, name: &str) -> (Vec<f32>, Vec<usize>) {
    let bytes = std::fs::read(path).unwrap();
    let tensors = SafeTensors::deserialize(&bytes).unwrap();
    let view = tensors.tensor(name).unwrap();
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
    ($test:ident, $net:ident, $fixture:literal) => {
        #[test]
        fn $test() {
            let Some(dir) = shared_fixture($fixture) else {
                return;
            };
            let model = $net::load(dir.join("model.safetensors")).unwrap();
            let (input, _) = tensor(&dir.join("input.safetensors"), "input");
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
                let (want, _) = tensor(&expected, "stem");
                let (stem, _) = features.stem();
                report.push(("stem", max_difference(stem, &want), FEATURE_TOLERANCE));
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
                let (want, _) = tensor(&expected, "logits");
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

parity!(
    torchvision_regnet_x_400mf,
    TorchvisionX400,
    "regnet_x_400mf"
);
parity!(
    torchvision_regnet_y_400mf,
    TorchvisionY400,
    "regnet_y_400mf"
);
parity!(timm_regnety_002, TimmY200, "timm_regnety_002");
parity!(pycls_regnetx_200mf, PyclsX200, "pycls_regnetx_200mf");
