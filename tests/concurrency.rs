//! One network shared by 8 threads, each with its own workspace and settings: 1,000 forward
//! passes in all, on inputs of mixed batch sizes and values, each bit-identical to the same
//! input run alone with the same settings before the threads start.

use std::sync::atomic::{AtomicUsize, Ordering};

use regnet::runtime::{Isa, Options};

mod inputs;

regnet::regnet!(Net = "tests/fixtures/concurrency/regnety_200mf_96px.yaml");

const THREADS: usize = 8;
const PASSES: usize = 1_000;
const INPUTS: usize = 12;
const PIXELS: usize = 3 * 96 * 96;

/// Input `i`: 1 to 3 images of values from a cheap deterministic sequence, each input different.
fn input(i: usize) -> Vec<f32> {
    let images = 1 + i % 3;
    inputs::uniform(images * PIXELS, 0x9e37_79b9_u32.wrapping_mul(i as u32 + 1))
}

/// The settings thread `t` runs with: the kernels' instruction set, the layer threads and
/// whether stage features are kept all vary across threads.
fn settings(t: usize) -> Options {
    Options {
        threads: 1 + t % 2,
        isa: [Isa::Avx512, Isa::Avx2Fma, Isa::Scalar][t % 3],
        features: t % 4 == 3,
        ..Options::default()
    }
}

/// Logits and (with features) every stage output, as bits.
fn run(
    net: &Net,
    input: &[f32],
    workspace: &mut regnet::runtime::Workspace,
    features: bool,
) -> Vec<u32> {
    if features {
        let (logits, maps) = net.forward_features(input, workspace).unwrap();
        let mut bits: Vec<u32> = logits.iter().map(|v| v.to_bits()).collect();
        for s in 1..=maps.stages() {
            bits.extend(maps.stage(s).unwrap().0.iter().map(|v| v.to_bits()));
        }
        bits
    } else {
        net.forward_slice(input, workspace)
            .unwrap()
            .iter()
            .map(|v| v.to_bits())
            .collect()
    }
}

#[test]
fn shared_network_gives_every_thread_the_result_of_a_lone_run() {
    let net = Net::random(11).unwrap();
    let inputs: Vec<Vec<f32>> = (0..INPUTS).map(input).collect();
    // Alone, one settings at a time: the expected bits of every (settings, input) pair.
    let expected: Vec<Vec<Vec<u32>>> = (0..THREADS)
        .map(|t| {
            let options = settings(t);
            let mut workspace = Net::workspace_with(3, options).unwrap();
            inputs
                .iter()
                .map(|x| run(&net, x, &mut workspace, options.features))
                .collect()
        })
        .collect();
    let done = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for t in 0..THREADS {
            let (net, inputs, expected, done) = (&net, &inputs, &expected, &done);
            scope.spawn(move || {
                let options = settings(t);
                let mut workspace = Net::workspace_with(3, options).unwrap();
                for pass in 0..PASSES / THREADS {
                    // Threads walk the inputs in different orders, so different inputs and
                    // batch sizes run at the same time.
                    let i = (pass * (t + 1) + t) % INPUTS;
                    let got = run(net, &inputs[i], &mut workspace, options.features);
                    assert!(
                        got == expected[t][i],
                        "thread {t}, pass {pass}, input {i}: differs from the lone run"
                    );
                    done.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
    });
    assert_eq!(done.load(Ordering::Relaxed), PASSES);
}
