//! The stem: a dense 3×3 convolution with stride 2 from the NCHW image batch (3 channels, as
//! PyTorch takes it) to NHWC features, bias and ReLU fused. With only 3 input channels there is
//! nothing to vectorize over inputs, so the kernel vectorizes over output channels and keeps
//! several output pixels in registers.

use super::aligned::AlignedBuffer;
use super::parallel::for_each_task;
use super::{Isa, Kernels, SendPtr, holds, relu};

const TAPS: usize = 9;
const STRIDE: usize = 2;

/// The stem convolution, BN folded.
#[derive(Clone, Debug)]
pub struct PackedStem {
    inputs: usize,
    outputs: usize,
    /// `[input channel][tap][output]`: each tap gives a contiguous run of output weights.
    weight: AlignedBuffer,
    bias: Vec<f32>,
}

impl PackedStem {
    /// `weight` is PyTorch's `[outputs][inputs][3][3]`.
    pub fn new(weight: &[f32], bias: &[f32], inputs: usize, outputs: usize) -> Self {
        assert_eq!(weight.len(), outputs * inputs * TAPS, "weight shape");
        assert_eq!(bias.len(), outputs, "bias shape");
        let mut packed = AlignedBuffer::zeroed(weight.len());
        for o in 0..outputs {
            for i in 0..inputs {
                for tap in 0..TAPS {
                    packed[(i * TAPS + tap) * outputs + o] = weight[(o * inputs + i) * TAPS + tap];
                }
            }
        }
        PackedStem {
            inputs,
            outputs,
            weight: packed,
            bias: bias.to_vec(),
        }
    }

    /// Output channels: the stem width.
    pub fn outputs(&self) -> usize {
        self.outputs
    }
}

/// The stem over a batch.
pub struct Stem<'a> {
    /// The packed stem convolution.
    pub weights: &'a PackedStem,
    /// Images in the batch.
    pub batch: usize,
    /// Image height without the zero border, in pixels.
    pub height: usize,
    /// Image width without the zero border, in pixels.
    pub width: usize,
    /// `[batch][inputs][height + 2][width + 2]`, border zero.
    pub input: &'a [f32],
}

impl Stem<'_> {
    /// The output's (height, width): the input's halved, rounding up (stride 2, padding 1).
    pub fn output_size(&self) -> (usize, usize) {
        (
            (self.height - 1) / STRIDE + 1,
            (self.width - 1) / STRIDE + 1,
        )
    }

    /// Writes `[batch][out_h][out_w][outputs]`.
    pub fn run(&self, kernels: Kernels, threads: usize, output: &mut [f32]) {
        let (out_h, out_w) = self.output_size();
        let (inputs, outputs) = (self.weights.inputs, self.weights.outputs);
        let isa = kernels.isa;
        assert!(self.height > 0 && self.width > 0);
        assert!(
            holds(
                self.input.len(),
                &[self.batch, inputs, self.height + 2, self.width + 2]
            ),
            "stem input too short"
        );
        assert!(
            holds(output.len(), &[self.batch, out_h, out_w, outputs]),
            "stem output too short"
        );
        let out = SendPtr(output.as_mut_ptr());
        for_each_task(threads, self.batch * out_h, |row| match isa {
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 if outputs.is_multiple_of(16) => {
                // SAFETY: AVX-512F and VL were detected; extents checked above; this task
                // alone writes this output row.
                unsafe { simd::row_avx512(self, row, out) }
            }
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2Fma | Isa::Avx512 if outputs.is_multiple_of(8) => {
                // SAFETY: AVX2 and FMA were detected (AVX-512 is only chosen with them);
                // extents checked above; this task alone writes this output row.
                unsafe { simd::row_avx2(self, row, out) }
            }
            #[cfg(target_arch = "aarch64")]
            Isa::Neon if outputs.is_multiple_of(8) => {
                // SAFETY: NEON is part of every aarch64 CPU; extents checked above; this task
                // alone writes this output row.
                unsafe { simd::row_neon(self, row, out) }
            }
            _ => self.scalar_row(row, out),
        });
    }

    fn scalar_row(&self, row: usize, out: SendPtr) {
        let (out_h, out_w) = self.output_size();
        let (inputs, outputs) = (self.weights.inputs, self.weights.outputs);
        let (n, y) = (row / out_h, row % out_h);
        let (ph, pw) = (self.height + 2, self.width + 2);
        for x in 0..out_w {
            for o in 0..outputs {
                let mut acc = self.weights.bias[o];
                for i in 0..inputs {
                    for ky in 0..3 {
                        for kx in 0..3 {
                            let v = self.input
                                [((n * inputs + i) * ph + y * STRIDE + ky) * pw + x * STRIDE + kx];
                            acc += v * self.weights.weight[(i * TAPS + ky * 3 + kx) * outputs + o];
                        }
                    }
                }
                // SAFETY: extents checked in `run`; this task owns this output row.
                unsafe { *out.0.add(((n * out_h + y) * out_w + x) * outputs + o) = relu(acc) };
            }
        }
    }
}

#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
mod simd {
    #[cfg(target_arch = "x86_64")]
    use std::arch::x86_64::*;

    #[cfg(target_arch = "x86_64")]
    use super::super::leave_avx512;
    use std::marker::PhantomData;

    use super::super::vector::{Tile, Vector, widest};
    use super::{STRIDE, SendPtr, Stem, TAPS};

    /// # Safety
    /// `stem.run`'s extent checks hold; the output channels are a multiple of 8; no other task
    /// writes this output row.
    #[cfg(target_arch = "aarch64")]
    #[target_feature(enable = "neon")]
    pub unsafe fn row_neon(stem: &Stem<'_>, row: usize, out: SendPtr) {
        // Two NEON registers per 8-wide vector: AVX2's tiles fill NEON's 32 registers.
        // SAFETY: forwarded from the caller.
        unsafe { row_tiles::<super::super::vector::F32x8, 6, 12>(stem, row, out) }
    }

    /// # Safety
    /// AVX2 and FMA are available; `stem.run`'s extent checks hold; the output channels are a
    /// multiple of 8; no other task writes this output row.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn row_avx2(stem: &Stem<'_>, row: usize, out: SendPtr) {
        // 16 registers: 6 pixels × 2 vectors or 12 × 1, beside the weights and a broadcast.
        // SAFETY: forwarded from the caller.
        unsafe { row_tiles::<__m256, 6, 12>(stem, row, out) }
    }

    /// # Safety
    /// As for `row_avx2`, with AVX-512F and VL, and output channels a multiple of 16.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx512vl")]
    pub unsafe fn row_avx512(stem: &Stem<'_>, row: usize, out: SendPtr) {
        // SAFETY: forwarded from the caller.
        unsafe { row_tiles::<__m512, 14, 14>(stem, row, out) };
        leave_avx512();
    }

    /// One output row in tiles of at most `PAIR` pixels × 2 vectors of output channels (or
    /// `SINGLE` pixels × 1 for an odd last one).
    ///
    /// # Safety
    /// As for the entry points, whose instruction sets `V` needs; the output channels are a
    /// multiple of `V::LANES`.
    #[inline(always)]
    unsafe fn row_tiles<V: Vector, const PAIR: usize, const SINGLE: usize>(
        stem: &Stem<'_>,
        row: usize,
        out: SendPtr,
    ) {
        let (out_h, out_w) = stem.output_size();
        let blocks = stem.weights.outputs / V::LANES;
        let (n, y) = (row / out_h, row % out_h);
        let mut block = 0;
        while block < blocks {
            let pair = blocks - block >= 2;
            let mut x = 0;
            while x < out_w {
                let at = Pixel { n, y, x, block };
                let left = out_w - x;
                // SAFETY: forwarded; pixels from x on and blocks from `block` on lie inside.
                x += unsafe {
                    if pair {
                        widest::<_, PAIR>(
                            StemTile::<V, 2> {
                                stem,
                                at,
                                out,
                                vector: PhantomData,
                            },
                            left,
                        )
                    } else {
                        widest::<_, SINGLE>(
                            StemTile::<V, 1> {
                                stem,
                                at,
                                out,
                                vector: PhantomData,
                            },
                            left,
                        )
                    }
                };
            }
            block += if pair { 2 } else { 1 };
        }
    }

    /// A tile's first output pixel and first block of output channels.
    #[derive(Clone, Copy)]
    struct Pixel {
        n: usize,
        y: usize,
        x: usize,
        block: usize,
    }

    /// The tile of `B` vectors of output channels at `at`.
    #[derive(Clone, Copy)]
    struct StemTile<'a, 's, V, const B: usize> {
        stem: &'s Stem<'a>,
        at: Pixel,
        out: SendPtr,
        vector: PhantomData<V>,
    }

    impl<V: Vector, const B: usize> Tile for StemTile<'_, '_, V, B> {
        #[inline(always)]
        unsafe fn run<const P: usize>(self) {
            // SAFETY: forwarded from the caller.
            unsafe { tile::<V, B, P>(self.stem, self.at, self.out) }
        }
    }

    /// `P` output pixels × `B` vectors of output channels over the 3 × 9 input taps, then bias
    /// and ReLU; only fixed-index loops touch the accumulators, which stay in registers.
    ///
    /// # Safety
    /// As for `row_tiles`, and the tile's P pixels lie in the row.
    #[inline(always)]
    unsafe fn tile<V: Vector, const B: usize, const P: usize>(
        stem: &Stem<'_>,
        at: Pixel,
        out: SendPtr,
    ) {
        let (out_h, out_w) = stem.output_size();
        let (inputs, outputs) = (stem.weights.inputs, stem.weights.outputs);
        let (ph, pw) = (stem.height + 2, stem.width + 2);
        let first_channel = at.block * V::LANES;
        // SAFETY (whole body): the instruction set is the entry point's; the taps of the
        // tile's pixels lie in the padded input, each tap's weights hold `outputs` values, and
        // the output pixels' channels lie in the output (checked in `run`).
        unsafe {
            let mut acc = [[V::zero(); B]; P];
            for i in 0..inputs {
                for ky in 0..3 {
                    let input = stem
                        .input
                        .as_ptr()
                        .add(((at.n * inputs + i) * ph + at.y * STRIDE + ky) * pw + at.x * STRIDE);
                    for kx in 0..3 {
                        let weights = stem
                            .weights
                            .weight
                            .as_ptr()
                            .add((i * TAPS + ky * 3 + kx) * outputs + first_channel);
                        let w: [V; B] = std::array::from_fn(|b| V::load(weights.add(b * V::LANES)));
                        // Fixed-index loops keep `acc` in registers (see conv3x3's tile).
                        #[allow(clippy::needless_range_loop)]
                        for p in 0..P {
                            let x = V::splat(input.add(p * STRIDE + kx));
                            for b in 0..B {
                                acc[p][b] = V::mul_add(x, w[b], acc[p][b]);
                            }
                        }
                    }
                }
            }
            let bias = stem.weights.bias.as_ptr().add(first_channel);
            let bias: [V; B] = std::array::from_fn(|b| V::load(bias.add(b * V::LANES)));
            let output = out
                .0
                .add(((at.n * out_h + at.y) * out_w + at.x) * outputs + first_channel);
            #[allow(clippy::needless_range_loop)]
            for p in 0..P {
                for b in 0..B {
                    acc[p][b].store_bias_relu(bias[b], output.add(p * outputs + b * V::LANES));
                }
            }
        }
    }
}
