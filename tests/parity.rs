//! Parity with PyTorch on the shared fixtures (torchvision, timm and pycls models with random
//! weights and randomized BatchNorm), on the SIMD and the scalar kernels: stem and stage outputs
//! within 1e-4, logits within 1e-5.

mod common;

use std::io::Write as _;
use std::path::{Path, PathBuf};

use common::parity;
use regnet::runtime::Scheme;

regnet::regnet!(TorchvisionX400 = "specs/regnetx_400mf_tv.yaml");
regnet::regnet!(TorchvisionY400 = "specs/regnety_400mf.yaml");
regnet::regnet!(TimmY200 = "specs/regnety_200mf.yaml");
regnet::regnet!(PyclsX200 = "specs/regnetx_200mf.yaml");
regnet::regnet!(TimmY200PerStage = "tests/fixtures/per_stage/regnety_200mf.yaml");

/// The shared fixture `name`, or `None` (and a line saying so) when `../shared` is absent.
fn shared(name: &str) -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/fixtures")
        .join(name);
    if dir.is_dir() {
        Some(dir)
    } else {
        // Written past the test harness's capture so a skip shows in every run's output.
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED: {} not found; the shared fixtures are beside the repository in CI",
            dir.display()
        );
        None
    }
}

parity!(
    torchvision_regnet_x_400mf,
    TorchvisionX400,
    shared("regnet_x_400mf"),
    Scheme::Torchvision
);
parity!(
    torchvision_regnet_y_400mf,
    TorchvisionY400,
    shared("regnet_y_400mf"),
    Scheme::Torchvision
);
parity!(
    timm_regnety_002,
    TimmY200,
    shared("timm_regnety_002"),
    Scheme::Timm
);
parity!(
    pycls_regnetx_200mf,
    PyclsX200,
    shared("pycls_regnetx_200mf"),
    Scheme::Pycls
);
parity!(
    timm_regnety_002_from_a_per_stage_spec,
    TimmY200PerStage,
    shared("timm_regnety_002"),
    Scheme::Timm
);
