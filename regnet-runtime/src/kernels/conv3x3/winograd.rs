//! The grouped 3×3 at stride 1 as Winograd's F(2×2, 3×3) (Lavin and Gray, 2016): each 2×2 tile
//! of output pixels comes from its 4×4 input pixels in 16 multiplies per input and output
//! channel instead of 36. The inputs' transform (`Bᵀ d B`) and the outputs' (`Aᵀ m A`) are
//! additions; the weights' (`G g Gᵀ`) is done once, at load. The 16 products of a tile are then
//! 16 small GEMMs over the group's channels, with the direct kernel's register tiles.
//!
//! The transforms add and subtract neighbouring values, so a NaN or an infinity among a tile's
//! inputs reaches all four of its outputs (the direct convolution keeps some of them finite),
//! and a huge input can overflow in a sum the direct convolution never forms. Neither turns
//! back into a number on the way to the outputs, so every tile with an output that is not a
//! number (before the bias) is computed again directly: non-finite values land where
//! PyTorch's convolution puts them. Layers with a non-finite weight run the direct kernel.

use super::super::aligned::AlignedBuffer;
use super::TAPS;

#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
pub(in crate::kernels::conv3x3) mod kernel;

/// Transformed values per tile, input channel and output channel: 4 × 4.
pub(super) const POSITIONS: usize = 16;

/// Floats in each of a task's two scratch buffers (transformed inputs, products): 24 KiB,
/// a chunk of tiles' worth (16 tiles of a 24-wide group) that stays within L2.
pub(super) const SCRATCH: usize = 6144;

/// Whether layers of this group width gain from the transform and fit the scratch buffers (one
/// tile at least). Groups of 8 do not: their direct kernel shares each broadcast input among
/// three taps, and their products are GEMMs over only 8 channels (best of 3 alternating runs of
/// `benches/kernels.rs`, AVX2: 28×28×104 176.9 vs 161.2 µs, 14×14×208 94.2 vs 86.2 µs direct);
/// groups of 16 and 24 run 1.2–1.6× faster than directly.
pub(super) fn fits(group_width: usize) -> bool {
    group_width >= 16 && group_width.is_multiple_of(8) && POSITIONS * group_width <= SCRATCH
}

/// `G g Gᵀ` for every (output, input channel) of PyTorch's `[o][i][3][3]`, as
/// `[group][position][input channel][output channel of the group]`: a position's weights for
/// all of a group's outputs side by side, as the products' register tiles read them. None when
/// a weight is not finite (every tile would be computed again).
pub(super) fn transform_weights(weight: &[f32], group_width: usize) -> Option<AlignedBuffer> {
    if !weight.iter().all(|w| w.is_finite()) {
        return None;
    }
    // G's rows: g0, (g0 + g1 + g2) / 2, (g0 − g1 + g2) / 2, g2; in f64, rounded once.
    let g = |v: [f64; 3]| {
        [
            v[0],
            (v[0] + v[1] + v[2]) / 2.0,
            (v[0] - v[1] + v[2]) / 2.0,
            v[2],
        ]
    };
    let gw = group_width;
    let mut transformed = AlignedBuffer::zeroed(weight.len() / TAPS * POSITIONS);
    for (pair, kernel) in weight.chunks_exact(TAPS).enumerate() {
        let (o, i) = (pair / gw, pair % gw);
        let (group, j) = (o / gw, o % gw);
        let rows: [[f64; 4]; 3] =
            std::array::from_fn(|ky| g(std::array::from_fn(|kx| f64::from(kernel[ky * 3 + kx]))));
        let columns: [[f64; 4]; 4] =
            std::array::from_fn(|col| g(std::array::from_fn(|ky| rows[ky][col])));
        for r in 0..4 {
            for (col, column) in columns.iter().enumerate() {
                let position = r * 4 + col;
                transformed[((group * POSITIONS + position) * gw + i) * gw + j] = column[r] as f32;
            }
        }
    }
    Some(transformed)
}
