//! Per-channel passes over NHWC feature maps: global average pooling (SE and the head) and the
//! SE gate. Memory-bound, so the kernels split the work across threads and let the compiler
//! vectorize the channel loop (with AVX2 where the CPU has it; on aarch64 the portable loops
//! compile to NEON, which is baseline there: `fadd`/`fmul` on `.4s` in the disassembly).

use super::parallel::{chunk, for_each_task};
// Only the x86 kernels name an instruction set here so far.
#[cfg(target_arch = "x86_64")]
use super::Isa;
use super::{Kernels, SendPtr, holds};

/// Channels per pooling task: a cache line of sums per task at least.
const CHANNEL_CHUNK: usize = 64;

/// `out[n][c]` = mean over pixels of `x[n][pixel][c]`.
pub fn average_pool(
    kernels: Kernels,
    threads: usize,
    x: &[f32],
    batch: usize,
    pixels: usize,
    channels: usize,
    out: &mut [f32],
) {
    let isa = kernels.isa;
    assert!(
        holds(x.len(), &[batch, pixels, channels]) && holds(out.len(), &[batch, channels]),
        "pool extents"
    );
    let chunks = channels.div_ceil(CHANNEL_CHUNK);
    let sums = SendPtr(out.as_mut_ptr());
    for_each_task(threads, batch * chunks, |task| {
        let (n, c) = (task / chunks, task % chunks);
        let range = c * CHANNEL_CHUNK..((c + 1) * CHANNEL_CHUNK).min(channels);
        // SAFETY: tasks own disjoint (image, channel range) parts of `out`, which outlives the
        // loop; the range lies inside image n's row of `out` (checked above).
        let sums = unsafe {
            std::slice::from_raw_parts_mut(sums.get().add(n * channels + range.start), range.len())
        };
        let image = &x[n * pixels * channels..(n + 1) * pixels * channels];
        match isa {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: AVX2 was detected before `Isa::Avx2Fma` or `Isa::Avx512` was chosen.
            Isa::Avx2Fma | Isa::Avx512 => unsafe { pool_avx2(image, channels, range.start, sums) },
            _ => pool(image, channels, range.start, sums),
        }
        let scale = 1.0 / pixels as f32;
        sums.iter_mut().for_each(|s| *s *= scale);
    });
}

#[inline(always)]
fn pool(image: &[f32], channels: usize, first: usize, sums: &mut [f32]) {
    sums.fill(0.0);
    let count = sums.len();
    for pixel in image.chunks_exact(channels) {
        for (s, v) in sums.iter_mut().zip(&pixel[first..first + count]) {
            *s += v;
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn pool_avx2(image: &[f32], channels: usize, first: usize, sums: &mut [f32]) {
    pool(image, channels, first, sums)
}

/// `x[n][pixel][c] *= gate[n][c]`.
pub fn scale_channels(
    kernels: Kernels,
    threads: usize,
    x: &mut [f32],
    batch: usize,
    pixels: usize,
    channels: usize,
    gate: &[f32],
) {
    let isa = kernels.isa;
    assert!(
        holds(x.len(), &[batch, pixels, channels]) && holds(gate.len(), &[batch, channels]),
        "scale extents"
    );
    let parts = if threads <= 1 {
        1
    } else {
        threads.saturating_mul(2)
    };
    let data = SendPtr(x.as_mut_ptr());
    for_each_task(threads, batch * parts, |task| {
        let (n, part) = (task / parts, task % parts);
        let range = chunk(pixels, parts, part);
        // SAFETY: tasks own disjoint (image, pixel range) parts of `x`, which outlives the loop
        // and holds these pixels (checked above).
        let rows = unsafe {
            std::slice::from_raw_parts_mut(
                data.get().add((n * pixels + range.start) * channels),
                range.len() * channels,
            )
        };
        let gate = &gate[n * channels..(n + 1) * channels];
        match isa {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: AVX2 was detected before `Isa::Avx2Fma` or `Isa::Avx512` was chosen.
            Isa::Avx2Fma | Isa::Avx512 => unsafe { scale_avx2(rows, gate) },
            _ => scale(rows, gate),
        }
    });
}

#[inline(always)]
fn scale(rows: &mut [f32], gate: &[f32]) {
    for pixel in rows.chunks_exact_mut(gate.len()) {
        for (v, g) in pixel.iter_mut().zip(gate) {
            *v *= g;
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn scale_avx2(rows: &mut [f32], gate: &[f32]) {
    scale(rows, gate)
}
