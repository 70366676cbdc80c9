//! 1×1 convolutions and linear layers as a GEMM over pixels: `out[p][j] = Σ_k in[p][k]·w[j][k] +
//! bias[j]`, then optionally `+ residual[p][j]` and ReLU, all applied while the tile is in
//! registers. Weights are packed once at load into panels of 16 output channels.

use super::parallel::{chunk, for_each_task};
use std::ops::Range;

use super::aligned::AlignedBuffer;
use super::{Isa, Pixels, SendPtr, holds};

/// Output channels per packed panel: two AVX registers.
pub const PANEL: usize = 16;
/// Pixels per register tile: 6 × 2 accumulators + 2 weight registers + 1 broadcast fit the 16
/// AVX registers.
pub const TILE_ROWS: usize = 6;
/// Input bytes a task keeps hot across panels (within L2 with the panel beside it).
const ROW_BLOCK_BYTES: usize = 96 * 1024;
/// Layers whose packed weights fit in this much of L1 run tile by tile over all panels.
const L1_WEIGHT_BYTES: usize = 16 * 1024;
/// Inputs per pass over a panel: KC × 16 weights (16 KiB) stay in L1.
const KC: usize = 256;

/// A 1×1 convolution or linear layer, BN folded, packed for the kernels.
#[derive(Clone, Debug)]
pub struct PackedLinear {
    inputs: usize,
    outputs: usize,
    /// `[panel][k][PANEL]`, output channels past `outputs` zero.
    panels: AlignedBuffer,
    /// Padded to a whole number of panels.
    bias: Vec<f32>,
}

impl PackedLinear {
    /// `weight` is `[outputs][inputs]` (PyTorch's layout), `bias` has `outputs` entries.
    pub fn new(weight: &[f32], bias: &[f32], inputs: usize, outputs: usize) -> Self {
        assert_eq!(weight.len(), inputs * outputs, "weight shape");
        assert_eq!(bias.len(), outputs, "bias shape");
        let panels = outputs.div_ceil(PANEL);
        let mut packed = AlignedBuffer::zeroed(panels * inputs * PANEL);
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
        let isa = Isa::supported(isa);
        let (k, n) = (self.weights.inputs, self.weights.outputs);
        // These bounds make every pointer the kernels form stay inside its slice.
        let input = self.input_pixels.extent(self.rows);
        let output_extent = self.output_pixels.extent(self.rows);
        assert!(
            input.is_some_and(|rows| holds(self.input.len(), &[rows, k])),
            "GEMM input too short"
        );
        assert!(
            output_extent.is_some_and(|rows| holds(output.len(), &[rows, n])),
            "GEMM output too short"
        );
        if let Some(residual) = self.residual {
            assert!(
                holds(residual.len(), &[self.rows, n]),
                "GEMM residual too short"
            );
        }
        if self.rows == 0 || n == 0 {
            return;
        }
        let tiles = self.rows.div_ceil(TILE_ROWS);
        let panels = n.div_ceil(PANEL);
        // Split the larger operand, so that each thread streams only its share of it: pixels
        // in early stages, output channels (weights) when there are fewer pixels than outputs.
        let target = if threads <= 1 {
            1
        } else {
            threads.saturating_mul(4)
        };
        let (row_parts, panel_parts) = if self.rows < n {
            (1, target.min(panels))
        } else {
            (target.min(tiles), 1)
        };
        // A K-block of a panel (KC × 16 floats) stays in L1 while the task's rows stream by; a
        // block of rows stays in L2 across the panels.
        let k_blocks = k.div_ceil(KC).max(1);
        let block_tiles = (ROW_BLOCK_BYTES / (TILE_ROWS * k.clamp(1, KC) * 4)).max(1);
        let weights_in_l1 = k * panels * PANEL * 4 <= L1_WEIGHT_BYTES;
        let out = SendPtr(output.as_mut_ptr());
        for_each_task(threads, row_parts * panel_parts, |task| {
            let tile_range = chunk(tiles, row_parts, task / panel_parts);
            let panel_range = chunk(panels, panel_parts, task % panel_parts);
            let mut block = tile_range.start;
            while block < tile_range.end {
                let block_end = (block + block_tiles).min(tile_range.end);
                for kb in 0..k_blocks {
                    let pass = Pass {
                        ks: chunk(k, k_blocks, kb),
                        first: kb == 0,
                        last: kb + 1 == k_blocks,
                    };
                    // Small layers: each tile's input rows are read once, for every panel,
                    // while in L1. Others: a panel's K-block stays in L1 across the tiles.
                    let order = Order {
                        tiles: block..block_end,
                        panels: panel_range.clone(),
                        tile_major: weights_in_l1,
                    };
                    self.tiles(isa, &order, &pass, out);
                }
                block = block_end;
            }
        });
    }

    fn tiles(&self, isa: Isa, order: &Order, pass: &Pass, out: SendPtr) {
        match isa {
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2Fma => {
                // SAFETY: `run` checked that every input row, output row and residual row lies
                // inside its slice, `Isa::Avx2Fma` is only used after run-time detection, and
                // tasks write disjoint (rows, panels) parts of the output.
                unsafe { avx2::tiles(self, order, pass, out) }
            }
            _ => order.each(self, |rows, panel| {
                scalar_tile(self, rows, panel, pass, out)
            }),
        }
    }

    /// Element offsets of the rows of register tile `tile`. Rows past the end repeat the last
    /// row: the kernels compute them and store nothing.
    #[inline(always)]
    fn rows_of(&self, tile: usize) -> TileRows {
        let (k, n) = (self.weights.inputs, self.weights.outputs);
        let first = tile * TILE_ROWS;
        let rows = TILE_ROWS.min(self.rows - first);
        TileRows {
            a: self
                .input_pixels
                .run::<TILE_ROWS>(first, rows)
                .map(|p| p * k),
            c: self
                .output_pixels
                .run::<TILE_ROWS>(first, rows)
                .map(|p| p * n),
            residual: Pixels::Dense.run::<TILE_ROWS>(first, rows).map(|p| p * n),
            rows,
        }
    }
}

/// Which part of K a pass over the tiles covers: the first pass starts from zero instead of
/// the partial sums stored in the output, the last one applies the epilogue.
struct Pass {
    ks: Range<usize>,
    first: bool,
    last: bool,
}

/// Which register tiles and panels a task computes, and in which order.
struct Order {
    tiles: Range<usize>,
    panels: Range<usize>,
    /// Every panel of a tile before the next tile (the tile's inputs stay in L1), or every
    /// tile of a panel before the next panel (the panel's weights stay in L1).
    tile_major: bool,
}

impl Order {
    /// Calls `f(rows, panel)` for every (tile, panel), computing each tile's rows once in
    /// tile-major order.
    #[inline(always)]
    fn each(&self, gemm: &Gemm<'_>, mut f: impl FnMut(&TileRows, usize)) {
        if self.tile_major {
            for tile in self.tiles.clone() {
                let rows = gemm.rows_of(tile);
                self.panels.clone().for_each(|panel| f(&rows, panel));
            }
        } else {
            for panel in self.panels.clone() {
                self.tiles
                    .clone()
                    .for_each(|tile| f(&gemm.rows_of(tile), panel));
            }
        }
    }
}

struct TileRows {
    a: [usize; TILE_ROWS],
    c: [usize; TILE_ROWS],
    residual: [usize; TILE_ROWS],
    rows: usize,
}

fn scalar_tile(gemm: &Gemm<'_>, rows: &TileRows, panel: usize, pass: &Pass, out: SendPtr) {
    let (k, n) = (gemm.weights.inputs, gemm.weights.outputs);
    let weights = &gemm.weights.panels[panel * k * PANEL..(panel + 1) * k * PANEL];
    let bias = &gemm.weights.bias[panel * PANEL..(panel + 1) * PANEL];
    let (offset, cols) = (panel * PANEL, PANEL.min(n - panel * PANEL));
    for r in 0..rows.rows {
        let mut acc = [0.0f32; PANEL];
        for i in pass.ks.clone() {
            let x = gemm.input[rows.a[r] + i];
            for (acc, &w) in acc.iter_mut().zip(&weights[i * PANEL..(i + 1) * PANEL]) {
                *acc += x * w;
            }
        }
        for (j, &acc) in acc.iter().enumerate().take(cols) {
            // SAFETY: `run` checked the output row lies in the output slice; this task owns
            // this (row, panel) part.
            let dst = unsafe { out.0.add(rows.c[r] + offset + j) };
            // SAFETY: as above; earlier passes wrote this element.
            let mut v = if pass.first {
                acc
            } else {
                acc + unsafe { *dst }
            };
            if pass.last {
                v += bias[j];
                if let Some(residual) = gemm.residual {
                    v += residual[rows.residual[r] + offset + j];
                }
                if gemm.relu {
                    v = v.max(0.0);
                }
            }
            // SAFETY: as above.
            unsafe { *dst = v };
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    use super::{Gemm, Order, PANEL, Pass, SendPtr, TILE_ROWS, TileRows};

    /// The task's tiles and panels in `order`, over the pass's part of K.
    ///
    /// # Safety
    /// The CPU supports AVX2 and FMA; every row `rows_of` gives lies inside its buffer (checked
    /// in `run`); no other task writes these panels of these rows.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn tiles(gemm: &Gemm<'_>, order: &Order, pass: &Pass, out: SendPtr) {
        // SAFETY: forwarded from the caller.
        order.each(gemm, |rows, panel| unsafe {
            tile(gemm, rows, panel, pass, out)
        });
    }

    /// One register tile of one panel.
    ///
    /// # Safety
    /// As for `tiles`.
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    unsafe fn tile(gemm: &Gemm<'_>, rows: &TileRows, panel: usize, pass: &Pass, out: SendPtr) {
        let (k, n) = (gemm.weights.inputs, gemm.weights.outputs);
        let weights = gemm.weights.panels[panel * k * PANEL..(panel + 1) * k * PANEL].as_ptr();
        let bias = &gemm.weights.bias[panel * PANEL..(panel + 1) * PANEL];
        let offset = panel * PANEL;
        let cols = PANEL.min(n - offset);
        // SAFETY: `bias` holds PANEL values.
        let (b0, b1) = unsafe {
            (
                _mm256_loadu_ps(bias.as_ptr()),
                _mm256_loadu_ps(bias.as_ptr().add(8)),
            )
        };
        let lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
        let limit = _mm256_set1_epi32(cols as i32);
        let mask0 = _mm256_cmpgt_epi32(limit, lanes);
        let mask1 = _mm256_cmpgt_epi32(limit, _mm256_add_epi32(lanes, _mm256_set1_epi32(8)));
        let zero = _mm256_setzero_ps();
        {
            let a: [*const f32; TILE_ROWS] =
                std::array::from_fn(|r| gemm.input[rows.a[r]..].as_ptr());
            // SAFETY: the output rows hold `cols` values from the panel's offset (checked in
            // `run`); masked accesses touch no others.
            let c: [*mut f32; TILE_ROWS] =
                std::array::from_fn(|r| unsafe { out.0.add(rows.c[r] + offset) });
            let mut lo = [zero; TILE_ROWS];
            let mut hi = [zero; TILE_ROWS];
            if !pass.first {
                for r in 0..TILE_ROWS {
                    // SAFETY: as above; an earlier pass stored these partial sums.
                    unsafe {
                        if cols == PANEL {
                            lo[r] = _mm256_loadu_ps(c[r]);
                            hi[r] = _mm256_loadu_ps(c[r].add(8));
                        } else {
                            lo[r] = _mm256_maskload_ps(c[r], mask0);
                            hi[r] = _mm256_maskload_ps(c[r].wrapping_add(8), mask1);
                        }
                    }
                }
            }
            for i in pass.ks.clone() {
                // SAFETY: i < k and the panel holds k rows of PANEL weights.
                let (w0, w1) = unsafe {
                    (
                        _mm256_load_ps(weights.add(i * PANEL)),
                        _mm256_load_ps(weights.add(i * PANEL + 8)),
                    )
                };
                for r in 0..TILE_ROWS {
                    // SAFETY: each input row has k values (checked in `run`).
                    let x = unsafe { _mm256_broadcast_ss(&*a[r].add(i)) };
                    lo[r] = _mm256_fmadd_ps(x, w0, lo[r]);
                    hi[r] = _mm256_fmadd_ps(x, w1, hi[r]);
                }
            }
            for r in 0..rows.rows {
                let (mut v0, mut v1) = (lo[r], hi[r]);
                if pass.last {
                    v0 = _mm256_add_ps(v0, b0);
                    v1 = _mm256_add_ps(v1, b1);
                    if let Some(residual) = gemm.residual {
                        let res = residual[rows.residual[r] + offset..].as_ptr();
                        // SAFETY: the residual row has `cols` values from the panel's offset
                        // (checked in `run`); masked loads touch no others.
                        unsafe {
                            if cols == PANEL {
                                v0 = _mm256_add_ps(v0, _mm256_loadu_ps(res));
                                v1 = _mm256_add_ps(v1, _mm256_loadu_ps(res.add(8)));
                            } else {
                                v0 = _mm256_add_ps(v0, _mm256_maskload_ps(res, mask0));
                                v1 = _mm256_add_ps(
                                    v1,
                                    _mm256_maskload_ps(res.wrapping_add(8), mask1),
                                );
                            }
                        }
                    }
                    if gemm.relu {
                        v0 = _mm256_max_ps(v0, zero);
                        v1 = _mm256_max_ps(v1, zero);
                    }
                }
                // SAFETY: as for the loads of partial sums above.
                unsafe {
                    // Masked stores are slow on some CPUs: RegNet widths are multiples of 8, so
                    // a partial panel is nearly always exactly half.
                    if cols == PANEL {
                        _mm256_storeu_ps(c[r], v0);
                        _mm256_storeu_ps(c[r].add(8), v1);
                    } else if cols == PANEL / 2 {
                        _mm256_storeu_ps(c[r], v0);
                    } else {
                        _mm256_maskstore_ps(c[r], mask0, v0);
                        _mm256_maskstore_ps(c[r].wrapping_add(8), mask1, v1);
                    }
                }
            }
        }
    }
}
