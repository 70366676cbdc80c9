//! Every kernel instance any spec in `specs/` needs compiles with NVRTC for sm_80 and sm_90,
//! with no register spills. Runs without a GPU; needs libnvrtc (`.ci/run` installs it). Where
//! it is missing the test says so and passes, unless `REGNET_REQUIRE_NVRTC` is set (as in CI).
#![cfg(feature = "cuda")]

use std::collections::BTreeSet;
use std::path::Path;

use regnet_runtime::cuda::Precision;
use regnet_runtime::cuda::compile::{self, spills};
use regnet_runtime::cuda::instances;
use regnet_runtime::cuda::source::{self, Kernel};
use regnet_runtime::plan::Plan;

fn nvrtc_or_skip() -> bool {
    match compile::require_nvrtc() {
        Ok(()) => true,
        Err(error) if std::env::var_os("REGNET_REQUIRE_NVRTC").is_some() => {
            panic!("REGNET_REQUIRE_NVRTC is set but {error}")
        }
        Err(error) => {
            eprintln!("SKIPPED: the CUDA kernel compile check needs NVRTC: {error}");
            false
        }
    }
}

fn every_instance() -> BTreeSet<Kernel> {
    let specs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../specs");
    let mut kernels = BTreeSet::new();
    let mut count = 0;
    for entry in std::fs::read_dir(&specs).expect("specs/ is readable") {
        let path = entry.expect("a directory entry").path();
        if path.extension().is_none_or(|e| e != "yaml") {
            continue;
        }
        let network = regnet_spec::compile_file(&path, &path.display().to_string())
            .unwrap_or_else(|e| panic!("{} compiles: {e:?}", path.display()));
        let plan = Plan::new(&network.architecture("spec"));
        for precision in [Precision::Fp32, Precision::Tf32] {
            kernels.extend(instances::kernels(&plan, precision));
        }
        count += 1;
    }
    assert!(count >= 28, "found {count} specs in {}", specs.display());
    kernels
}

#[test]
fn every_spec_kernel_compiles_for_sm80_and_sm90_without_spills() {
    if !nvrtc_or_skip() {
        return;
    }
    let kernels = every_instance();
    let modules = source::modules(&kernels);
    let sources: Vec<&str> = modules.iter().map(|(_, source)| source.as_str()).collect();
    println!(
        "NVRTC {:?}: {} instances in {} modules",
        compile::nvrtc_version().unwrap(),
        kernels.len(),
        modules.len()
    );
    for arch in [80, 90] {
        let started = std::time::Instant::now();
        let compiled = compile::in_parallel(&sources, |source| compile::compile(source, arch))
            .unwrap_or_else(|e| panic!("{e}"));
        let reports: Vec<_> = compiled.iter().flat_map(|c| spills(&c.log)).collect();
        println!(
            "sm_{arch}: {} bytes of CUBIN, {} kernels reported, {:.1} s",
            compiled.iter().map(|c| c.cubin.len()).sum::<usize>(),
            reports.len(),
            started.elapsed().as_secs_f64()
        );
        assert_eq!(reports.len(), kernels.len(), "ptxas reports every kernel");
        let spilling: Vec<_> = reports
            .iter()
            .filter(|s| s.store_bytes > 0 || s.load_bytes > 0)
            .collect();
        assert!(spilling.is_empty(), "sm_{arch} spills: {spilling:#?}");
    }
}

#[test]
fn a_broken_kernel_is_a_compile_error_with_nvrtcs_log() {
    if !nvrtc_or_skip() {
        return;
    }
    let error = compile::compile(
        "extern \"C\" __global__ void k(float* x) { x[0] = undefined_symbol; }",
        80,
    )
    .unwrap_err()
    .to_string();
    assert!(error.contains("sm_80"), "{error}");
    assert!(error.contains("undefined_symbol"), "{error}");
}

/// The successful path through NVRTC's C API (program, compile, CUBIN size and copy, log),
/// small enough to run under valgrind (`tools/harden.sh valgrind`).
#[test]
fn a_small_kernel_compiles_to_an_elf_cubin() {
    if !nvrtc_or_skip() {
        return;
    }
    let compiled = compile::compile(
        "extern \"C\" __global__ void k(float* x) { x[threadIdx.x] *= 2.0f; }",
        80,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        compiled.cubin.starts_with(b"\x7fELF"),
        "a CUBIN is an ELF image"
    );
    let reports = spills(&compiled.log);
    assert_eq!(reports.len(), 1, "{}", compiled.log);
    assert_eq!((reports[0].store_bytes, reports[0].load_bytes), (0, 0));
}
