//! The machine's measured fp32 peak, the yardstick of `regnet bench --profile`.

use std::time::{Duration, Instant};

use super::{Isa, Kernels};

/// GFLOP/s (2 per multiply-add) of independent FMA chains on `threads` threads for about
/// `duration`: the sum over threads of each one's best rate over slices of a few milliseconds. On
/// a shared machine, slices a neighbour slowed down do not count, so the yardstick is what the
/// cores do, not what they did while busy elsewhere.
pub fn fma_peak_gflops(kernels: Kernels, threads: usize, duration: Duration) -> f64 {
    let start = Instant::now();
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads.max(1))
            .map(|_| {
                scope.spawn(move || {
                    let mut best: f64 = 0.0;
                    while start.elapsed() < duration {
                        let slice = Instant::now();
                        let mut flops = 0.0;
                        while slice.elapsed() < SLICE {
                            flops += chains(kernels.isa);
                        }
                        best = best.max(flops / slice.elapsed().as_secs_f64());
                    }
                    best
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().unwrap_or(0.0))
            .sum::<f64>()
    }) / 1e9
}

/// How long each measured slice of [`fma_peak_gflops`] runs.
const SLICE: Duration = Duration::from_millis(5);

const ROUNDS: usize = 100_000;

/// Runs one batch of FMA chains; returns the flops done.
fn chains(isa: Isa) -> f64 {
    match isa {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2Fma => {
            // SAFETY: `Isa::Avx2Fma` is only chosen after run-time detection of AVX2 and FMA.
            unsafe { avx2_chains() }
        }
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => {
            // SAFETY: `Isa::Avx512` is only chosen after run-time detection of AVX-512F.
            unsafe { avx512_chains() }
        }
        #[cfg(target_arch = "aarch64")]
        Isa::Neon => {
            // SAFETY: NEON is part of every aarch64 CPU.
            unsafe { neon_chains() }
        }
        _ => {
            let mut acc = [1.0f32; 8];
            for _ in 0..ROUNDS {
                for a in &mut acc {
                    *a = a.mul_add(0.999_999, 1e-7);
                }
            }
            std::hint::black_box(acc);
            (ROUNDS * 8 * 2) as f64
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn avx2_chains() -> f64 {
    use std::arch::x86_64::*;
    // Twelve independent chains cover the FMA latency on both pipes.
    let mut acc = [_mm256_set1_ps(1.0); 12];
    let (a, b) = (_mm256_set1_ps(0.999_999), _mm256_set1_ps(1e-7));
    for _ in 0..ROUNDS {
        for acc in &mut acc {
            *acc = _mm256_fmadd_ps(*acc, a, b);
        }
    }
    std::hint::black_box(acc);
    (ROUNDS * 12 * 8 * 2) as f64
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn avx512_chains() -> f64 {
    use std::arch::x86_64::*;
    // Twelve chains as above; with 32 registers there is room for them at any width.
    let mut acc = [_mm512_set1_ps(1.0); 12];
    let (a, b) = (_mm512_set1_ps(0.999_999), _mm512_set1_ps(1e-7));
    for _ in 0..ROUNDS {
        for acc in &mut acc {
            *acc = _mm512_fmadd_ps(*acc, a, b);
        }
    }
    std::hint::black_box(acc);
    super::leave_avx512();
    (ROUNDS * 12 * 16 * 2) as f64
}

#[cfg(target_arch = "aarch64")]
#[target_feature(enable = "neon")]
fn neon_chains() -> f64 {
    use std::arch::aarch64::*;
    // Twelve independent chains of 4-lane FMAs, as on x86.
    let mut acc = [vdupq_n_f32(1.0); 12];
    let (a, b) = (vdupq_n_f32(0.999_999), vdupq_n_f32(1e-7));
    for _ in 0..ROUNDS {
        for acc in &mut acc {
            *acc = vfmaq_f32(b, *acc, a);
        }
    }
    std::hint::black_box(acc);
    (ROUNDS * 12 * 4 * 2) as f64
}
