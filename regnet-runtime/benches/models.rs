//! Whole forward passes of a few zoo models on random weights, and loading their checkpoints,
//! with divan: `cargo bench -p regnet-runtime --bench models`. `regnet bench MODEL --profile`
//! splits one model's time by layer; `bench/compare_ort.sh` compares with ONNX Runtime.

use std::collections::HashMap;

use divan::{Bencher, black_box};
use regnet_runtime::spec::{Architecture, compile_file};
use regnet_runtime::weights::{Scheme, expected_tensors};
use regnet_runtime::{Network, Options, Workspace};
use safetensors::{Dtype, tensor::TensorView};

fn main() {
    divan::main();
}

/// The architecture of the zoo spec `model`, leaked: a network keeps a `'static` architecture
/// (generated code's is a constant).
fn architecture(model: &str) -> Architecture<'static> {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../specs/{model}.yaml"));
    let compiled = compile_file(&path, model).expect("the zoo specs compile");
    let compiled: &'static _ = Box::leak(Box::new(compiled));
    let name: &'static str = Box::leak(model.to_owned().into_boxed_str());
    compiled.architecture(name)
}

#[divan::bench(args = ["regnetx_400mf_tv", "regnety_400mf", "regnety_1.6gf"], consts = [1, 8])]
fn forward<const BATCH: usize>(bencher: Bencher, model: &str) {
    let architecture = architecture(model);
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

/// Reading, folding and packing an F32 checkpoint in pycls's naming (from the page cache: the
/// file is read once before timing).
#[divan::bench(args = ["regnety_400mf", "regnety_1.6gf"], sample_count = 20)]
fn load(bencher: Bencher, model: &str) {
    let architecture = architecture(model);
    let tensors: Vec<(String, Vec<usize>, Vec<u8>)> =
        expected_tensors(&architecture, Scheme::Pycls)
            .into_iter()
            .map(|(key, shape)| {
                // Positive everywhere, so that running variances are valid; the values do not
                // matter to the time.
                let count: usize = shape.iter().product();
                let bytes = (0..count)
                    .flat_map(|i| (0.5 + (i % 7) as f32 / 10.0).to_le_bytes())
                    .collect();
                (key, shape, bytes)
            })
            .collect();
    let views: HashMap<&str, TensorView<'_>> = tensors
        .iter()
        .map(|(key, shape, bytes)| {
            let view = TensorView::new(Dtype::F32, shape.clone(), bytes).expect("consistent");
            (key.as_str(), view)
        })
        .collect();
    let path = std::env::temp_dir().join(format!(
        "regnet-bench-{model}-{}.safetensors",
        std::process::id()
    ));
    safetensors::serialize_to_file(views, None, &path).expect("the temporary file is written");
    Network::load(architecture, &path, None).expect("loads");
    bencher.bench_local(|| Network::load(architecture, black_box(&path), None).expect("loads"));
    std::fs::remove_file(&path).expect("the temporary file is removed");
}
