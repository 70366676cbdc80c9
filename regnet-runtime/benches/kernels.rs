//! Each kernel on the shapes of RegNetY-1.6GF, RegNetY-400MF and RegNetX-400MF (batch 1 and 8),
//! one thread, with divan: `cargo bench -p regnet-runtime --bench kernels`. Throughput is in
//! multiply-adds.

use divan::counter::ItemsCount;
use divan::{Bencher, black_box};
use regnet_runtime::Isa;
use regnet_runtime::kernels::conv3x3::{Conv3x3, PackedConv3x3};
use regnet_runtime::kernels::gemm::{Gemm, PackedLinear};
use regnet_runtime::kernels::parallel::Team;
use regnet_runtime::kernels::stem::{PackedStem, Stem};
use regnet_runtime::kernels::{Kernels, Pixels};

fn main() {
    divan::main();
}

/// Every shape on each SIMD instruction set this CPU has, to show what each one gains.
fn on_each_isa<T: Copy>(shapes: &[T]) -> Vec<(Isa, T)> {
    [Isa::Avx512, Isa::Avx2Fma]
        .into_iter()
        .filter(|&isa| Kernels::new(isa).isa() == isa)
        .flat_map(|isa| shapes.iter().map(move |&shape| (isa, shape)))
        .collect()
}

/// (pixels, inputs, outputs) of 1×1 convolutions.
const POINTWISE: [(usize, usize, usize); 10] = [
    (3136, 48, 48),
    (784, 120, 120),
    (196, 336, 336),
    (49, 888, 888),
    (25088, 32, 32),
    (6272, 64, 64),
    (1568, 160, 160),
    (392, 400, 400),
    (49, 440, 440),
    (12544, 32, 48),
];

/// A 1×1 convolution's operands, as the blocks' last 1×1 has them: dense rows, a residual, ReLU.
struct Pointwise {
    rows: usize,
    input: Vec<f32>,
    residual: Vec<f32>,
    output: Vec<f32>,
}

impl Pointwise {
    fn new(rows: usize, k: usize, n: usize) -> Self {
        Pointwise {
            rows,
            input: vec![1.0; rows * k],
            residual: vec![1.0; rows * n],
            output: vec![0.0; rows * n],
        }
    }

    fn weights(k: usize, n: usize) -> PackedLinear {
        PackedLinear::new(&vec![0.01; k * n], &vec![0.0; n], k, n)
    }

    fn run(&mut self, weights: &PackedLinear, kernels: Kernels, threads: usize) {
        Gemm {
            weights,
            rows: self.rows,
            input: &self.input,
            input_pixels: Pixels::Dense,
            residual: Some(&self.residual),
            relu: true,
            output_pixels: Pixels::Dense,
        }
        .run(kernels, threads, black_box(&mut self.output));
    }
}

#[divan::bench(args = on_each_isa(&POINTWISE))]
fn pointwise(bencher: Bencher, (isa, (rows, k, n)): (Isa, (usize, usize, usize))) {
    let weights = Pointwise::weights(k, n);
    let mut operands = Pointwise::new(rows, k, n);
    bencher
        .counter(ItemsCount::new(rows * k * n))
        .bench_local(|| operands.run(&weights, Kernels::new(isa), 1));
}

/// (size, channels, group width, stride) of grouped 3×3 convolutions.
const GROUPED: [(usize, usize, usize, usize); 12] = [
    (112, 48, 8, 2),
    (28, 104, 8, 1),
    (14, 208, 8, 1),
    (7, 440, 8, 1),
    (112, 48, 24, 2),
    (56, 48, 24, 1),
    (28, 120, 24, 1),
    (14, 336, 24, 1),
    (7, 888, 24, 1),
    (28, 64, 16, 1),
    (14, 160, 16, 1),
    (7, 400, 16, 1),
];

#[divan::bench(args = on_each_isa(&GROUPED))]
fn grouped(bencher: Bencher, (isa, (size, c, gw, stride)): (Isa, (usize, usize, usize, usize))) {
    let kernels = Kernels::new(isa);
    let weights = PackedConv3x3::new(
        &vec![0.01; c * gw * 9],
        &vec![0.0; c],
        c,
        gw,
        stride,
        (size, size),
        kernels,
    );
    let input = vec![1.0f32; (size + 2) * (size + 2) * c];
    let conv = Conv3x3 {
        weights: &weights,
        batch: 1,
        height: size,
        width: size,
        input: &input,
    };
    let (oh, ow) = conv.output_size();
    let mut output = vec![0.0f32; oh * ow * c];
    bencher
        .counter(ItemsCount::new(oh * ow * c * gw * 9))
        .bench_local(|| conv.run(kernels, 1, black_box(&mut output)));
}

#[divan::bench(args = on_each_isa(&[()]))]
fn stem(bencher: Bencher, (isa, ()): (Isa, ())) {
    let weights = PackedStem::new(&vec![0.01; 32 * 27], &[0.0; 32], 3, 32);
    let input = vec![1.0f32; 3 * 226 * 226];
    let stem = Stem {
        weights: &weights,
        batch: 1,
        height: 224,
        width: 224,
        input: &input,
    };
    let mut output = vec![0.0f32; 112 * 112 * 32];
    bencher
        .counter(ItemsCount::new(112usize * 112 * 32 * 27))
        .bench_local(|| stem.run(Kernels::new(isa), 1, black_box(&mut output)));
}

/// 1×1 convolutions of the late stages with their weights coming from memory, as in a network's
/// pass (whose 45 MB of weights do not stay in cache from one pass to the next): a new layer each
/// run, out of 64 MB of them.
#[divan::bench(args = on_each_isa(&[(196, 336, 336), (49, 888, 888)]))]
fn pointwise_cold(bencher: Bencher, (isa, (rows, k, n)): (Isa, (usize, usize, usize))) {
    let layers: Vec<PackedLinear> = (0..(64 << 20) / (k * n * 4) + 1)
        .map(|_| Pointwise::weights(k, n))
        .collect();
    let mut operands = Pointwise::new(rows, k, n);
    let mut next = 0;
    bencher
        .counter(ItemsCount::new(rows * k * n))
        .bench_local(|| {
            next = (next + 1) % layers.len();
            operands.run(&layers[next], Kernels::new(isa), 1);
        });
}

/// 1×1 convolutions split over a team of 1 and of 2 threads (compare the two rows of a shape for
/// the kernel's own scaling), as a pass runs them, 20 runs per sample.
#[divan::bench(args = [1, 2], consts = [0, 2, 3])]
fn pointwise_threads<const SHAPE: usize>(bencher: Bencher, threads: usize) {
    const RUNS: usize = 20;
    let (rows, k, n) = POINTWISE[SHAPE];
    let weights = Pointwise::weights(k, n);
    let mut operands = Pointwise::new(rows, k, n);
    let mut team = Team::new(threads).expect("threads start");
    let kernels = Kernels::detect();
    bencher
        .counter(ItemsCount::new(rows * k * n * RUNS))
        .bench_local(|| {
            team.install(|| {
                for _ in 0..RUNS {
                    operands.run(&weights, kernels, threads);
                }
            })
        });
}
