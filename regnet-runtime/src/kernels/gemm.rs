//! 1×1 convolutions and linear layers as a GEMM over pixels: `out[p][j] = Σ_k in[p][k]·w[j][k] +
//! bias[j]`, then optionally `+ residual[p][j]` and ReLU, all applied while the tile is in
//! registers. Weights are packed once at load into panels of 16 output channels.

use super::parallel::{chunk, for_each_task};
use super::{Isa, Pixels, SendPtr};

/// Output channels per packed panel: two AVX registers.
pub const PANEL: usize = 16;
/// Pixels per register tile: 6 × 2 accumulators + 2 weight registers + 1 broadcast fit the 16
/// AVX registers.
pub const TILE_ROWS: usize = 6;
/// Input bytes a task keeps hot across panels (within L2 with the panel beside it).
const ROW_BLOCK_BYTES: usize = 96 * 1024;

/// A 1×1 convolution or linear layer, BN folded, packed for the kernels.
#[derive(Clone, Debug)]
pub struct PackedLinear {
    inputs: usize,
    outputs: usize,
    /// `[panel][k][PANEL]`, output channels past `outputs` zero.
    panels: Vec<f32>,
    /// Padded to a whole number of panels.
    bias: Vec<f32>,
}

impl PackedLinear {
    /// `weight` is `[outputs][inputs]` (PyTorch's layout), `bias` has `outputs` entries.
    pub fn new(weight: &[f32], bias: &[f32], inputs: usize, outputs: usize) -> Self {
        assert_eq!(weight.len(), inputs * outputs, "weight shape");
        assert_eq!(bias.len(), outputs, "bias shape");
        let panels = outputs.div_ceil(PANEL);
        let mut packed = vec![0.0; panels * inputs * PANEL];
        for j in 0..outputs {
            let (panel, lane) = (j / PANEL, j % PANEL);
            for k in 0..inputs {
                packed[(panel * inputs + k) * PANEL + lane] = weight[j * inputs + k];
            }
        }
        let mut padded_bias = bias.to_vec();
        padded_bias.resize(panels * PANEL, 0.0);
        PackedLinear {
            inputs,
            outputs,
            panels: packed,
            bias: padded_bias,
        }
    }

    pub fn inputs(&self) -> usize {
        self.inputs
    }

    pub fn outputs(&self) -> usize {
        self.outputs
    }
}

/// One GEMM: `rows` pixels of `weights.inputs()` channels in, `weights.outputs()` out.
pub struct Gemm<'a> {
    pub weights: &'a PackedLinear,
    pub rows: usize,
    pub input: &'a [f32],
    pub input_pixels: Pixels,
    /// Added before the ReLU; dense rows of `weights.outputs()` channels.
    pub residual: Option<&'a [f32]>,
    pub relu: bool,
    pub output_pixels: Pixels,
}

impl Gemm<'_> {
    /// Runs the GEMM into `output`, splitting the work over `threads` tasks' worth of threads.
    pub fn run(&self, isa: Isa, threads: usize, output: &mut [f32]) {
        let (k, n) = (self.weights.inputs, self.weights.outputs);
        // These bounds make every pointer the kernels form stay inside its slice.
        assert!(
            self.input.len() >= self.input_pixels.extent(self.rows) * k,
            "GEMM input too short"
        );
        assert!(
            output.len() >= self.output_pixels.extent(self.rows) * n,
            "GEMM output too short"
        );
        if let Some(residual) = self.residual {
            assert!(residual.len() >= self.rows * n, "GEMM residual too short");
        }
        if self.rows == 0 || n == 0 {
            return;
        }
        let tiles = self.rows.div_ceil(TILE_ROWS);
        let panels = n.div_ceil(PANEL);
        // Few rows (late stages, small batches): split the output channels instead.
        let target = if threads <= 1 { 1 } else { threads * 4 };
        let panel_parts = (target / tiles).clamp(1, panels);
        let row_parts = target.div_ceil(panel_parts).min(tiles);
        let block_tiles = (ROW_BLOCK_BYTES / (TILE_ROWS * k.max(1) * 4)).max(1);
        let out = SendPtr(output.as_mut_ptr());
        for_each_task(threads, row_parts * panel_parts, |task| {
            let tile_range = chunk(tiles, row_parts, task / panel_parts);
            let panel_range = chunk(panels, panel_parts, task % panel_parts);
            let mut block = tile_range.start;
            while block < tile_range.end {
                let block_end = (block + block_tiles).min(tile_range.end);
                for panel in panel_range.clone() {
                    for tile in block..block_end {
                        self.tile(isa, tile, panel, out);
                    }
                }
                block = block_end;
            }
        });
    }

    fn tile(&self, isa: Isa, tile: usize, panel: usize, out: SendPtr) {
        let (k, n) = (self.weights.inputs, self.weights.outputs);
        let first = tile * TILE_ROWS;
        let rows = TILE_ROWS.min(self.rows - first);
        let cols = PANEL.min(n - panel * PANEL);
        let rows_of = |f: &dyn Fn(usize) -> usize| -> [usize; TILE_ROWS] {
            std::array::from_fn(|r| f(first + r.min(rows - 1)))
        };
        let tile = Tile {
            a: rows_of(&|p| self.input_pixels.index(p) * k),
            c: rows_of(&|p| self.output_pixels.index(p) * n),
            residual: rows_of(&|p| p * n),
            rows,
            cols,
            panel_offset: panel * PANEL,
        };
        let weights = &self.weights.panels[panel * k * PANEL..(panel + 1) * k * PANEL];
        let bias = &self.weights.bias[panel * PANEL..(panel + 1) * PANEL];
        match isa {
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2Fma => {
                // SAFETY: `run` checked that every input row, output row and residual row of
                // this tile lies inside its slice, `Isa::Avx2Fma` is only used after run-time
                // detection, and tasks write disjoint (row, panel) tiles of the output.
                unsafe { avx2::tile(self, &tile, weights, bias, out) }
            }
            _ => scalar_tile(self, &tile, weights, bias, out),
        }
    }
}

/// Element offsets of one register tile's rows (rows past `rows` repeat the last row, so the
/// kernels can always read TILE_ROWS rows and simply not store the extra ones).
struct Tile {
    a: [usize; TILE_ROWS],
    c: [usize; TILE_ROWS],
    residual: [usize; TILE_ROWS],
    rows: usize,
    cols: usize,
    panel_offset: usize,
}

fn scalar_tile(gemm: &Gemm<'_>, tile: &Tile, weights: &[f32], bias: &[f32], out: SendPtr) {
    let k = gemm.weights.inputs;
    for r in 0..tile.rows {
        let a = &gemm.input[tile.a[r]..tile.a[r] + k];
        let mut acc = [0.0f32; PANEL];
        for (i, &x) in a.iter().enumerate() {
            let w = &weights[i * PANEL..(i + 1) * PANEL];
            for (acc, &w) in acc.iter_mut().zip(w) {
                *acc += x * w;
            }
        }
        for j in 0..tile.cols {
            let mut v = acc[j] + bias[j];
            if let Some(residual) = gemm.residual {
                v += residual[tile.residual[r] + tile.panel_offset + j];
            }
            if gemm.relu {
                v = v.max(0.0);
            }
            // SAFETY: `run` checked the output row lies in the output slice; this task owns
            // this (row, panel) tile.
            unsafe { *out.0.add(tile.c[r] + tile.panel_offset + j) = v };
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    use super::{Gemm, PANEL, SendPtr, TILE_ROWS, Tile};

    /// # Safety
    /// The CPU supports AVX2 and FMA; every row offset in `tile` plus `k` (input) or the panel
    /// (output, residual) lies inside its buffer; `weights` holds `k × PANEL` values.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn tile(gemm: &Gemm<'_>, tile: &Tile, weights: &[f32], bias: &[f32], out: SendPtr) {
        let k = gemm.weights.inputs;
        let a: [*const f32; TILE_ROWS] = std::array::from_fn(|r| gemm.input[tile.a[r]..].as_ptr());
        let w = weights.as_ptr();
        let mut lo = [_mm256_setzero_ps(); TILE_ROWS];
        let mut hi = [_mm256_setzero_ps(); TILE_ROWS];
        for i in 0..k {
            // SAFETY: i < k and `weights` holds k panels rows of PANEL values.
            let (w0, w1) = unsafe {
                (
                    _mm256_loadu_ps(w.add(i * PANEL)),
                    _mm256_loadu_ps(w.add(i * PANEL + 8)),
                )
            };
            for r in 0..TILE_ROWS {
                // SAFETY: each row pointer has k readable values (checked in `run`).
                let x = unsafe { _mm256_broadcast_ss(&*a[r].add(i)) };
                lo[r] = _mm256_fmadd_ps(x, w0, lo[r]);
                hi[r] = _mm256_fmadd_ps(x, w1, hi[r]);
            }
        }
        // SAFETY: `bias` holds PANEL values.
        let (b0, b1) = unsafe {
            (
                _mm256_loadu_ps(bias.as_ptr()),
                _mm256_loadu_ps(bias.as_ptr().add(8)),
            )
        };
        let lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
        let cols = _mm256_set1_epi32(tile.cols as i32);
        let mask0 = _mm256_cmpgt_epi32(cols, lanes);
        let mask1 = _mm256_cmpgt_epi32(cols, _mm256_add_epi32(lanes, _mm256_set1_epi32(8)));
        let full = tile.cols == PANEL;
        let zero = _mm256_setzero_ps();
        for r in 0..tile.rows {
            let mut v0 = _mm256_add_ps(lo[r], b0);
            let mut v1 = _mm256_add_ps(hi[r], b1);
            if let Some(residual) = gemm.residual {
                let res = residual[tile.residual[r] + tile.panel_offset..].as_ptr();
                // SAFETY: the residual row has `cols` values from the panel's offset (checked
                // in `run`); masked loads touch no others.
                unsafe {
                    v0 = _mm256_add_ps(v0, _mm256_maskload_ps(res, mask0));
                    v1 = _mm256_add_ps(v1, _mm256_maskload_ps(res.add(8), mask1));
                }
            }
            if gemm.relu {
                v0 = _mm256_max_ps(v0, zero);
                v1 = _mm256_max_ps(v1, zero);
            }
            // SAFETY: the output row has `cols` values from the panel's offset, this task owns
            // them, and masked stores write no others.
            unsafe {
                let dst = out.0.add(tile.c[r] + tile.panel_offset);
                if full {
                    _mm256_storeu_ps(dst, v0);
                    _mm256_storeu_ps(dst.add(8), v1);
                } else {
                    _mm256_maskstore_ps(dst, mask0, v0);
                    _mm256_maskstore_ps(dst.add(8), mask1, v1);
                }
            }
        }
    }
}
