//! The CPU kernels: the only place with `unsafe` code.
//!
//! Activations are NHWC (`[batch][height][width][channels]`, f32): a 1×1 convolution is then a
//! GEMM over pixels × channels with no layout change, and the grouped 3×3 convolution reads each
//! group's input channels as one contiguous run. Every kernel has a portable scalar version that
//! always builds and serves as the reference in the property tests, and SIMD versions chosen at
//! run time: AVX2+FMA, and AVX-512 for the 1×1 and grouped 3×3 convolutions that dominate; on
//! aarch64, NEON (baseline there, so no detection) for the 1×1, grouped 3×3 and stem kernels.

pub mod aligned;
pub mod channels;
pub mod conv3x3;
pub mod gemm;
pub mod parallel;
pub mod peak;
pub mod stem;
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
mod vector;

/// The instruction set the kernels use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Isa {
    /// Portable Rust, any CPU.
    Scalar,
    /// x86-64 AVX2 with FMA.
    Avx2Fma,
    /// x86-64 AVX-512 (F and VL) besides AVX2 and FMA: the 1×1 and grouped 3×3 kernels use 512-bit
    /// vectors and 32 registers; the others run their AVX2 versions.
    Avx512,
    /// aarch64 NEON (Advanced SIMD, part of every aarch64 CPU): the 1×1, grouped 3×3 and stem
    /// kernels; pooling and the SE scale are portable loops the compiler vectorizes with NEON.
    Neon,
}

impl Isa {
    /// The best instruction set this CPU supports.
    pub fn detect() -> Isa {
        Kernels::detect().isa
    }
}

/// The kernel table: which version of every kernel runs, chosen once, when a workspace is made,
/// from what the CPU supports of the instruction set asked for. Only [`Kernels::new`] and
/// [`Kernels::detect`] make one, so a kernel given a table can trust its instruction set without
/// asking the CPU again (as tract-linalg's `ops()` table is built once).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Kernels {
    isa: Isa,
}

impl Kernels {
    /// The table for the best instruction set this CPU supports.
    pub fn detect() -> Kernels {
        Kernels::new(Isa::Avx512)
    }

    /// The table for `preferred` if this CPU supports it, else for the best it supports below
    /// that: a caller's choice can never run instructions the CPU lacks. Any SIMD choice on an
    /// aarch64 CPU is NEON; NEON asked of an x86-64 CPU is its best x86 set.
    pub fn new(preferred: Isa) -> Kernels {
        #[cfg(target_arch = "aarch64")]
        if preferred != Isa::Scalar {
            return Kernels { isa: Isa::Neon };
        }
        #[cfg(target_arch = "x86_64")]
        {
            let avx2 = is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma");
            let avx512 =
                is_x86_feature_detected!("avx512f") && is_x86_feature_detected!("avx512vl");
            if preferred == Isa::Avx512 && avx2 && avx512 {
                return Kernels { isa: Isa::Avx512 };
            }
            if preferred != Isa::Scalar && avx2 {
                return Kernels { isa: Isa::Avx2Fma };
            }
        }
        let _ = preferred;
        Kernels { isa: Isa::Scalar }
    }

    /// The instruction set the table's kernels use.
    pub fn isa(self) -> Isa {
        self.isa
    }
}

/// Zeroes zmm16–zmm31 and the upper halves of the others. The compiler's VZEROUPPER after AVX-512
/// code leaves zmm16–31 dirty, and while they are, Intel CPUs run 256-bit code (the AVX2 kernels)
/// slowly (measured: the AVX2 3×3 at ~60% of its speed): every AVX-512 kernel calls this before
/// it returns. A safe `#[target_feature]` function, so that only code compiled for AVX-512 can
/// call it without an `unsafe` block: the compiler checks that no AVX2 kernel calls it (that
/// would fault on a CPU without AVX-512).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
pub(crate) fn leave_avx512() {
    // SAFETY: this function only runs where AVX-512F is enabled (see above); the clobbered
    // registers are declared and hold nothing the caller keeps (no vector values live across a
    // kernel's return).
    unsafe {
        std::arch::asm!(
            "vpxord zmm16, zmm16, zmm16",
            "vpxord zmm17, zmm17, zmm17",
            "vpxord zmm18, zmm18, zmm18",
            "vpxord zmm19, zmm19, zmm19",
            "vpxord zmm20, zmm20, zmm20",
            "vpxord zmm21, zmm21, zmm21",
            "vpxord zmm22, zmm22, zmm22",
            "vpxord zmm23, zmm23, zmm23",
            "vpxord zmm24, zmm24, zmm24",
            "vpxord zmm25, zmm25, zmm25",
            "vpxord zmm26, zmm26, zmm26",
            "vpxord zmm27, zmm27, zmm27",
            "vpxord zmm28, zmm28, zmm28",
            "vpxord zmm29, zmm29, zmm29",
            "vpxord zmm30, zmm30, zmm30",
            "vpxord zmm31, zmm31, zmm31",
            "vzeroupper",
            out("zmm0") _, out("zmm1") _, out("zmm2") _, out("zmm3") _,
            out("zmm4") _, out("zmm5") _, out("zmm6") _, out("zmm7") _,
            out("zmm8") _, out("zmm9") _, out("zmm10") _, out("zmm11") _,
            out("zmm12") _, out("zmm13") _, out("zmm14") _, out("zmm15") _,
            out("zmm16") _, out("zmm17") _, out("zmm18") _, out("zmm19") _,
            out("zmm20") _, out("zmm21") _, out("zmm22") _, out("zmm23") _,
            out("zmm24") _, out("zmm25") _, out("zmm26") _, out("zmm27") _,
            out("zmm28") _, out("zmm29") _, out("zmm30") _, out("zmm31") _,
            options(nomem, nostack, preserves_flags),
        );
    }
}

/// Asks the CPU to bring share `part` of `parts` near-equal shares of `values` into L1: a
/// loop of `parts` steps over one block (a panel's tiles) spreads the fetch of the next block's
/// weights over its steps. Weights that a layer reads once per pass come from memory, and a
/// kernel that waits for each line as it first reads it stalls for each one.
#[inline(always)]
pub(crate) fn prefetch_share(values: &[f32], parts: usize, part: usize) {
    prefetch(
        &values[parallel::chunk(values.len(), parts, part)],
        Cache::L1,
    );
}

/// Which cache `prefetch` fills.
#[derive(Clone, Copy)]
pub(crate) enum Cache {
    /// For the running kernel's next block.
    L1,
    /// For a later step: L2 holds more, and what it evicts waits in L3.
    L2,
}

/// Asks the CPU to bring `values` into `cache`. A hint, which never faults. On x86-64 only
/// (aarch64's prefetch intrinsic is not stable Rust); elsewhere nothing.
#[inline(always)]
pub(crate) fn prefetch(values: &[f32], cache: Cache) {
    #[cfg(target_arch = "x86_64")]
    for line in values.chunks(16) {
        use std::arch::x86_64::{_MM_HINT_T0, _MM_HINT_T1, _mm_prefetch};
        let line = line.as_ptr().cast();
        // SAFETY: PREFETCHT0/T1 are SSE (baseline on x86-64), read nothing the program sees and
        // never fault; the address is inside `values`.
        unsafe {
            match cache {
                Cache::L1 => _mm_prefetch::<_MM_HINT_T0>(line),
                Cache::L2 => _mm_prefetch::<_MM_HINT_T1>(line),
            }
        };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (values, cache);
}

/// ReLU as PyTorch computes it, NaN included: `f32::max(v, 0.0)` returns 0 for a NaN `v`, which
/// would turn a NaN input or weight into finite, wrong logits instead of NaN ones.
#[inline(always)]
pub(crate) fn relu(v: f32) -> f32 {
    if v < 0.0 { 0.0 } else { v }
}

/// How a GEMM row (one pixel) maps to its place in a feature-map buffer, in units of pixels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pixels {
    /// Row p is pixel p.
    Dense,
    /// Row p is pixel (n, y, x) of an `h`×`w` grid, read at (n, stride·y, stride·x) of a grid of
    /// `in_h`×`in_w` (the input of a strided 1×1 convolution).
    Strided {
        /// Output grid height, in pixels.
        h: usize,
        /// Output grid width, in pixels.
        w: usize,
        /// Step between the input pixels read, in both directions.
        stride: usize,
        /// Input grid height, in pixels.
        in_h: usize,
        /// Input grid width, in pixels.
        in_w: usize,
    },
    /// Row p is pixel (n, y, x) of an `h`×`w` grid, stored at (n, y + 1, x + 1) of an
    /// (`h` + 2)×(`w` + 2) grid whose border stays zero (the input of a 3×3 convolution).
    Padded {
        /// Grid height without the border, in pixels.
        h: usize,
        /// Grid width without the border, in pixels.
        w: usize,
    },
}

impl Pixels {
    /// The buffer pixel that row `p` maps to (multiply by the channel count for a float offset).
    #[inline(always)]
    pub fn index(self, p: usize) -> usize {
        match self {
            Pixels::Dense => p,
            Pixels::Strided {
                h,
                w,
                stride,
                in_h,
                in_w,
            } => {
                let (n, rest) = (p / (h * w), p % (h * w));
                let (y, x) = (rest / w, rest % w);
                (n * in_h + y * stride) * in_w + x * stride
            }
            Pixels::Padded { h, w } => {
                let (n, rest) = (p / (h * w), p % (h * w));
                let (y, x) = (rest / w, rest % w);
                (n * (h + 2) + y + 1) * (w + 2) + x + 1
            }
        }
    }

    /// Indices of rows `first..first + count` (`count` ≥ 1), then the last one repeated up to
    /// `N`: one division for the whole run instead of two per row.
    #[inline(always)]
    pub fn run<const N: usize>(self, first: usize, count: usize) -> [usize; N] {
        let (h, w) = match self {
            Pixels::Dense => return std::array::from_fn(|r| first + r.min(count - 1)),
            Pixels::Strided { h, w, .. } | Pixels::Padded { h, w } => (h, w),
        };
        let (mut n, rest) = (first / (h * w), first % (h * w));
        let (mut y, mut x) = (rest / w, rest % w);
        let mut last = 0;
        std::array::from_fn(|r| {
            if r < count {
                last = match self {
                    Pixels::Strided {
                        stride, in_h, in_w, ..
                    } => (n * in_h + y * stride) * in_w + x * stride,
                    _ => (n * (h + 2) + y + 1) * (w + 2) + x + 1,
                };
                x += 1;
                if x == w {
                    x = 0;
                    y += 1;
                    if y == h {
                        y = 0;
                        n += 1;
                    }
                }
            }
            last
        })
    }

    /// Pixels the buffer must hold for `rows` rows; `None` when the mapping cannot describe
    /// `rows` rows (not whole images, a strided grid reaching past its input) or the count
    /// overflows.
    pub fn extent(self, rows: usize) -> Option<usize> {
        match self {
            Pixels::Dense => Some(rows),
            Pixels::Strided {
                h,
                w,
                stride,
                in_h,
                in_w,
            } => {
                let inside = h > 0
                    && w > 0
                    && (h - 1).checked_mul(stride)? < in_h
                    && (w - 1).checked_mul(stride)? < in_w;
                let images = whole_images(rows, h, w).filter(|_| inside)?;
                images.checked_mul(in_h)?.checked_mul(in_w)
            }
            Pixels::Padded { h, w } => {
                let images = whole_images(rows, h, w)?;
                images.checked_mul(h + 2)?.checked_mul(w + 2)
            }
        }
    }
}

fn whole_images(rows: usize, h: usize, w: usize) -> Option<usize> {
    let pixels = h.checked_mul(w).filter(|&p| p > 0)?;
    rows.is_multiple_of(pixels).then_some(rows / pixels)
}

/// Whether a buffer of `len` floats holds the product of `dims` (false if it overflows): the
/// check every kernel makes before forming pointers.
pub(crate) fn holds(len: usize, dims: &[usize]) -> bool {
    dims.iter()
        .try_fold(1usize, |product, &d| product.checked_mul(d))
        .is_some_and(|need| need <= len)
}

/// A pointer that may cross to another thread. Kernels split their output into disjoint parts,
/// one per task, and write through this.
#[derive(Clone, Copy)]
pub(crate) struct SendPtr(pub *mut f32);

impl SendPtr {
    /// The pointer; a method, so closures capture the whole (Send + Sync) wrapper.
    pub fn get(self) -> *mut f32 {
        self.0
    }
}

// SAFETY: the pointer is only dereferenced by tasks writing disjoint elements of a buffer that
// outlives the parallel loop (it is borrowed mutably for the loop's whole duration).
unsafe impl Send for SendPtr {}
// SAFETY: as above; shared access never writes the same element from two tasks.
unsafe impl Sync for SendPtr {}

#[cfg(test)]
mod tests {
    use super::Pixels;

    #[test]
    fn pixel_maps() {
        let strided = Pixels::Strided {
            h: 2,
            w: 3,
            stride: 2,
            in_h: 4,
            in_w: 5,
        };
        // Row 4 is (n=0, y=1, x=1), read at (2, 2) of the 4×5 input.
        assert_eq!(strided.index(4), 2 * 5 + 2);
        // Row 6 starts the second image.
        assert_eq!(strided.index(6), 20);
        let padded = Pixels::Padded { h: 2, w: 3 };
        assert_eq!(padded.index(0), 5 + 1);
        assert_eq!(padded.index(5), 2 * 5 + 3);
        assert_eq!(padded.index(6), 4 * 5 + 5 + 1);
        assert_eq!(padded.extent(12), Some(40));
        assert_eq!(padded.extent(7), None, "not whole images");
        let past = Pixels::Strided {
            h: 3,
            w: 3,
            stride: 2,
            in_h: 4,
            in_w: 5,
        };
        assert_eq!(past.extent(9), None, "rows 2·2 = 4 is past a 4-row input");
        for pixels in [Pixels::Dense, strided, padded] {
            for first in 0..12 {
                for count in 1..=(12 - first).min(6) {
                    let run: [usize; 6] = pixels.run(first, count);
                    let expected: Vec<usize> = (0..6)
                        .map(|r| pixels.index(first + r.min(count - 1)))
                        .collect();
                    assert_eq!(
                        run.to_vec(),
                        expected,
                        "{pixels:?} from {first}, {count} rows"
                    );
                }
            }
        }
    }
}
