//! Whole forward passes of a few zoo models on random weights, with divan:
//! `cargo bench -p regnet-runtime --bench models`. `regnet bench MODEL --profile` splits one
//! model's time by layer; `bench/compare_ort.sh` compares with ONNX Runtime.

use divan::{Bencher, black_box};
use regnet_runtime::spec::compile_file;
use regnet_runtime::{Network, Options, Workspace};

fn main() {
    divan::main();
}

#[divan::bench(args = ["regnetx_400mf_tv", "regnety_400mf", "regnety_1.6gf"], consts = [1, 8])]
fn forward<const BATCH: usize>(bencher: Bencher, model: &str) {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../specs/{model}.yaml"));
    let compiled = compile_file(&path, model).expect("the zoo specs compile");
    // A network keeps a `'static` architecture (generated code's is a constant): leak this one.
    let compiled: &'static _ = Box::leak(Box::new(compiled));
    let name: &'static str = Box::leak(model.to_owned().into_boxed_str());
    let architecture = compiled.architecture(name);
    let network = Network::random(architecture, 0).expect("zoo architectures are valid");
    let options = Options {
        threads: 2,
        ..Options::default()
    };
    let mut workspace = Workspace::with_options(&architecture, BATCH, options).expect("fits");
    let input = vec![0.5f32; BATCH * 3 * architecture.resolution * architecture.resolution];
    bencher.bench_local(|| {
        network
            .forward(black_box(&input), &mut workspace)
            .map(|logits| logits[0])
            .expect("runs")
    });
}
