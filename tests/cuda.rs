//! The CUDA backend on a GPU: the repository's own fixtures (and the shared ones, when present)
//! through `to_device(Device::Cuda(0))` and `load_on`, stage outputs against PyTorch's within 1e-4 and logits
//! against the CPU path's; TF32 mode's differences are printed. Without a GPU every test says
//! it is skipped and passes; the kernels' compile check (regnet-runtime/tests/cuda_kernels.rs)
//! runs without one.
#![cfg(feature = "cuda")]

// The shared CPU `parity!` macro is not used here.
#[allow(unused_macros, unused_imports)]
mod common;

use std::path::{Path, PathBuf};

use regnet::runtime::plan::{Part, Plan};
use regnet::runtime::{Device, DeviceError, LoadError, Options, Profile};

regnet::regnet!(TvX = "tests/fixtures/tv_x/spec.yaml");
regnet::regnet!(PyclsY = "tests/fixtures/pycls_y/spec.yaml");
regnet::regnet!(RegNetY400MF = "specs/regnety_400mf.yaml");
regnet::regnet!(RegNetX400MF = "specs/regnetx_400mf_tv.yaml");

fn gpu() -> bool {
    match regnet::runtime::cuda::device_count() {
        Ok(count) if count > 0 => true,
        Ok(_) => {
            eprintln!("SKIPPED: the CUDA driver reports no GPU");
            false
        }
        Err(error) => {
            eprintln!("SKIPPED: no GPU: {error}");
            false
        }
    }
}

/// A fixture directory: under `$REGNET_FIXTURES` when set (the GPU machine gets the test binary
/// and the fixtures it needs carried, away from this checkout), else at `relative` in the
/// repository.
fn fixture(relative: &str) -> Option<PathBuf> {
    let dir = match std::env::var_os("REGNET_FIXTURES") {
        Some(root) => Path::new(&root).join(Path::new(relative).file_name()?),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join(relative),
    };
    if dir.is_dir() {
        Some(dir)
    } else {
        eprintln!("SKIPPED: {} is not there", dir.display());
        None
    }
}

/// Fixture parity on the GPU in fp32 (stage outputs ≤ 1e-4, logits ≤ 1e-5 against PyTorch) at
/// batch 2 (twice: capture, then replay) and 1, then 256 copies of the two images, which
/// gives the early layers enough rows for the wide (and TF32's tensor-core) tile; TF32's
/// largest logit difference is printed.
macro_rules! gpu_parity {
    ($test:ident, $net:ident, $dir:expr) => {
        #[test]
        fn $test() {
            if !gpu() {
                return;
            }
            let Some(dir) = $dir else { return };
            let (input, _) = common::tensor(&dir.join("input.safetensors"), "input");
            let expected = dir.join("expected.safetensors");
            let options = Options {
                features: true,
                ..Options::default()
            };
            let model = $net::load(dir.join("model.safetensors"))
                .unwrap()
                .to_device(Device::Cuda(0))
                .unwrap();
            let mut workspace = $net::workspace_with(2, options).unwrap();
            for _ in 0..2 {
                let (logits, features) = model.forward_features(&input, &mut workspace).unwrap();
                common::check(stringify!($test), "cuda:0", &expected, logits, &features);
            }
            let image = input.len() / 2;
            let logits = model
                .forward_slice(&input[image..], &mut workspace)
                .unwrap();
            common::check_logits(stringify!($test), "cuda:0", &expected, logits, &[1]);
            // The profile times every step of the plan but the feature copies, and counts
            // pycls's flops.
            let mut profile = Profile::default();
            model
                .network()
                .profile(&input, &mut workspace, &mut profile)
                .unwrap();
            let plan = Plan::new(&$net::ARCHITECTURE);
            let parts: Vec<Part> = plan
                .steps()
                .iter()
                .map(|step| step.part)
                .filter(|&part| part != Part::Kept)
                .collect();
            let timed: Vec<Part> = profile.steps.iter().map(|t| t.part).collect();
            assert_eq!(timed, parts);
            let flops: u64 = profile.steps.iter().map(|t| t.flops).sum();
            assert_eq!(flops, 2 * $net::ARCHITECTURE.complexity().unwrap().flops);
            // Straight onto the GPU, the checkpoint read once; a workspace for the GPU keeps
            // only the results on the host.
            let tf32 = $net::load_on(dir.join("model.safetensors"), Device::CudaTf32(0)).unwrap();
            let gpu_options = Options {
                device: Device::CudaTf32(0),
                ..options
            };
            let mut workspace = $net::workspace_with(2, gpu_options).unwrap();
            let (logits, _) = tf32.forward_features(&input, &mut workspace).unwrap();
            let (want, _) = common::tensor(&expected, "logits");
            let difference = logits
                .iter()
                .zip(&want)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0, f32::max);
            eprintln!(
                "{} TF32: logits max |difference| {difference}",
                stringify!($test)
            );
            assert!(difference < 0.1, "TF32 logits drift {difference}");
        }
    };
}

gpu_parity!(tiny_torchvision_x, TvX, fixture("tests/fixtures/tv_x"));
gpu_parity!(tiny_pycls_y, PyclsY, fixture("tests/fixtures/pycls_y"));
gpu_parity!(
    regnet_y_400mf,
    RegNetY400MF,
    fixture("../shared/fixtures/regnet_y_400mf")
);
gpu_parity!(
    regnet_x_400mf,
    RegNetX400MF,
    fixture("../shared/fixtures/regnet_x_400mf")
);

#[test]
fn without_a_gpu_moving_there_is_an_error_not_a_panic() {
    if regnet::runtime::cuda::device_count().is_ok_and(|count| count > 0) {
        eprintln!("SKIPPED: this machine has a GPU");
        return;
    }
    let error = TvX::random(0)
        .unwrap()
        .to_device(Device::Cuda(0))
        .err()
        .unwrap();
    eprintln!("{error}");
    assert!(
        matches!(error, DeviceError::NoDriver | DeviceError::Driver { .. }),
        "{error:?}"
    );
    let error = TvX::load_on(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tv_x/model.safetensors"),
        Device::Cuda(0),
    )
    .err()
    .unwrap();
    eprintln!("{error}");
    assert!(
        matches!(
            error,
            LoadError::Device(DeviceError::NoDriver | DeviceError::Driver { .. })
        ),
        "{error:?}"
    );
}
