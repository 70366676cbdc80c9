//! GFLOP/s of each kernel on the shapes of RegNetY-1.6GF at batch 1, one thread:
//! `cargo bench -p regnet-runtime --bench kernels`.

use std::time::Instant;

use regnet_runtime::kernels::conv3x3::{Conv3x3, PackedConv3x3};
use regnet_runtime::kernels::gemm::{Gemm, PackedLinear};
use regnet_runtime::kernels::{Isa, Pixels};

fn seconds(mut f: impl FnMut()) -> f64 {
    for _ in 0..3 {
        f();
    }
    let mut best = f64::INFINITY;
    for _ in 0..15 {
        let start = Instant::now();
        f();
        best = best.min(start.elapsed().as_secs_f64());
    }
    best
}

fn main() {
    let isa = Isa::detect();
    println!("{isa:?}, 1 thread, best of 15");
    for (rows, k, n) in [
        (3136, 48, 48),
        (12544, 32, 48),
        (784, 120, 120),
        (196, 336, 336),
        (49, 888, 888),
        (1, 888, 1000),
        (25088, 32, 32),
        (6272, 64, 64),
        (1568, 160, 160),
        (392, 400, 400),
    ] {
        let weights = PackedLinear::new(&vec![0.01; k * n], &vec![0.0; n], k, n);
        let input = vec![1.0f32; rows * k];
        let residual = vec![1.0f32; rows * n];
        let mut output = vec![0.0f32; rows * n];
        let gemm = Gemm {
            weights: &weights,
            rows,
            input: &input,
            input_pixels: Pixels::Dense,
            residual: Some(&residual),
            relu: true,
            output_pixels: Pixels::Dense,
        };
        let t = seconds(|| gemm.run(isa, 1, &mut output));
        println!(
            "1×1 {rows:>5} px × {k:>4} → {n:>4}: {:8.3} ms {:6.1} GFLOP/s",
            t * 1e3,
            2.0 * (rows * k * n) as f64 / t / 1e9
        );
    }
    for (size, c, gw, stride) in [
        (112, 48, 24, 2),
        (56, 48, 24, 1),
        (28, 120, 24, 1),
        (14, 336, 24, 1),
        (7, 888, 24, 1),
    ] {
        let weights = PackedConv3x3::new(&vec![0.01; c * gw * 9], &vec![0.0; c], c, gw, stride);
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
        let t = seconds(|| conv.run(isa, 1, &mut output));
        println!(
            "3×3 {size:>3}² × {c:>4} g{gw} /{stride}: {:8.3} ms {:6.1} GFLOP/s",
            t * 1e3,
            2.0 * (oh * ow * c * gw * 9) as f64 / t / 1e9
        );
    }
}
