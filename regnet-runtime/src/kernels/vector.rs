//! SIMD registers as one trait, so that a kernel is written once and compiled for each
//! instruction set by entry points with the matching `#[target_feature]`.

#[cfg(target_arch = "aarch64")]
use std::arch::aarch64::*;
#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;

/// One SIMD register of f32 lanes. The methods are inlined into kernels compiled with the
/// instruction set they need (the kernels' `#[target_feature]` entry points).
pub trait Vector: Copy {
    const LANES: usize;
    /// An 8-wide vector, for a group's last 8 channels beside 16-wide blocks.
    type Half: Vector;
    /// The low 8 lanes (free: the same register).
    /// # Safety
    /// As for `zero`.
    unsafe fn low(self) -> Self::Half;
    /// # Safety
    /// The CPU has the vector's instruction set.
    unsafe fn zero() -> Self;
    /// # Safety
    /// As for `zero`, and `LANES` values at `p`.
    unsafe fn load(p: *const f32) -> Self;
    /// # Safety
    /// As for `zero`, and a value at `p`.
    unsafe fn splat(p: *const f32) -> Self;
    /// `a · b + c`.
    /// # Safety
    /// As for `zero`.
    unsafe fn mul_add(a: Self, b: Self, c: Self) -> Self;
    /// ReLU, NaN propagated as by the scalar [`super::relu`].
    /// # Safety
    /// As for `zero`.
    unsafe fn relu(self) -> Self;
    /// Stores `relu(self + bias)` at `p`.
    /// # Safety
    /// As for `zero`, and room for `LANES` values at `p`.
    unsafe fn store_bias_relu(self, bias: Self, p: *mut f32);
}

// SAFETY (all methods below): the callers guarantee the instruction set and the pointers.
#[cfg(target_arch = "x86_64")]
impl Vector for __m256 {
    const LANES: usize = 8;
    type Half = __m256;
    #[inline(always)]
    unsafe fn low(self) -> Self::Half {
        self
    }
    #[inline(always)]
    unsafe fn zero() -> Self {
        unsafe { _mm256_setzero_ps() }
    }
    #[inline(always)]
    unsafe fn load(p: *const f32) -> Self {
        unsafe { _mm256_loadu_ps(p) }
    }
    #[inline(always)]
    unsafe fn splat(p: *const f32) -> Self {
        unsafe { _mm256_broadcast_ss(&*p) }
    }
    #[inline(always)]
    unsafe fn mul_add(a: Self, b: Self, c: Self) -> Self {
        unsafe { _mm256_fmadd_ps(a, b, c) }
    }
    #[inline(always)]
    unsafe fn relu(self) -> Self {
        // MAXPS returns its second operand when either is NaN: zero first keeps a NaN.
        unsafe { _mm256_max_ps(_mm256_setzero_ps(), self) }
    }
    #[inline(always)]
    unsafe fn store_bias_relu(self, bias: Self, p: *mut f32) {
        unsafe { _mm256_storeu_ps(p, _mm256_add_ps(self, bias).relu()) }
    }
}

#[cfg(target_arch = "x86_64")]
impl Vector for __m512 {
    const LANES: usize = 16;
    type Half = __m256;
    #[inline(always)]
    unsafe fn low(self) -> Self::Half {
        unsafe { _mm512_castps512_ps256(self) }
    }
    #[inline(always)]
    unsafe fn zero() -> Self {
        unsafe { _mm512_setzero_ps() }
    }
    #[inline(always)]
    unsafe fn load(p: *const f32) -> Self {
        unsafe { _mm512_loadu_ps(p) }
    }
    #[inline(always)]
    unsafe fn splat(p: *const f32) -> Self {
        unsafe { _mm512_set1_ps(*p) }
    }
    #[inline(always)]
    unsafe fn mul_add(a: Self, b: Self, c: Self) -> Self {
        unsafe { _mm512_fmadd_ps(a, b, c) }
    }
    #[inline(always)]
    unsafe fn relu(self) -> Self {
        // As for AVX2: VMAXPS returns its second operand when either is NaN.
        unsafe { _mm512_max_ps(_mm512_setzero_ps(), self) }
    }
    #[inline(always)]
    unsafe fn store_bias_relu(self, bias: Self, p: *mut f32) {
        unsafe { _mm512_storeu_ps(p, _mm512_add_ps(self, bias).relu()) }
    }
}

/// Eight lanes as two NEON registers: the 8-wide blocks the x86 kernels use, so that the same
/// tiles (sized for AVX2's 16 registers of 8 lanes) fill NEON's 32 registers of 4.
#[cfg(target_arch = "aarch64")]
#[derive(Clone, Copy)]
pub struct F32x8(float32x4_t, float32x4_t);

#[cfg(target_arch = "aarch64")]
impl Vector for F32x8 {
    const LANES: usize = 8;
    type Half = F32x8;
    #[inline(always)]
    unsafe fn low(self) -> Self::Half {
        self
    }
    #[inline(always)]
    unsafe fn zero() -> Self {
        unsafe { F32x8(vdupq_n_f32(0.0), vdupq_n_f32(0.0)) }
    }
    #[inline(always)]
    unsafe fn load(p: *const f32) -> Self {
        unsafe { F32x8(vld1q_f32(p), vld1q_f32(p.add(4))) }
    }
    #[inline(always)]
    unsafe fn splat(p: *const f32) -> Self {
        let value = unsafe { vld1q_dup_f32(p) };
        F32x8(value, value)
    }
    #[inline(always)]
    unsafe fn mul_add(a: Self, b: Self, c: Self) -> Self {
        unsafe { F32x8(vfmaq_f32(c.0, a.0, b.0), vfmaq_f32(c.1, a.1, b.1)) }
    }
    #[inline(always)]
    unsafe fn relu(self) -> Self {
        // FMAX returns NaN when either operand is NaN.
        unsafe {
            let zero = vdupq_n_f32(0.0);
            F32x8(vmaxq_f32(self.0, zero), vmaxq_f32(self.1, zero))
        }
    }
    #[inline(always)]
    unsafe fn store_bias_relu(self, bias: Self, p: *mut f32) {
        unsafe {
            let sum = F32x8(vaddq_f32(self.0, bias.0), vaddq_f32(self.1, bias.1)).relu();
            vst1q_f32(p, sum.0);
            vst1q_f32(p.add(4), sum.1);
        }
    }
}

/// What Winograd's transforms add to `Vector`'s multiply-adds (see `conv3x3::winograd`): the
/// 8-wide vectors only, the ones the transformed kernel runs on.
pub trait Transform: Vector {
    /// `a + b`.
    /// # Safety
    /// As for `Vector::zero`.
    unsafe fn add(a: Self, b: Self) -> Self;
    /// `a − b`.
    /// # Safety
    /// As for `Vector::zero`.
    unsafe fn sub(a: Self, b: Self) -> Self;
    /// # Safety
    /// As for `Vector::zero`, and room for `LANES` values at `p`.
    unsafe fn store(self, p: *mut f32);
    /// Whether any lane is NaN.
    /// # Safety
    /// As for `Vector::zero`.
    unsafe fn any_nan(self) -> bool;
}

// SAFETY (all methods below): the callers guarantee the instruction set and the pointers.
#[cfg(target_arch = "x86_64")]
impl Transform for __m256 {
    #[inline(always)]
    unsafe fn add(a: Self, b: Self) -> Self {
        unsafe { _mm256_add_ps(a, b) }
    }
    #[inline(always)]
    unsafe fn sub(a: Self, b: Self) -> Self {
        unsafe { _mm256_sub_ps(a, b) }
    }
    #[inline(always)]
    unsafe fn store(self, p: *mut f32) {
        unsafe { _mm256_storeu_ps(p, self) }
    }
    #[inline(always)]
    unsafe fn any_nan(self) -> bool {
        unsafe { _mm256_movemask_ps(_mm256_cmp_ps::<_CMP_UNORD_Q>(self, self)) != 0 }
    }
}

#[cfg(target_arch = "aarch64")]
impl Transform for F32x8 {
    #[inline(always)]
    unsafe fn add(a: Self, b: Self) -> Self {
        unsafe { F32x8(vaddq_f32(a.0, b.0), vaddq_f32(a.1, b.1)) }
    }
    #[inline(always)]
    unsafe fn sub(a: Self, b: Self) -> Self {
        unsafe { F32x8(vsubq_f32(a.0, b.0), vsubq_f32(a.1, b.1)) }
    }
    #[inline(always)]
    unsafe fn store(self, p: *mut f32) {
        unsafe {
            vst1q_f32(p, self.0);
            vst1q_f32(p.add(4), self.1);
        }
    }
    #[inline(always)]
    unsafe fn any_nan(self) -> bool {
        // A lane equals itself unless it is NaN.
        unsafe {
            let equal = vandq_u32(vceqq_f32(self.0, self.0), vceqq_f32(self.1, self.1));
            vminvq_u32(equal) == 0
        }
    }
}

/// What the 1×1 kernel adds to `Transform`: the first lanes of a vector whose panel is not
/// whole.
pub trait Partial: Transform {
    /// The first `count` (at most `LANES`) values at `p`, zeros past them; reads no others.
    /// # Safety
    /// As for `Vector::zero`, and `count` values at `p`.
    unsafe fn load_first(p: *const f32, count: usize) -> Self;
    /// Stores the first `count` (at most `LANES`) lanes at `p`; writes no others.
    /// # Safety
    /// As for `Vector::zero`, and room for `count` values at `p`.
    unsafe fn store_first(self, p: *mut f32, count: usize);
}

/// The lanes below `count`, as an AVX2 mask.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn first_lanes(count: usize) -> __m256i {
    unsafe {
        _mm256_cmpgt_epi32(
            _mm256_set1_epi32(count as i32),
            _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7),
        )
    }
}

// SAFETY (all methods below): the callers guarantee the instruction set and the pointers; masked
// and copied accesses touch no values past `count`.
#[cfg(target_arch = "x86_64")]
impl Partial for __m256 {
    #[inline(always)]
    unsafe fn load_first(p: *const f32, count: usize) -> Self {
        unsafe { _mm256_maskload_ps(p, first_lanes(count)) }
    }
    #[inline(always)]
    unsafe fn store_first(self, p: *mut f32, count: usize) {
        unsafe { _mm256_maskstore_ps(p, first_lanes(count), self) }
    }
}

#[cfg(target_arch = "aarch64")]
impl Partial for F32x8 {
    // NEON has no masked loads and stores: the lanes go through a copy.
    #[inline(always)]
    unsafe fn load_first(p: *const f32, count: usize) -> Self {
        let mut copy = [0.0f32; 8];
        unsafe {
            std::ptr::copy_nonoverlapping(p, copy.as_mut_ptr(), count);
            Self::load(copy.as_ptr())
        }
    }
    #[inline(always)]
    unsafe fn store_first(self, p: *mut f32, count: usize) {
        let mut copy = [0.0f32; 8];
        unsafe {
            self.store(copy.as_mut_ptr());
            std::ptr::copy_nonoverlapping(copy.as_ptr(), p, count);
        }
    }
}

/// A register tile of the caller's choice of width: `P` output pixels.
pub trait Tile: Copy {
    /// # Safety
    /// As for the kernel that makes the tile; its `P` pixels lie in the output row.
    unsafe fn run<const P: usize>(self);
}

/// Runs the widest tile of at most `left` pixels among `MAX`, 7 (a 7-wide map's rows and the
/// tail of 14-, 28- and 56-wide ones), 4, 3, 2 and 1 that does not leave a single pixel behind
/// (a one-pixel tile waits on its few accumulators' FMA latency: 4 + 3 beats 6 + 1); returns the
/// pixels done.
///
/// # Safety
/// As for `Tile::run`, for the first `left` pixels.
#[inline(always)]
pub unsafe fn widest<T: Tile, const MAX: usize>(tile: T, left: usize) -> usize {
    let fits = |width: usize| width <= left && (left - width != 1 || width == 1);
    // SAFETY: forwarded from the caller; each width is at most `left`.
    unsafe {
        if fits(MAX) {
            tile.run::<MAX>();
            MAX
        } else if MAX > 7 && fits(7) {
            tile.run::<7>();
            7
        } else if MAX > 4 && fits(4) {
            tile.run::<4>();
            4
        } else if fits(3) {
            tile.run::<3>();
            3
        } else if left >= 2 {
            tile.run::<2>();
            2
        } else {
            tile.run::<1>();
            1
        }
    }
}
