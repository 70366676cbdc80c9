//! Parity with PyTorch on the repository's own small fixtures (`tests/fixtures/*`, made by
//! `tools/make_fixtures.py` with torchvision and timm, and timm's network saved with pycls's key
//! names): tiny RegNetX and RegNetY (SE) networks with random weights and randomized BatchNorm,
//! in each naming scheme, on the SIMD and the scalar kernels. Stem and stage outputs within 1e-4,
//! logits within 1e-5. The fixtures ship with the repository, so this test never skips.

mod common;

use std::path::{Path, PathBuf};

use common::parity;
use regnet::runtime::Scheme;

regnet::regnet!(TvX = "tests/fixtures/tv_x/spec.yaml");
regnet::regnet!(TvY = "tests/fixtures/tv_y/spec.yaml");
regnet::regnet!(TimmX = "tests/fixtures/timm_x/spec.yaml");
regnet::regnet!(TimmY = "tests/fixtures/timm_y/spec.yaml");
regnet::regnet!(PyclsX = "tests/fixtures/pycls_x/spec.yaml");
regnet::regnet!(PyclsY = "tests/fixtures/pycls_y/spec.yaml");

fn fixture(name: &str) -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    assert!(
        dir.is_dir(),
        "{} is missing; it ships with the repository (tools/make_fixtures.py makes it)",
        dir.display()
    );
    Some(dir)
}

parity!(
    torchvision_tiny_x,
    TvX,
    fixture("tv_x"),
    Scheme::Torchvision
);
parity!(
    torchvision_tiny_y,
    TvY,
    fixture("tv_y"),
    Scheme::Torchvision
);
parity!(timm_tiny_x, TimmX, fixture("timm_x"), Scheme::Timm);
parity!(timm_tiny_y, TimmY, fixture("timm_y"), Scheme::Timm);
parity!(pycls_tiny_x, PyclsX, fixture("pycls_x"), Scheme::Pycls);
parity!(pycls_tiny_y, PyclsY, fixture("pycls_y"), Scheme::Pycls);
