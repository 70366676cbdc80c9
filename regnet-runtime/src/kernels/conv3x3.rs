//! The grouped 3×3 convolution (padding 1, stride 1 or 2) with bias and ReLU fused, from a
//! zero-bordered NHWC input to a dense NHWC output. Every group width works; widths that are
//! multiples of 8 (all published RegNets) run the register-blocked AVX2 kernel.

use super::aligned::AlignedBuffer;
use super::parallel::{chunk, for_each_task};
use super::{Isa, SendPtr, holds};

const LANES: usize = 8;
const TAPS: usize = 9;

/// A grouped 3×3 convolution, BN folded, packed for the kernels.
#[derive(Clone, Debug)]
pub struct PackedConv3x3 {
    channels: usize,
    group_width: usize,
    stride: usize,
    /// PyTorch's `[channels][group_width][3][3]`, for the portable path.
    weight: Vec<f32>,
    /// `[group][block of 8 outputs][tap][input channel][8]`, when the group width is a multiple
    /// of 8: each tap and input channel gives one 8-wide weight vector.
    blocked: Option<AlignedBuffer>,
    bias: Vec<f32>,
}

impl PackedConv3x3 {
    /// `weight` is PyTorch's `[channels][group_width][3][3]`.
    pub fn new(
        weight: &[f32],
        bias: &[f32],
        channels: usize,
        group_width: usize,
        stride: usize,
    ) -> Self {
        assert!(
            group_width > 0 && channels.is_multiple_of(group_width),
            "groups must divide the channels"
        );
        assert_eq!(weight.len(), channels * group_width * TAPS, "weight shape");
        assert_eq!(bias.len(), channels, "bias shape");
        assert!(stride == 1 || stride == 2, "stride 1 or 2");
        let blocked = group_width.is_multiple_of(LANES).then(|| {
            let mut packed = AlignedBuffer::zeroed(weight.len());
            for (o, out_weights) in weight.chunks_exact(group_width * TAPS).enumerate() {
                // Output channel o sits in block o / 8 (blocks of a group are consecutive).
                let (block, lane) = (o / LANES, o % LANES);
                for i in 0..group_width {
                    for tap in 0..TAPS {
                        packed[((block * TAPS + tap) * group_width + i) * LANES + lane] =
                            out_weights[i * TAPS + tap];
                    }
                }
            }
            packed
        });
        PackedConv3x3 {
            channels,
            group_width,
            stride,
            weight: weight.to_vec(),
            blocked,
            bias: bias.to_vec(),
        }
    }

    pub fn channels(&self) -> usize {
        self.channels
    }

    pub fn stride(&self) -> usize {
        self.stride
    }
}

/// One grouped 3×3 convolution over a batch.
pub struct Conv3x3<'a> {
    pub weights: &'a PackedConv3x3,
    pub batch: usize,
    /// Height and width of the input without its zero border.
    pub height: usize,
    pub width: usize,
    /// `[batch][height + 2][width + 2][channels]`, border zero.
    pub input: &'a [f32],
}

impl Conv3x3<'_> {
    pub fn output_size(&self) -> (usize, usize) {
        let s = self.weights.stride;
        ((self.height - 1) / s + 1, (self.width - 1) / s + 1)
    }

    /// Writes `[batch][out_h][out_w][channels]` with bias and ReLU applied.
    pub fn run(&self, isa: Isa, threads: usize, output: &mut [f32]) {
        let c = self.weights.channels;
        let (out_h, out_w) = self.output_size();
        let isa = Isa::supported(isa);
        // Every pointer the kernels form stays inside these extents.
        assert!(self.height > 0 && self.width > 0);
        assert!(
            holds(
                self.input.len(),
                &[self.batch, self.height + 2, self.width + 2, c]
            ),
            "conv input too short"
        );
        assert!(
            holds(output.len(), &[self.batch, out_h, out_w, c]),
            "conv output too short"
        );
        let groups = c / self.weights.group_width;
        let rows = self.batch * out_h;
        let target = if threads <= 1 {
            1
        } else {
            threads.saturating_mul(4)
        };
        let group_parts = (target / rows.max(1)).clamp(1, groups);
        let out = SendPtr(output.as_mut_ptr());
        for_each_task(threads, rows * group_parts, |task| {
            let row = task / group_parts;
            for group in chunk(groups, group_parts, task % group_parts) {
                match (isa, &self.weights.blocked) {
                    #[cfg(target_arch = "x86_64")]
                    (Isa::Avx2Fma, Some(blocked)) => {
                        // SAFETY: AVX2 and FMA were detected; `run` checked the input and
                        // output extents; this task alone writes this row of this group.
                        unsafe { avx2::row_group(self, blocked, row, group, out) }
                    }
                    _ => self.scalar_row_group(row, group, out),
                }
            }
        });
    }

    fn scalar_row_group(&self, row: usize, group: usize, out: SendPtr) {
        let (c, gw, s) = (
            self.weights.channels,
            self.weights.group_width,
            self.weights.stride,
        );
        let (out_h, out_w) = self.output_size();
        let (n, y) = (row / out_h, row % out_h);
        let padded_w = self.width + 2;
        for x in 0..out_w {
            for o in group * gw..(group + 1) * gw {
                let mut acc = self.weights.bias[o];
                let w = &self.weights.weight[o * gw * TAPS..(o + 1) * gw * TAPS];
                for ky in 0..3 {
                    for kx in 0..3 {
                        let pixel = (n * (self.height + 2) + y * s + ky) * padded_w + x * s + kx;
                        let input =
                            &self.input[pixel * c + group * gw..pixel * c + (group + 1) * gw];
                        for (i, &v) in input.iter().enumerate() {
                            acc += v * w[i * TAPS + ky * 3 + kx];
                        }
                    }
                }
                // SAFETY: `run` checked the output extent; this task owns this row and group.
                unsafe { *out.0.add(((n * out_h + y) * out_w + x) * c + o) = acc.max(0.0) };
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    use super::{Conv3x3, LANES, SendPtr, TAPS};

    /// Where one register tile reads and writes.
    #[derive(Clone, Copy)]
    struct Site {
        /// Input at the tile's first output pixel's top-left tap, at the group's first channel.
        input: *const f32,
        /// Elements between horizontally adjacent output pixels' inputs (stride × channels).
        input_step: usize,
        /// Elements between input rows.
        input_row: usize,
        channels: usize,
        group_width: usize,
        /// Blocked weights of the tile's first 8-channel block.
        weights: *const f32,
        bias: *const f32,
        /// Output at the tile's first pixel and first channel.
        output: *mut f32,
    }

    /// # Safety
    /// AVX2 and FMA are available; `conv.run`'s extent checks hold; no other task writes this
    /// output row and group.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn row_group(
        conv: &Conv3x3<'_>,
        blocked: &[f32],
        row: usize,
        group: usize,
        out: SendPtr,
    ) {
        let (c, gw, s) = (
            conv.weights.channels,
            conv.weights.group_width,
            conv.weights.stride,
        );
        let (out_h, out_w) = conv.output_size();
        let (n, y) = (row / out_h, row % out_h);
        let padded_w = conv.width + 2;
        let input_row = padded_w * c;
        let blocks = gw / LANES;
        let mut block = 0;
        while block < blocks {
            // Two 8-channel blocks share each broadcast input when the group has them.
            let pair = blocks - block >= 2;
            let first_channel = group * gw + block * LANES;
            let mut x = 0;
            while x < out_w {
                let pixel = (n * (conv.height + 2) + y * s) * padded_w + x * s;
                let site = Site {
                    input: conv.input[pixel * c + group * gw..].as_ptr(),
                    input_step: s * c,
                    input_row,
                    channels: c,
                    group_width: gw,
                    weights: blocked[first_channel * TAPS * gw..].as_ptr(),
                    bias: conv.weights.bias[first_channel..].as_ptr(),
                    // SAFETY: the output pixel (n, y, x) and channel lie inside the output
                    // (checked in `run`).
                    output: unsafe { out.0.add(((n * out_h + y) * out_w + x) * c + first_channel) },
                };
                let left = out_w - x;
                // SAFETY: the tile's pixels x..x + width lie in the row, and their taps in the
                // padded input (checked in `run`).
                let width = unsafe {
                    if pair {
                        dispatch::<2>(site, left.min(6))
                    } else {
                        dispatch::<1>(site, left.min(12))
                    }
                };
                x += width;
            }
            block += if pair { 2 } else { 1 };
        }
    }

    /// Runs the tile of `pixels` output pixels (1..=12) with `V` vectors of channels; returns
    /// the pixels done.
    #[target_feature(enable = "avx2,fma")]
    unsafe fn dispatch<const V: usize>(site: Site, pixels: usize) -> usize {
        // SAFETY: forwarded from the caller.
        unsafe {
            match pixels {
                1 => tile::<V, 1>(site),
                2 => tile::<V, 2>(site),
                3 => tile::<V, 3>(site),
                4 => tile::<V, 4>(site),
                5 => tile::<V, 5>(site),
                6 => tile::<V, 6>(site),
                7 => tile::<V, 7>(site),
                8 => tile::<V, 8>(site),
                9 => tile::<V, 9>(site),
                10 => tile::<V, 10>(site),
                11 => tile::<V, 11>(site),
                _ => tile::<V, 12>(site),
            }
        }
        pixels.min(12)
    }

    /// `P` output pixels × `V` blocks of 8 channels, accumulated over 9 taps × the group's input
    /// channels, then bias and ReLU. Kept out of line so that each instance keeps its P × V
    /// accumulators in registers with the pixel loop innermost.
    #[target_feature(enable = "avx2,fma")]
    #[inline(never)]
    unsafe fn tile<const V: usize, const P: usize>(site: Site) {
        let gw = site.group_width;
        let mut acc = [[_mm256_setzero_ps(); V]; P];
        for ky in 0..3 {
            for kx in 0..3 {
                let tap = ky * 3 + kx;
                // SAFETY: tap (ky, kx) of every pixel of the tile is inside the padded input.
                let pixels: [*const f32; P] = std::array::from_fn(|p| unsafe {
                    site.input
                        .add(ky * site.input_row + kx * site.channels + p * site.input_step)
                });
                // SAFETY: block v of this tile has TAPS × gw weight vectors.
                let weights: [*const f32; V] = std::array::from_fn(|v| unsafe {
                    site.weights.add((v * TAPS + tap) * gw * LANES)
                });
                for i in 0..gw {
                    // SAFETY: weight vector i of this tap, within the block's TAPS × gw vectors.
                    let w: [__m256; V] = std::array::from_fn(|v| unsafe {
                        _mm256_loadu_ps(weights[v].add(i * LANES))
                    });
                    for p in 0..P {
                        // SAFETY: input channel i of pixel p's tap is inside the padded input.
                        let x = unsafe { _mm256_broadcast_ss(&*pixels[p].add(i)) };
                        for v in 0..V {
                            acc[p][v] = _mm256_fmadd_ps(x, w[v], acc[p][v]);
                        }
                    }
                }
            }
        }
        let zero = _mm256_setzero_ps();
        // SAFETY: the tile's V × 8 channels have biases.
        let bias: [__m256; V] =
            std::array::from_fn(|v| unsafe { _mm256_loadu_ps(site.bias.add(v * LANES)) });
        for (p, acc) in acc.iter().enumerate() {
            for v in 0..V {
                let value = _mm256_max_ps(_mm256_add_ps(acc[v], bias[v]), zero);
                // SAFETY: output pixel p's V × 8 channels are inside the output and this task's.
                unsafe { _mm256_storeu_ps(site.output.add(p * site.channels + v * LANES), value) };
            }
        }
    }
}
