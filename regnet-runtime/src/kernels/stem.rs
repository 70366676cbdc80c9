//! The stem: a dense 3×3 convolution with stride 2 from the NCHW image batch (3 channels, as
//! PyTorch takes it) to NHWC features, bias and ReLU fused. With only 3 input channels there is
//! nothing to vectorize over inputs, so the kernel vectorizes over output channels and keeps
//! several output pixels in registers.

use super::aligned::AlignedBuffer;
use super::parallel::for_each_task;
use super::{Isa, SendPtr, holds};

const LANES: usize = 8;
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

    pub fn outputs(&self) -> usize {
        self.outputs
    }
}

/// The stem over a batch.
pub struct Stem<'a> {
    pub weights: &'a PackedStem,
    pub batch: usize,
    pub height: usize,
    pub width: usize,
    /// `[batch][inputs][height + 2][width + 2]`, border zero.
    pub input: &'a [f32],
}

impl Stem<'_> {
    pub fn output_size(&self) -> (usize, usize) {
        (
            (self.height - 1) / STRIDE + 1,
            (self.width - 1) / STRIDE + 1,
        )
    }

    /// Writes `[batch][out_h][out_w][outputs]`.
    pub fn run(&self, isa: Isa, threads: usize, output: &mut [f32]) {
        let (out_h, out_w) = self.output_size();
        let (inputs, outputs) = (self.weights.inputs, self.weights.outputs);
        let isa = Isa::supported(isa);
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
            Isa::Avx2Fma | Isa::Avx512 if outputs.is_multiple_of(LANES) => {
                // SAFETY: AVX2 and FMA were detected (AVX-512 is only chosen with them); extents checked above; this task alone
                // writes this output row.
                unsafe { avx2::row(self, row, out) }
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
                unsafe { *out.0.add(((n * out_h + y) * out_w + x) * outputs + o) = acc.max(0.0) };
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    use super::{LANES, STRIDE, SendPtr, Stem, TAPS};

    /// Output pixels per register tile: 6 pixels × 2 vectors = 12 accumulators.
    const PIXELS: usize = 6;

    /// # Safety
    /// AVX2 and FMA are available; `stem.run`'s extent checks hold; the output channels are a
    /// multiple of 8; no other task writes this output row.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn row(stem: &Stem<'_>, row: usize, out: SendPtr) {
        let (out_h, out_w) = stem.output_size();
        let outputs = stem.weights.outputs;
        let (n, y) = (row / out_h, row % out_h);
        let mut block = 0;
        while block < outputs / LANES {
            let pair = outputs / LANES - block >= 2;
            let mut x = 0;
            while x < out_w {
                let pixels = (out_w - x).min(PIXELS);
                // SAFETY: forwarded; pixels x..x + pixels and blocks block.. lie inside.
                unsafe {
                    if pair {
                        tile::<2>(stem, n, y, x, pixels, block, out);
                    } else {
                        tile::<1>(stem, n, y, x, pixels, block, out);
                    }
                }
                x += pixels;
            }
            block += if pair { 2 } else { 1 };
        }
    }

    #[target_feature(enable = "avx2,fma")]
    unsafe fn tile<const V: usize>(
        stem: &Stem<'_>,
        n: usize,
        y: usize,
        x: usize,
        pixels: usize,
        block: usize,
        out: SendPtr,
    ) {
        let (out_h, out_w) = stem.output_size();
        let (inputs, outputs) = (stem.weights.inputs, stem.weights.outputs);
        let (ph, pw) = (stem.height + 2, stem.width + 2);
        let mut acc = [[_mm256_setzero_ps(); V]; PIXELS];
        for i in 0..inputs {
            for ky in 0..3 {
                let input = stem.input
                    [((n * inputs + i) * ph + y * STRIDE + ky) * pw + x * STRIDE..]
                    .as_ptr();
                for kx in 0..3 {
                    let w_at = (i * TAPS + ky * 3 + kx) * outputs + block * LANES;
                    let w: [__m256; V] = std::array::from_fn(|v| {
                        // SAFETY: the tap's output weights hold `outputs` values from w_at - block × 8.
                        unsafe {
                            _mm256_loadu_ps(stem.weights.weight.as_ptr().add(w_at + v * LANES))
                        }
                    });
                    for (p, acc) in acc.iter_mut().enumerate().take(pixels) {
                        // SAFETY: pixel p's tap is inside the padded input row.
                        let v = unsafe { _mm256_broadcast_ss(&*input.add(p * STRIDE + kx)) };
                        for j in 0..V {
                            acc[j] = _mm256_fmadd_ps(v, w[j], acc[j]);
                        }
                    }
                }
            }
        }
        let zero = _mm256_setzero_ps();
        for (p, acc) in acc.iter().enumerate().take(pixels) {
            for (j, &acc) in acc.iter().enumerate() {
                let channel = (block + j) * LANES;
                // SAFETY: `bias` has `outputs` values; the output pixel's channels are inside
                // the output and owned by this task.
                unsafe {
                    let bias = _mm256_loadu_ps(stem.weights.bias.as_ptr().add(channel));
                    let value = _mm256_max_ps(_mm256_add_ps(acc, bias), zero);
                    _mm256_storeu_ps(
                        out.0
                            .add(((n * out_h + y) * out_w + x + p) * outputs + channel),
                        value,
                    );
                }
            }
        }
    }
}
