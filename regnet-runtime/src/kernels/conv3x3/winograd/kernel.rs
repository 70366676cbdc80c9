//! Winograd's F(2×2, 3×3) kernel, written once over `Transform` vectors (see `super`).

use std::marker::PhantomData;
use std::mem::MaybeUninit;
use std::ops::Range;

use super::super::super::SendPtr;
use super::super::super::vector::{Tile, Transform, widest};
use super::super::{Conv3x3, blocks_together};
use super::{POSITIONS, SCRATCH};

/// One task of the kernel: its tile rows (counted over the batch: image n's tile row r is
/// n · out_h / 2 + r), its groups, the output rows to store (of those tiles), and whether it runs
/// group by group.
pub(in crate::kernels::conv3x3) type WinogradTask<'r> =
    (Range<usize>, Range<usize>, &'r Range<usize>, bool);

/// One task's tiles (see `WinogradTask`). `weights` is the transformed layer (see
/// `transform_weights`).
///
/// # Safety
/// The entry point's instruction set is `V`'s; `conv.run_rows`'s extent checks hold and the map
/// is even in both sides; no other task writes these rows of these groups.
#[inline(always)]
pub(in crate::kernels::conv3x3) unsafe fn task<
    V: Transform,
    const PAIR: usize,
    const TRIPLE: usize,
    const SINGLE: usize,
>(
    conv: &Conv3x3<'_>,
    weights: &[f32],
    (tile_rows, groups, rows, group_major): WinogradTask<'_>,
    out: SendPtr,
) {
    let gw = conv.weights.group_width;
    let tiles_wide = conv.width / 2;
    let tiles = tile_rows.start * tiles_wide..tile_rows.end * tiles_wide;
    // Chunks of whole register tiles of the products (the widest tile of the group's first
    // blocks), so that only the last chunk has narrower ones (chunks of 13 tiles, 3 + 3 + 3 + 2 +
    // 2, put a fifth of perf's samples in the 2-tile ones on 14×14 maps; whole tiles measured
    // 2–3% faster). Never a last chunk of one tile, whose register tile would wait on the FMA
    // latency.
    let register_tile = match blocks_together(gw / V::LANES) {
        1 => SINGLE,
        3 => TRIPLE,
        _ => PAIR,
    };
    let most = SCRATCH / (POSITIONS * gw);
    let full_chunk = if most >= register_tile {
        most / register_tile * register_tile
    } else {
        most
    };
    let chunks = || {
        let mut first = tiles.start;
        std::iter::from_fn(move || {
            let left = tiles.end - first;
            let size = match left {
                0 => return None,
                left if left <= full_chunk => left,
                left if left - full_chunk == 1 && full_chunk > register_tile => {
                    full_chunk - register_tile
                }
                _ => full_chunk,
            };
            first += size;
            Some(first - size..first)
        })
    };
    let mut transformed = [MaybeUninit::<f32>::uninit(); SCRATCH];
    let mut products = [MaybeUninit::<f32>::uninit(); SCRATCH];
    let scratch = Scratch {
        transformed: transformed.as_mut_ptr().cast(),
        products: products.as_mut_ptr().cast(),
    };
    // Two spelled-out calls, not one closure: a closure does not inherit the entry point's
    // target features, and the kernel inlined into it ran 40× slower (measured).
    // SAFETY (both loops): forwarded from the caller; every chunk fits the scratch buffers.
    if group_major {
        for group in groups {
            for chunk in chunks() {
                unsafe {
                    tiles_of_group::<V, PAIR, TRIPLE, SINGLE>(
                        conv, weights, chunk, group, rows, scratch, out,
                    )
                };
            }
        }
    } else {
        for chunk in chunks() {
            for group in groups.clone() {
                unsafe {
                    tiles_of_group::<V, PAIR, TRIPLE, SINGLE>(
                        conv,
                        weights,
                        chunk.clone(),
                        group,
                        rows,
                        scratch,
                        out,
                    )
                };
            }
        }
    }
}

/// A task's two scratch buffers, `SCRATCH` floats each: the chunk's transformed inputs and
/// products, both `[tile][position][channel of the group]`.
#[derive(Clone, Copy)]
struct Scratch {
    transformed: *mut f32,
    products: *mut f32,
}

/// Where tile `tile` (counted over the batch) lies: its image, and its top-left output pixel.
fn locate(conv: &Conv3x3<'_>, tile: usize) -> (usize, usize, usize) {
    let (tiles_high, tiles_wide) = (conv.height / 2, conv.width / 2);
    let n = tile / (tiles_high * tiles_wide);
    let within = tile % (tiles_high * tiles_wide);
    (n, within / tiles_wide * 2, within % tiles_wide * 2)
}

/// Tiles `chunk` of group `group`: transform the inputs, multiply, transform the products.
///
/// # Safety
/// As for `task`, and `chunk` holds at most `SCRATCH / (POSITIONS · group width)` tiles.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn tiles_of_group<
    V: Transform,
    const PAIR: usize,
    const TRIPLE: usize,
    const SINGLE: usize,
>(
    conv: &Conv3x3<'_>,
    weights: &[f32],
    chunk: Range<usize>,
    group: usize,
    rows: &Range<usize>,
    scratch: Scratch,
    out: SendPtr,
) {
    let (c, gw) = (conv.weights.channels, conv.weights.group_width);
    let count = chunk.len();
    let padded_w = conv.width + 2;
    let vectors = gw / V::LANES;
    // SAFETY (whole body): the instruction set is the entry point's; every input pointer stays
    // in the tile's 4×4 padded pixels, every scratch one below `count · POSITIONS · gw`, every
    // weight one in the group's weights and every output one in the tile's stored pixels.
    unsafe {
        for (t, tile) in chunk.clone().enumerate() {
            let (n, y, x) = locate(conv, tile);
            let corner = conv.input
                [((n * (conv.height + 2) + y) * padded_w + x) * c + group * gw..]
                .as_ptr();
            for block in 0..vectors {
                let d: [[V; 4]; 4] = std::array::from_fn(|r| {
                    std::array::from_fn(|col| {
                        V::load(corner.add((r * padded_w + col) * c + block * V::LANES))
                    })
                });
                // Bᵀ d B: down each column (`columns[col][r]`), then along each row.
                let columns: [[V; 4]; 4] =
                    std::array::from_fn(|col| input_transform(std::array::from_fn(|r| d[r][col])));
                let v: [[V; 4]; 4] = std::array::from_fn(|r| {
                    input_transform(std::array::from_fn(|col| columns[col][r]))
                });
                for (r, row) in v.into_iter().enumerate() {
                    for (col, value) in row.into_iter().enumerate() {
                        let position = r * 4 + col;
                        value.store(
                            scratch
                                .transformed
                                .add((t * POSITIONS + position) * gw + block * V::LANES),
                        );
                    }
                }
            }
        }
        for position in 0..POSITIONS {
            let mut block = 0;
            while block < vectors {
                let width = blocks_together(vectors - block);
                let mut t = 0;
                while t < count {
                    let tile = ProductTile::<V, 1> {
                        transformed: scratch.transformed.add((t * POSITIONS + position) * gw),
                        weights: weights
                            [(group * POSITIONS + position) * gw * gw + block * V::LANES..]
                            .as_ptr(),
                        products: scratch
                            .products
                            .add((t * POSITIONS + position) * gw + block * V::LANES),
                        group_width: gw,
                        vector: PhantomData,
                    };
                    let left = count - t;
                    t += match width {
                        1 => widest::<_, SINGLE>(tile, left),
                        3 => widest::<_, TRIPLE>(tile.with::<3>(), left),
                        _ => widest::<_, PAIR>(tile.with::<2>(), left),
                    };
                }
                block += width;
            }
        }
        let (out_h, out_w) = (conv.height, conv.width);
        let zero = V::zero();
        for (t, tile) in chunk.enumerate() {
            let (n, y, x) = locate(conv, tile);
            let stored = |r: usize| rows.contains(&(n * out_h + y + r));
            // Zero times each output, summed: NaN when any output is not a number (see
            // `super`). Checked over all four pixels, stored or not, so that a pixel's bits do
            // not depend on which rows a run stores.
            let mut zeroed_sum = zero;
            for block in 0..vectors {
                let channel = group * gw + block * V::LANES;
                let m: [[V; 4]; 4] = std::array::from_fn(|r| {
                    std::array::from_fn(|col| {
                        V::load(
                            scratch
                                .products
                                .add((t * POSITIONS + r * 4 + col) * gw + block * V::LANES),
                        )
                    })
                });
                // Aᵀ m A: down each column (`columns[col][r]`), then along each row.
                let columns: [[V; 2]; 4] =
                    std::array::from_fn(|col| output_transform(std::array::from_fn(|r| m[r][col])));
                let values: [[V; 2]; 2] = std::array::from_fn(|r| {
                    output_transform(std::array::from_fn(|col| columns[col][r]))
                });
                let bias = V::load(conv.weights.bias[channel..].as_ptr());
                for (r, row) in values.into_iter().enumerate() {
                    for (col, value) in row.into_iter().enumerate() {
                        zeroed_sum = V::mul_add(value, zero, zeroed_sum);
                        if stored(r) {
                            let pixel = (n * out_h + y + r) * out_w + x + col;
                            value.store_bias_relu(bias, out.0.add(pixel * c + channel));
                        }
                    }
                }
            }
            if zeroed_sum.any_nan() {
                for r in (0..2).filter(|&r| stored(r)) {
                    for col in 0..2 {
                        conv.scalar_pixel_group(n, y + r, x + col, group, out);
                    }
                }
            }
        }
    }
}

/// `Bᵀ d` for one line of four inputs: d0 − d2, d1 + d2, d2 − d1, d1 − d3.
///
/// # Safety
/// `V`'s instruction set is enabled.
#[inline(always)]
unsafe fn input_transform<V: Transform>(d: [V; 4]) -> [V; 4] {
    // SAFETY: forwarded from the caller.
    unsafe {
        [
            V::sub(d[0], d[2]),
            V::add(d[1], d[2]),
            V::sub(d[2], d[1]),
            V::sub(d[1], d[3]),
        ]
    }
}

/// `Aᵀ m` for one line of four products: m0 + m1 + m2, m1 − m2 − m3.
///
/// # Safety
/// `V`'s instruction set is enabled.
#[inline(always)]
unsafe fn output_transform<V: Transform>(m: [V; 4]) -> [V; 2] {
    // SAFETY: forwarded from the caller.
    unsafe {
        [
            V::add(V::add(m[0], m[1]), m[2]),
            V::sub(V::sub(m[1], m[2]), m[3]),
        ]
    }
}

/// `P` tiles × `B` 8-wide blocks of output channels at one position: the products
/// `Σ_i transformed[tile][i] · weights[i][o]` over the group's input channels.
#[derive(Clone, Copy)]
struct ProductTile<V, const B: usize> {
    /// The first tile's transformed inputs at this position (the next tile's `POSITIONS ×
    /// group_width` on).
    transformed: *const f32,
    /// The first block's weights at this position, `[input channel][group width]`.
    weights: *const f32,
    /// The first tile's products at this position and the first block's channels.
    products: *mut f32,
    group_width: usize,
    vector: PhantomData<V>,
}

impl<V, const B: usize> ProductTile<V, B> {
    fn with<const WIDTH: usize>(self) -> ProductTile<V, WIDTH> {
        ProductTile {
            transformed: self.transformed,
            weights: self.weights,
            products: self.products,
            group_width: self.group_width,
            vector: PhantomData,
        }
    }
}

impl<V: Transform, const B: usize> Tile for ProductTile<V, B> {
    #[inline(always)]
    unsafe fn run<const P: usize>(self) {
        let gw = self.group_width;
        // SAFETY: the caller's tiles and blocks lie in the chunk's scratch and the group's
        // weights (see `tiles_of_group`); the instruction set is the entry point's.
        unsafe {
            let mut acc = [[V::zero(); B]; P];
            for i in 0..gw {
                let w: [V; B] =
                    std::array::from_fn(|b| V::load(self.weights.add(i * gw + b * V::LANES)));
                // Constant-bound indexing keeps `acc` in registers (see the direct `tile`).
                #[allow(clippy::needless_range_loop)]
                for p in 0..P {
                    let x = V::splat(self.transformed.add(p * POSITIONS * gw + i));
                    for b in 0..B {
                        acc[p][b] = V::mul_add(x, w[b], acc[p][b]);
                    }
                }
            }
            #[allow(clippy::needless_range_loop)]
            for p in 0..P {
                for b in 0..B {
                    acc[p][b].store(self.products.add(p * POSITIONS * gw + b * V::LANES));
                }
            }
        }
    }
}
