//! 1×1 convolutions and linear layers as a GEMM over pixels: `out[p][j] = Σ_k in[p][k]·w[j][k] +
//! bias[j]`, then optionally `+ residual[p][j]` and ReLU, all applied while the tile is in
//! registers. Weights are packed once at load into panels of 16 output channels.

use super::parallel::{chunk, for_each_task};
use std::mem::MaybeUninit;
use std::ops::Range;

use super::aligned::AlignedBuffer;
use super::{Isa, Kernels, Pixels, SendPtr, holds, prefetch_share, relu};

/// Output channels per packed panel: two AVX registers, one AVX-512 register.
pub const PANEL: usize = 16;
/// Layers whose packed weights fit in this much of L1 run tile by tile over all panels.
const L1_WEIGHT_BYTES: usize = 16 * 1024;
/// The most register tiles any `Blocking` runs over each panel before the next.
const MAX_BLOCK_TILES: usize = 48;

/// How a GEMM's operands are blocked for the caches.
struct Blocking {
    /// Weight bytes of a pass over K: its panels' K-block stays in L1 while the rows stream by.
    pass_weights: usize,
    /// Input bytes a task keeps hot across panels (within L2 with the panel beside it).
    rows: usize,
    /// The most register tiles of rows a task runs over each panel before the next.
    tiles: usize,
}

impl Blocking {
    /// AVX2's is measured (AMD EPYC: 32 KiB L1, 512 KiB L2), against 16 KiB passes and 96 KiB
    /// of rows: with 28 KiB, K up to 448 takes one pass instead of two (the 1×1s with K of
    /// 336–888 2–4% faster, kernel bench); with 288 KiB, a 14×14 map's rows are one block, so
    /// the weights stream by once rather than three times (196 × 336 × 336 and 392 × 400 ×
    /// 400 3% faster). The other instruction sets keep what they were tuned with.
    fn of(isa: Isa) -> Blocking {
        match isa {
            Isa::Avx2Fma => Blocking {
                pass_weights: 28 * 1024,
                rows: 288 * 1024,
                tiles: MAX_BLOCK_TILES,
            },
            Isa::Scalar | Isa::Avx512 | Isa::Neon => Blocking {
                pass_weights: 16 * 1024,
                rows: 96 * 1024,
                tiles: 16,
            },
        }
    }
}

/// The register tile of an instruction set: `rows` pixels × `panels` panels.
#[derive(Clone, Copy)]
struct TileShape {
    rows: usize,
    panels: usize,
}

impl TileShape {
    /// The tile of `isa` for a GEMM of `rows` rows.
    fn of(isa: Isa, rows: usize) -> TileShape {
        match isa {
            // Six-row tiles would leave a one-row tile, whose two accumulators wait on the FMA
            // latency: four cycles a K step for a sixth of the work (a 7×7 map's 49 rows: 8 × 6
            // + 1 take 52 tile-cycles a step, 9 × 5 + 4 take 49).
            Isa::Scalar | Isa::Avx2Fma | Isa::Neon => TileShape {
                rows: if rows > 1 && rows % TILE_ROWS == 1 {
                    TILE_ROWS - 1
                } else {
                    TILE_ROWS
                },
                panels: 1,
            },
            Isa::Avx512 => TileShape {
                rows: AVX512_ROWS,
                panels: 2,
            },
        }
    }
}

/// Pixels per AVX2 (and scalar) register tile: 6 × 2 accumulators + 2 weights + 1 broadcast
/// fill the 16 AVX registers. NEON's tile has as many rows: 6 × 4 accumulators + 4 weights + 1
/// broadcast of its 32 128-bit registers.
const TILE_ROWS: usize = 6;
/// Pixels per AVX-512 register tile: 14 × 2 accumulators + 2 weights + 1 broadcast of the 32
/// registers. 14 divides every feature map of a 224×224 RegNet but the 7×7 one (49 = 3 × 14 + 7).
const AVX512_ROWS: usize = 14;

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

    /// The packed weights, every panel.
    pub(crate) fn packed_weights(&self) -> &[f32] {
        &self.panels
    }

    /// Input channels (K): the length of each input row.
    pub fn inputs(&self) -> usize {
        self.inputs
    }

    /// Panel `panel`'s weights (`[k][PANEL]`) and bias, and how many of its PANEL columns are
    /// real outputs.
    fn panel(&self, panel: usize) -> Panel<'_> {
        let k = self.inputs;
        Panel {
            weights: &self.panels[panel * k * PANEL..(panel + 1) * k * PANEL],
            bias: &self.bias[panel * PANEL..(panel + 1) * PANEL],
            columns: PANEL.min(self.outputs - panel * PANEL),
        }
    }

    /// Panel `panel`'s weights over the pass's part of K (none past the last panel).
    fn pass_weights(&self, panel: usize, pass: &Pass) -> &[f32] {
        if panel >= self.outputs.div_ceil(PANEL) {
            return &[];
        }
        let start = panel * self.inputs * PANEL;
        &self.panels[start + pass.ks.start * PANEL..start + pass.ks.end * PANEL]
    }

    /// Output channels (N), without the zero padding to whole panels.
    pub fn outputs(&self) -> usize {
        self.outputs
    }
}

/// One panel of a `PackedLinear`.
struct Panel<'a> {
    weights: &'a [f32],
    bias: &'a [f32],
    columns: usize,
}

/// One GEMM: `rows` pixels of `weights.inputs()` channels in, `weights.outputs()` out.
pub struct Gemm<'a> {
    /// The packed layer: its inputs are K, its outputs N.
    pub weights: &'a PackedLinear,
    /// Rows (M) to compute: one per output pixel (batch × height × width), or one per image for
    /// a linear layer.
    pub rows: usize,
    /// Rows of `weights.inputs()` channels (NHWC), placed as `input_pixels` says.
    pub input: &'a [f32],
    /// Where row p is read from in `input` (dense, or strided for a strided 1×1 projection).
    pub input_pixels: Pixels,
    /// Added before the ReLU; dense rows of `weights.outputs()` channels.
    pub residual: Option<&'a [f32]>,
    /// Whether to apply ReLU to each output (after bias and residual).
    pub relu: bool,
    /// Where row p is written in the output: dense, or padded to feed a 3×3 convolution
    /// (whose zero border the GEMM leaves untouched).
    pub output_pixels: Pixels,
}

impl Gemm<'_> {
    /// Runs the GEMM into `output`, splitting the work over `threads` tasks' worth of threads.
    pub fn run(&self, kernels: Kernels, threads: usize, output: &mut [f32]) {
        let isa = kernels.isa;
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
        let shape = TileShape::of(isa, self.rows);
        let tiles = self.rows.div_ceil(shape.rows);
        let panels = n.div_ceil(PANEL);
        // Split the larger operand, so that each thread streams only its share of it: pixels
        // in early stages, output channels (weights) when there are fewer pixels than outputs.
        // Rows split into one task per tile when there are few (14 tiles in a 14×14 map: an
        // uneven split of them costs a thread an eighth of its time), else into 4 per thread.
        // Columns split into 2 tasks per thread. Tasks take equal shares of the (tile, panel)
        // grid, not whole rows or columns of it: 21 panels (336 outputs) in 4 parts of whole
        // panels, 6 + 5 + 5 + 5, left one of two threads 11 panels to the other's 10.
        let panel_tiles = panels.div_ceil(shape.panels);
        let (grid, parts) = if threads > 1 && self.rows < n {
            (
                Grid::ByPanel { tiles },
                threads.saturating_mul(2).min(panel_tiles),
            )
        } else {
            let parts = match threads {
                0 | 1 => 1,
                _ if tiles <= threads.saturating_mul(8) => tiles,
                _ => threads.saturating_mul(4),
            };
            (Grid::ByTile { panel_tiles }, parts)
        };
        let units = tiles * panel_tiles;
        // A K-block of the tile's panels stays in L1 while the task's rows stream by; a block
        // of rows stays in L2 across the panels.
        let blocking = Blocking::of(isa);
        let kc = blocking.pass_weights / (shape.panels * PANEL * 4);
        let k_blocks = k.div_ceil(kc).max(1);
        let block_tiles =
            (blocking.rows / (shape.rows * k.clamp(1, kc) * 4)).clamp(1, blocking.tiles);
        let weights_in_l1 = k * panels * PANEL * 4 <= L1_WEIGHT_BYTES;
        let out = SendPtr(output.as_mut_ptr());
        for_each_task(threads, parts, |task| {
            for (tile_range, panel_tile_range) in grid.rectangles(chunk(units, parts, task)) {
                let column_range = panel_tile_range.start * shape.panels
                    ..(panel_tile_range.end * shape.panels).min(panels);
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
                            panels: column_range.clone(),
                            shape,
                            tile_major: weights_in_l1,
                        };
                        self.tiles(isa, &order, &pass, out);
                    }
                    block = block_end;
                }
            }
        });
    }

    fn tiles(&self, isa: Isa, order: &Order, pass: &Pass, out: SendPtr) {
        match isa {
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2Fma => {
                // SAFETY: `run` checked that every input row, output row and residual row lies
                // inside its slice, a kernel table holds `Isa::Avx2Fma` only after run-time
                // detection, and tasks write disjoint (rows, panels) parts of the output.
                unsafe { avx2::tiles(self, order, pass, out) }
            }
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => {
                // SAFETY: as above, with AVX-512F detected before `Isa::Avx512` was chosen.
                unsafe { avx512::tiles(self, order, pass, out) }
            }
            #[cfg(target_arch = "aarch64")]
            Isa::Neon => {
                // SAFETY: as above; NEON is part of every aarch64 CPU.
                unsafe { neon::tiles(self, order, pass, out) }
            }
            _ => order.each::<TILE_ROWS, _>(
                self,
                pass,
                |rows| rows,
                |rows, panel| scalar_tile(self, rows, panel, pass, out),
            ),
        }
    }

    /// Element offsets of the rows of register tile `tile` of `height` ≤ `N` rows. Entries
    /// past the tile's rows repeat its last row.
    #[inline(always)]
    fn rows_of<const N: usize>(&self, tile: usize, height: usize) -> TileRows<N> {
        let (k, n) = (self.weights.inputs, self.weights.outputs);
        let first = tile * height;
        let rows = height.min(self.rows - first);
        TileRows {
            a: self.input_pixels.run::<N>(first, rows).map(|p| p * k),
            c: self.output_pixels.run::<N>(first, rows).map(|p| p * n),
            residual: Pixels::Dense.run::<N>(first, rows).map(|p| p * n),
            rows,
        }
    }
}

/// The (register tile, panel tile) pairs of a GEMM in the order its tasks share them out: each
/// task takes a contiguous range of this order, at most three rectangles of the grid.
#[derive(Clone, Copy)]
enum Grid {
    /// Tile after tile, each over all `panel_tiles` panel tiles (tasks split the pixels).
    ByTile { panel_tiles: usize },
    /// Panel tile after panel tile, each over all `tiles` register tiles (tasks split the
    /// output channels).
    ByPanel { tiles: usize },
}

impl Grid {
    /// The rectangles, as (register tiles, panel tiles), that the pairs `range` cover: the
    /// rest of the first line, the whole lines, the start of the last.
    fn rectangles(self, range: Range<usize>) -> impl Iterator<Item = (Range<usize>, Range<usize>)> {
        let line = match self {
            Grid::ByTile { panel_tiles } => panel_tiles,
            Grid::ByPanel { tiles } => tiles,
        };
        let (start_line, start_at) = (range.start / line, range.start % line);
        let (end_line, end_at) = (range.end / line, range.end % line);
        // Empty pieces (a range starting or ending at a line's start) are dropped below.
        let pieces = if start_line == end_line {
            [
                (start_line..start_line + 1, start_at..end_at),
                (0..0, 0..0),
                (0..0, 0..0),
            ]
        } else {
            let whole_from = start_line + usize::from(start_at > 0);
            [
                (start_line..whole_from, start_at..line),
                (whole_from..end_line, 0..line),
                (end_line..end_line + 1, 0..end_at),
            ]
        };
        pieces
            .into_iter()
            .filter(|(lines, within)| !lines.is_empty() && !within.is_empty())
            .map(move |(lines, within)| match self {
                Grid::ByTile { .. } => (lines, within),
                Grid::ByPanel { .. } => (within, lines),
            })
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
    /// The register tile: the kernel is called with every `shape.panels`-th panel and does the
    /// ones up to the next (or the end of `panels`), over `shape.rows` ≤ its `N` rows.
    shape: TileShape,
    /// Every panel of a tile before the next tile (the tile's inputs stay in L1), or every
    /// tile of a panel before the next panel (the panel's weights stay in L1).
    tile_major: bool,
}

impl Order {
    /// Calls `f(rows, first_panel)` for every tile and every `shape.panels`-th panel, with
    /// each tile's rows computed once and turned by `prepare` into what the kernel takes.
    #[inline(always)]
    fn each<const N: usize, T>(
        &self,
        gemm: &Gemm<'_>,
        pass: &Pass,
        prepare: impl Fn(TileRows<N>) -> T,
        mut f: impl FnMut(&T, usize),
    ) {
        let panels = self.panels.clone().step_by(self.shape.panels);
        if self.tile_major {
            for tile in self.tiles.clone() {
                let rows = prepare(gemm.rows_of::<N>(tile, self.shape.rows));
                panels.clone().for_each(|panel| f(&rows, panel));
            }
        } else {
            // Each tile's rows once for all the panels (computing them is a few percent of a
            // K pass with padded or strided rows); `run` makes blocks of at most
            // MAX_BLOCK_TILES tiles, so this is one chunk.
            for first in self.tiles.clone().step_by(MAX_BLOCK_TILES) {
                let count = (self.tiles.end - first).min(MAX_BLOCK_TILES);
                let mut rows = [const { MaybeUninit::<T>::uninit() }; MAX_BLOCK_TILES];
                for (t, rows) in rows.iter_mut().take(count).enumerate() {
                    rows.write(prepare(gemm.rows_of::<N>(first + t, self.shape.rows)));
                }
                for panel in panels.clone() {
                    // The next panels' K-block comes from memory (a late layer's weights are
                    // read once per pass): each tile prefetches its share of it.
                    for (t, rows) in rows[..count].iter().enumerate() {
                        for next in panel + self.shape.panels..panel + 2 * self.shape.panels {
                            prefetch_share(gemm.weights.pass_weights(next, pass), count, t);
                        }
                        // SAFETY: the first `count` entries were written above.
                        f(unsafe { rows.assume_init_ref() }, panel);
                    }
                }
            }
        }
    }
}

/// Element offsets of a register tile's rows: the kernels compute `rows` of them (or all `N`,
/// storing `rows`).
struct TileRows<const N: usize> {
    a: [usize; N],
    c: [usize; N],
    residual: [usize; N],
    rows: usize,
}

fn scalar_tile(
    gemm: &Gemm<'_>,
    rows: &TileRows<TILE_ROWS>,
    panel: usize,
    pass: &Pass,
    out: SendPtr,
) {
    let Panel {
        weights,
        bias,
        columns: cols,
    } = gemm.weights.panel(panel);
    let offset = panel * PANEL;
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
                    v = relu(v);
                }
            }
            // SAFETY: as above.
            unsafe { *dst = v };
        }
    }
}

/// Calls the kernel instance `$tile::<R, FIXED…>` for a tile's exact row count `R` (1 to
/// `TILE_ROWS`), with the arguments given.
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
macro_rules! exact_rows {
    ($tile:ident[$($fixed:tt),*], $rows:expr, $($argument:expr),*) => {
        match $rows {
            1 => $tile::<1 $(, $fixed)*>($($argument),*),
            2 => $tile::<2 $(, $fixed)*>($($argument),*),
            3 => $tile::<3 $(, $fixed)*>($($argument),*),
            4 => $tile::<4 $(, $fixed)*>($($argument),*),
            5 => $tile::<5 $(, $fixed)*>($($argument),*),
            _ => $tile::<TILE_ROWS $(, $fixed)*>($($argument),*),
        }
    };
}

/// The entry point of the `lanes8` kernel for one instruction set: `tiles`, compiled with its
/// target features. The closures must be written here, in the functions with those features: a
/// closure written in generic code has none, and the kernel inlined into it ran 70× slower
/// (measured).
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
macro_rules! lanes8_entry {
    ($features:literal, $vector:ty) => {
        use super::super::vector::Vector;
        use super::lanes8::{PanelColumns, Rows, tile};
        use super::{Gemm, Order, Pass, SendPtr, TILE_ROWS};

        /// The task's tiles and panels in `order`, over the pass's part of K.
        ///
        /// # Safety
        /// The CPU has the instruction set; every row `rows_of` gives lies inside its buffer
        /// (checked in `run`); no other task writes these panels of these rows.
        #[target_feature(enable = $features)]
        pub unsafe fn tiles(gemm: &Gemm<'_>, order: &Order, pass: &Pass, out: SendPtr) {
            // One kernel instance per epilogue, its rows as pointers made once per tile:
            // deciding the epilogue, bounds and masks again at every tile and panel cost the
            // 1×1s with K of 32–64, whose K loop is short, 8–12% of their time (kernel bench,
            // AMD EPYC, AVX2).
            // SAFETY: forwarded from the caller.
            unsafe {
                match (gemm.residual.is_some(), gemm.relu) {
                    (false, false) => tiles_with::<false, false>(gemm, order, pass, out),
                    (false, true) => tiles_with::<false, true>(gemm, order, pass, out),
                    (true, false) => tiles_with::<true, false>(gemm, order, pass, out),
                    (true, true) => tiles_with::<true, true>(gemm, order, pass, out),
                }
            }
        }

        /// `tiles` with its epilogue fixed: whether a residual is added, whether ReLU follows.
        ///
        /// # Safety
        /// As for `tiles`, and `RESIDUAL` only if `gemm` has a residual.
        #[target_feature(enable = $features)]
        unsafe fn tiles_with<const RESIDUAL: bool, const RELU: bool>(
            gemm: &Gemm<'_>,
            order: &Order,
            pass: &Pass,
            out: SendPtr,
        ) {
            // A partial tile (a 7×7 map's 49 rows end with one) computes only its rows: all six
            // would cost the 7×7 layers a tenth of their time.
            order.each::<TILE_ROWS, _>(
                gemm,
                pass,
                // SAFETY (both closures): forwarded from the caller; `run` checked the rows,
                // and the panel's weights and bias, lie inside their buffers.
                |rows| unsafe { Rows::of::<RESIDUAL>(gemm, rows, pass, &out) },
                |rows, panel| unsafe {
                    let columns = PanelColumns::of(gemm, pass, panel);
                    if columns.count > <$vector as Vector>::LANES {
                        exact_rows!(tile[$vector, 2, RESIDUAL, RELU], rows.count, rows, &columns, pass)
                    } else {
                        exact_rows!(tile[$vector, 1, RESIDUAL, RELU], rows.count, rows, &columns, pass)
                    }
                },
            );
        }
    };
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    lanes8_entry!("avx2,fma", std::arch::x86_64::__m256);
}

#[cfg(target_arch = "aarch64")]
mod neon {
    lanes8_entry!("neon", super::super::vector::F32x8);
}

/// The 1×1 kernel of the 8-lane instruction sets (AVX2, and NEON's registers in pairs), written
/// once over `Partial` vectors and compiled into each one's `lanes8_entry`: a panel is two
/// vectors, a register tile `TILE_ROWS` rows of a panel (12 accumulators, 2 weights and a
/// broadcast: AVX2's 16 registers; 24 of NEON's 32).
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
mod lanes8 {
    use super::super::vector::Partial;
    use super::{Gemm, PANEL, Panel, Pass, SendPtr, TILE_ROWS, TileRows};

    /// A register tile's rows as the kernel addresses them.
    pub(super) struct Rows {
        /// Each input row at the pass's first k.
        a: [*const f32; TILE_ROWS],
        /// Each output row at channel 0.
        c: [*mut f32; TILE_ROWS],
        /// Each residual row at channel 0 (null without a residual).
        residual: [*const f32; TILE_ROWS],
        /// How many of the rows are the tile's (the rest repeat its last).
        pub(super) count: usize,
    }

    impl Rows {
        /// The rows at `rows`' offsets; their residual rows only if `RESIDUAL`.
        ///
        /// # Safety
        /// `run` checked the rows lie inside their buffers.
        #[inline(always)]
        pub(super) unsafe fn of<const RESIDUAL: bool>(
            gemm: &Gemm<'_>,
            rows: TileRows<TILE_ROWS>,
            pass: &Pass,
            out: &SendPtr,
        ) -> Rows {
            // SAFETY: `run` checked every row the tile's offsets name lies inside its buffer.
            unsafe {
                Rows {
                    a: rows.a.map(|a| gemm.input.as_ptr().add(a + pass.ks.start)),
                    c: rows.c.map(|c| out.0.add(c)),
                    residual: match gemm.residual {
                        Some(residual) if RESIDUAL => {
                            rows.residual.map(|p| residual.as_ptr().add(p))
                        }
                        _ => [std::ptr::null(); TILE_ROWS],
                    },
                    count: rows.rows,
                }
            }
        }
    }

    /// One panel's part of a pass.
    pub(super) struct PanelColumns {
        /// `[k][PANEL]` from the pass's first k.
        weights: *const f32,
        /// PANEL biases.
        bias: *const f32,
        /// The panel's first output channel.
        offset: usize,
        /// How many of its PANEL columns are real outputs.
        pub(super) count: usize,
    }

    impl PanelColumns {
        /// Panel `panel` of `gemm`'s weights over the pass.
        #[inline(always)]
        pub(super) fn of(gemm: &Gemm<'_>, pass: &Pass, panel: usize) -> PanelColumns {
            let Panel { bias, columns, .. } = gemm.weights.panel(panel);
            PanelColumns {
                weights: gemm.weights.pass_weights(panel, pass).as_ptr(),
                bias: bias.as_ptr(),
                offset: panel * PANEL,
                count: columns,
            }
        }
    }

    /// `R` rows (exactly the tile's) of one panel, `H` vectors of it: 1 when its real columns
    /// fit one vector (the last panel of widths like 104 and 120), whose 6 accumulators then
    /// take 4 cycles a K step (the FMA latency) instead of the 6 cycles of a whole panel.
    ///
    /// # Safety
    /// `V`'s instruction set is enabled (the caller is a `lanes8_entry`) and `H` vectors hold
    /// the panel's columns; `rows` and `columns` lie inside their buffers;
    /// no other task writes these panels of these rows.
    #[inline(always)]
    // Constant-bound indexing keeps `acc` in registers (see the direct 3×3's `tile`).
    #[allow(clippy::needless_range_loop)]
    pub(super) unsafe fn tile<
        const R: usize,
        V: Partial,
        const H: usize,
        const RESIDUAL: bool,
        const RELU: bool,
    >(
        rows: &Rows,
        columns: &PanelColumns,
        pass: &Pass,
    ) {
        let PanelColumns {
            weights,
            bias,
            offset,
            count: cols,
        } = *columns;
        // SAFETY (whole body): the instruction set is the entry point's; the output and
        // residual rows hold the panel's `cols` values, the weights the pass's K-block of the
        // panel and the input rows that of K (checked in `run`).
        unsafe {
            let c: [*mut f32; R] = std::array::from_fn(|r| rows.c[r].add(offset));
            let mut acc = [[V::zero(); H]; R];
            if !pass.first {
                for r in 0..R {
                    acc[r] = load::<V, H>(c[r], cols);
                }
            }
            for i in 0..pass.ks.len() {
                let w: [V; H] =
                    std::array::from_fn(|h| V::load(weights.add(i * PANEL + h * V::LANES)));
                for r in 0..R {
                    let x = V::splat(rows.a[r].add(i));
                    for h in 0..H {
                        acc[r][h] = V::mul_add(x, w[h], acc[r][h]);
                    }
                }
            }
            if pass.last {
                let bias: [V; H] = std::array::from_fn(|h| V::load(bias.add(h * V::LANES)));
                for r in 0..R {
                    let residual = if RESIDUAL {
                        load::<V, H>(rows.residual[r].add(offset), cols)
                    } else {
                        [V::zero(); H]
                    };
                    for h in 0..H {
                        let mut value = V::add(acc[r][h], bias[h]);
                        if RESIDUAL {
                            value = V::add(value, residual[h]);
                        }
                        acc[r][h] = if RELU { value.relu() } else { value };
                    }
                }
            }
            for r in 0..R {
                store(c[r], cols, acc[r]);
            }
        }
    }

    /// How many of a panel's first `cols` columns fall in its vector `h`.
    #[inline(always)]
    fn lanes_of<V: Partial>(cols: usize, h: usize) -> usize {
        cols.saturating_sub(h * V::LANES).min(V::LANES)
    }

    /// A panel's first `cols` values at `p` (zeros past them).
    ///
    /// # Safety
    /// `V`'s instruction set is enabled; `p` holds `cols` values.
    #[inline(always)]
    unsafe fn load<V: Partial, const H: usize>(p: *const f32, cols: usize) -> [V; H] {
        // SAFETY: forwarded from the caller; partial loads touch no values past `cols`.
        unsafe {
            if cols == H * V::LANES {
                std::array::from_fn(|h| V::load(p.add(h * V::LANES)))
            } else {
                std::array::from_fn(|h| {
                    V::load_first(p.wrapping_add(h * V::LANES), lanes_of::<V>(cols, h))
                })
            }
        }
    }

    /// Stores a panel's first `cols` values at `p`.
    ///
    /// # Safety
    /// `V`'s instruction set is enabled; `p` has room for `cols` values.
    #[inline(always)]
    unsafe fn store<V: Partial, const H: usize>(p: *mut f32, cols: usize, values: [V; H]) {
        // SAFETY: forwarded from the caller; partial stores touch no values past `cols`.
        unsafe {
            // Masked stores are slow on some CPUs: RegNet widths are multiples of 8, so a
            // partial panel is nearly always exactly one whole vector (`H` = 1).
            if cols == H * V::LANES {
                for (h, value) in values.into_iter().enumerate() {
                    value.store(p.add(h * V::LANES));
                }
            } else {
                for (h, value) in values.into_iter().enumerate() {
                    value.store_first(p.wrapping_add(h * V::LANES), lanes_of::<V>(cols, h));
                }
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use std::arch::x86_64::*;

    use super::super::leave_avx512;
    use super::super::vector::Vector;
    use super::{AVX512_ROWS, Gemm, Order, PANEL, Panel, Pass, SendPtr, TileRows};

    /// Weight rows (cache lines) fetched ahead of the FMAs.
    const PREFETCH_ROWS: usize = 16;

    /// The task's tiles and pairs of panels in `order`, over the pass's part of K.
    ///
    /// # Safety
    /// The CPU supports AVX-512F; every row `rows_of` gives lies inside its buffer (checked in
    /// `run`); no other task writes these panels of these rows.
    #[target_feature(enable = "avx512f")]
    pub unsafe fn tiles(gemm: &Gemm<'_>, order: &Order, pass: &Pass, out: SendPtr) {
        order.each::<AVX512_ROWS, _>(
            gemm,
            pass,
            |rows| rows,
            |rows, panel| {
                // SAFETY: forwarded from the caller; the second panel is inside the order's.
                unsafe {
                    if order.panels.end - panel >= 2 {
                        dispatch::<2>(gemm, rows, panel, pass, out)
                    } else {
                        dispatch::<1>(gemm, rows, panel, pass, out)
                    }
                }
            },
        );
        leave_avx512();
    }

    /// Runs the kernel instance for the tile's number of rows, so that a partial tile (the
    /// 7×7 maps' last one) computes only its rows.
    ///
    /// # Safety
    /// As for `tiles`.
    #[target_feature(enable = "avx512f")]
    unsafe fn dispatch<const V: usize>(
        gemm: &Gemm<'_>,
        rows: &TileRows<AVX512_ROWS>,
        panel: usize,
        pass: &Pass,
        out: SendPtr,
    ) {
        // SAFETY: forwarded from the caller.
        unsafe {
            match rows.rows {
                1 => tile::<1, V>(gemm, rows, panel, pass, out),
                2 => tile::<2, V>(gemm, rows, panel, pass, out),
                3 => tile::<3, V>(gemm, rows, panel, pass, out),
                4 => tile::<4, V>(gemm, rows, panel, pass, out),
                5 => tile::<5, V>(gemm, rows, panel, pass, out),
                6 => tile::<6, V>(gemm, rows, panel, pass, out),
                7 => tile::<7, V>(gemm, rows, panel, pass, out),
                8 => tile::<8, V>(gemm, rows, panel, pass, out),
                9 => tile::<9, V>(gemm, rows, panel, pass, out),
                10 => tile::<10, V>(gemm, rows, panel, pass, out),
                11 => tile::<11, V>(gemm, rows, panel, pass, out),
                12 => tile::<12, V>(gemm, rows, panel, pass, out),
                13 => tile::<13, V>(gemm, rows, panel, pass, out),
                _ => tile::<AVX512_ROWS, V>(gemm, rows, panel, pass, out),
            }
        }
    }

    /// `R` rows (exactly the tile's) × `V` panels from `panel`, one 16-wide register each.
    /// Partial panels use AVX-512's masked loads and stores, which touch only the mask's lanes.
    ///
    /// # Safety
    /// As for `tiles`, and panels `panel..panel + V` exist.
    #[target_feature(enable = "avx512f")]
    #[inline(never)]
    unsafe fn tile<const R: usize, const V: usize>(
        gemm: &Gemm<'_>,
        rows: &TileRows<AVX512_ROWS>,
        panel: usize,
        pass: &Pass,
        out: SendPtr,
    ) {
        let first_column = panel * PANEL;
        let panels: [Panel<'_>; V] = std::array::from_fn(|v| gemm.weights.panel(panel + v));
        let weights: [*const f32; V] = std::array::from_fn(|v| panels[v].weights.as_ptr());
        let masks: [__mmask16; V] =
            std::array::from_fn(|v| ((1u32 << panels[v].columns) - 1) as __mmask16);
        let a: [*const f32; R] = std::array::from_fn(|r| gemm.input[rows.a[r]..].as_ptr());
        // SAFETY: the output rows hold the panels' columns from `first_column` (checked in
        // `run`); masked accesses touch only those.
        let c: [*mut f32; R] =
            std::array::from_fn(|r| unsafe { out.0.add(rows.c[r] + first_column) });
        let mut acc = [[_mm512_setzero_ps(); V]; R];
        if !pass.first {
            for r in 0..R {
                for v in 0..V {
                    // SAFETY: as above; an earlier pass stored these partial sums.
                    acc[r][v] = unsafe { _mm512_maskz_loadu_ps(masks[v], c[r].add(v * PANEL)) };
                }
            }
        }
        for i in pass.ks.clone() {
            // SAFETY: i < k and each panel holds k rows of PANEL weights, 64-byte aligned.
            let w: [__m512; V] =
                std::array::from_fn(|v| unsafe { _mm512_load_ps(weights[v].add(i * PANEL)) });
            for &panel_weights in &weights {
                let ahead = panel_weights.wrapping_add((i + PREFETCH_ROWS) * PANEL);
                _mm_prefetch::<_MM_HINT_T0>(ahead.cast());
            }
            for r in 0..R {
                // SAFETY: each input row has k values (checked in `run`).
                let x = _mm512_set1_ps(unsafe { *a[r].add(i) });
                for v in 0..V {
                    acc[r][v] = _mm512_fmadd_ps(x, w[v], acc[r][v]);
                }
            }
        }
        // Only small fixed-index loops touch `acc` (not iterators over references to it), one
        // per step of the epilogue, so that LLVM unrolls them all and `acc` lives in registers
        // (one loop with the epilogue's branches inside stays rolled, and then every FMA of the
        // K loop stores its accumulator).
        if pass.last {
            // SAFETY: the bias is padded to whole panels.
            let bias: [__m512; V] =
                std::array::from_fn(|v| unsafe { _mm512_loadu_ps(panels[v].bias.as_ptr()) });
            #[allow(clippy::needless_range_loop)]
            for r in 0..R {
                for v in 0..V {
                    acc[r][v] = _mm512_add_ps(acc[r][v], bias[v]);
                }
            }
            if let Some(residual) = gemm.residual {
                for r in 0..R {
                    for v in 0..V {
                        let res = residual[rows.residual[r] + first_column + v * PANEL..].as_ptr();
                        // SAFETY: the residual row holds the panel's masked columns (checked
                        // in `run`).
                        let res = unsafe { _mm512_maskz_loadu_ps(masks[v], res) };
                        acc[r][v] = _mm512_add_ps(acc[r][v], res);
                    }
                }
            }
            if gemm.relu {
                #[allow(clippy::needless_range_loop)]
                for r in 0..R {
                    for v in 0..V {
                        // SAFETY: this function runs only where AVX-512 is enabled.
                        acc[r][v] = unsafe { acc[r][v].relu() };
                    }
                }
            }
        }
        for r in 0..R {
            for v in 0..V {
                // SAFETY: as for the loads of partial sums above.
                unsafe { _mm512_mask_storeu_ps(c[r].add(v * PANEL), masks[v], acc[r][v]) };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Grid, chunk};

    /// Every (tile, panel tile) pair lands in exactly one task's rectangles, and each task gets
    /// as many pairs as its share.
    #[test]
    fn tasks_cover_the_grid_once() {
        for tiles in 1..8 {
            for panel_tiles in 1..8 {
                for grid in [Grid::ByTile { panel_tiles }, Grid::ByPanel { tiles }] {
                    let units = tiles * panel_tiles;
                    for parts in 1..=units + 1 {
                        let mut seen = vec![0; units];
                        for task in 0..parts {
                            let share = chunk(units, parts, task);
                            let mut count = 0;
                            for (tile_range, panel_range) in grid.rectangles(share.clone()) {
                                assert!(tile_range.end <= tiles && panel_range.end <= panel_tiles);
                                for tile in tile_range {
                                    for panel in panel_range.clone() {
                                        seen[tile * panel_tiles + panel] += 1;
                                        count += 1;
                                    }
                                }
                            }
                            assert_eq!(count, share.len(), "{tiles}×{panel_tiles} / {parts}");
                        }
                        assert!(
                            seen.iter().all(|&n| n == 1),
                            "{tiles}×{panel_tiles} / {parts}"
                        );
                    }
                }
            }
        }
    }
}
