//! f32 buffers aligned to cache lines: a 32-byte vector load from them never straddles two
//! lines, which otherwise costs every other load of a packed weight row.

use std::ops::{Deref, DerefMut};

const FLOATS_PER_LINE: usize = 16;

#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct CacheLine([f32; FLOATS_PER_LINE]);

/// A zero-initialized, fixed-length, 64-byte-aligned `[f32]`.
#[derive(Clone, Default)]
pub struct AlignedBuffer {
    lines: Vec<CacheLine>,
    len: usize,
}

impl AlignedBuffer {
    /// `len` zeros; aborts like `Vec` if the memory cannot be had (see `try_zeroed`).
    pub fn zeroed(len: usize) -> Self {
        AlignedBuffer {
            lines: vec![CacheLine([0.0; FLOATS_PER_LINE]); len.div_ceil(FLOATS_PER_LINE)],
            len,
        }
    }

    /// `None` when the memory cannot be had (instead of aborting the process).
    pub fn try_zeroed(len: usize) -> Option<Self> {
        let mut lines = Vec::new();
        lines
            .try_reserve_exact(len.div_ceil(FLOATS_PER_LINE))
            .ok()?;
        lines.resize(
            len.div_ceil(FLOATS_PER_LINE),
            CacheLine([0.0; FLOATS_PER_LINE]),
        );
        Some(AlignedBuffer { lines, len })
    }

    /// An aligned copy of `values` (for packed weights).
    pub fn from_slice(values: &[f32]) -> Self {
        let mut buffer = Self::zeroed(values.len());
        buffer.copy_from_slice(values);
        buffer
    }
}

impl Deref for AlignedBuffer {
    type Target = [f32];

    fn deref(&self) -> &[f32] {
        // SAFETY: `CacheLine` is `repr(C)` around `[f32; 16]`, so `lines` is a contiguous,
        // initialized run of `lines.len() × 16 ≥ len` f32s with f32's alignment (and more).
        unsafe { std::slice::from_raw_parts(self.lines.as_ptr().cast::<f32>(), self.len) }
    }
}

impl DerefMut for AlignedBuffer {
    fn deref_mut(&mut self) -> &mut [f32] {
        // SAFETY: as in `deref`, and `&mut self` makes this the only reference.
        unsafe { std::slice::from_raw_parts_mut(self.lines.as_mut_ptr().cast::<f32>(), self.len) }
    }
}

impl std::fmt::Debug for AlignedBuffer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AlignedBuffer({} floats)", self.len)
    }
}

#[cfg(test)]
mod tests {
    use super::AlignedBuffer;

    #[test]
    fn aligned_and_exactly_sized() {
        for len in [0, 1, 15, 16, 17, 1000] {
            let mut buffer = AlignedBuffer::zeroed(len);
            assert_eq!(buffer.len(), len);
            assert_eq!(buffer.as_ptr() as usize % 64, 0);
            buffer
                .iter_mut()
                .enumerate()
                .for_each(|(i, v)| *v = i as f32);
            assert_eq!(AlignedBuffer::from_slice(&buffer)[..], buffer[..]);
        }
    }
}
