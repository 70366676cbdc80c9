//! The grouped 3×3 convolution (padding 1, stride 1 or 2) with bias and ReLU fused, from a
//! zero-bordered NHWC input to a dense NHWC output. Every group width works; widths that are
//! multiples of 8 (all published RegNets) run a register-blocked kernel: 8-wide vectors with
//! AVX2 (16 registers) or AVX-512 (32 registers), and with AVX-512 for group widths of 16 or more,
//! 16-wide vectors (and an 8-wide one for a last 8 channels, as in groups of 24). At stride 1
//! over maps of even sides, groups of 16 or more run Winograd's F(2×2, 3×3) instead where the
//! instruction set has it (see `winograd`).

use std::ops::Range;

mod winograd;

use super::aligned::AlignedBuffer;
use super::parallel::{chunk, for_each_task};
use super::{Isa, Kernels, SendPtr, holds, relu};
use winograd::transform_weights;

const TAPS: usize = 9;
/// Weight bytes past which a layer runs group by group (see `PackedConv3x3::group_major`): a
/// quarter of a 512 KiB L2, the rest left to the input rows.
const L2_WEIGHT_BYTES: usize = 128 * 1024;
/// Bytes of an image's zero-bordered input up to which a layer runs group by group whatever its
/// weights: each group then reads its part of the input from L2.
const L2_INPUT_BYTES: usize = 256 * 1024;

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
    blocked8: Option<AlignedBuffer>,
    /// The same in blocks of 16 (the last one 8 wide when the group width is an odd multiple of
    /// 8), for AVX-512 when the group width is 16 or more.
    blocked16: Option<AlignedBuffer>,
    /// Winograd's transformed weights, `[group][position][input channel][output channel of the
    /// group]`, for the instruction sets that run it at stride 1 (see `winograd`).
    winograd: Option<AlignedBuffer>,
    bias: Vec<f32>,
}

impl PackedConv3x3 {
    /// `weight` is PyTorch's `[channels][group_width][3][3]`, packed for the versions `kernels`
    /// runs over input maps of `(height, width)` (the 16-wide layout only for AVX-512's,
    /// Winograd's only where it runs).
    pub fn new(
        weight: &[f32],
        bias: &[f32],
        channels: usize,
        group_width: usize,
        stride: usize,
        (height, width): (usize, usize),
        kernels: Kernels,
    ) -> Self {
        assert!(
            group_width > 0 && channels.is_multiple_of(group_width),
            "groups must divide the channels"
        );
        assert_eq!(weight.len(), channels * group_width * TAPS, "weight shape");
        assert_eq!(bias.len(), channels, "bias shape");
        assert!(stride == 1 || stride == 2, "stride 1 or 2");
        let blocked8 = group_width
            .is_multiple_of(8)
            .then(|| blocks(weight, group_width, 8));
        let blocked16 =
            (group_width.is_multiple_of(8) && group_width > 8 && kernels.isa == Isa::Avx512)
                .then(|| blocks(weight, group_width, 16));
        let winograd = (stride == 1 && runs_winograd(kernels.isa, group_width, height, width))
            .then(|| transform_weights(weight, group_width))
            .flatten();
        PackedConv3x3 {
            channels,
            group_width,
            stride,
            weight: weight.to_vec(),
            blocked8,
            blocked16,
            winograd,
            bias: bias.to_vec(),
        }
    }

    /// The kernel a table of `isa` runs this layer with, and the weights it reads (every
    /// layout keeps each group's weights together, groups in order).
    fn kernel(&self, isa: Isa) -> (Kernel, &[f32]) {
        match (isa, &self.blocked8, &self.blocked16) {
            #[cfg(target_arch = "x86_64")]
            (Isa::Avx512, _, Some(blocked)) => (Kernel::Avx512, blocked),
            #[cfg(target_arch = "x86_64")]
            (Isa::Avx512, Some(blocked), _) => (Kernel::Avx512Ymm, blocked),
            #[cfg(target_arch = "x86_64")]
            (Isa::Avx2Fma, Some(blocked), _) => (Kernel::Avx2, blocked),
            #[cfg(target_arch = "aarch64")]
            (Isa::Neon, Some(blocked), _) => (Kernel::Neon, blocked),
            _ => (Kernel::Scalar, &self.weight),
        }
    }

    /// The packed weights a table of `kernels` reads over a `height × width` input: Winograd's
    /// transformed ones where it runs, else the direct kernel's layout.
    pub(crate) fn kernel_weights(&self, kernels: Kernels, height: usize, width: usize) -> &[f32] {
        self.winograd(kernels, height, width)
            .unwrap_or_else(|| self.kernel(kernels.isa).1)
    }

    /// Input and output channels (the same: the convolution keeps the bottleneck width).
    pub fn channels(&self) -> usize {
        self.channels
    }

    /// Whether the layer runs group by group over a `height × width` input, each group's
    /// weights passing over all the rows it is given, rather than row by row (each input row
    /// once for all the groups): where its weights would not stay in L2 beside its input
    /// (stages 3 and 4), or an image's input stays in L2 itself.
    pub fn group_major(&self, height: usize, width: usize) -> bool {
        size_of_val(self.weight.as_slice()) > L2_WEIGHT_BYTES
            || (height + 2) * (width + 2) * self.channels * 4 <= L2_INPUT_BYTES
    }

    /// Winograd's transformed weights, when a table of `kernels` runs this layer over a
    /// `height × width` input with them: at stride 1 over a map of even sides (whole 2×2
    /// tiles), where the instruction set has the kernel.
    fn winograd(&self, kernels: Kernels, height: usize, width: usize) -> Option<&[f32]> {
        let chosen = runs_winograd(kernels.isa, self.group_width, height, width);
        self.winograd.as_deref().filter(|_| chosen)
    }

    /// Output rows computed together over a `height × width` input: 2 where Winograd's 2×2
    /// tiles run, else 1. `Conv3x3::run_rows` reads the input rows of every whole group of rows
    /// it touches.
    pub fn rows_together(&self, kernels: Kernels, height: usize, width: usize) -> usize {
        if self.winograd(kernels, height, width).is_some() {
            2
        } else {
            1
        }
    }

    /// The multiply-adds a table of `kernels` runs over a `height × width` input, of `direct`
    /// for the direct convolution: Winograd's transform makes each 2×2 tile's 36 products per
    /// input and output channel 16.
    pub fn multiply_adds(&self, kernels: Kernels, height: usize, width: usize, direct: u64) -> u64 {
        if self.winograd(kernels, height, width).is_some() {
            direct * 16 / 36
        } else {
            direct
        }
    }

    /// 1, or 2 for the first block of a stage, which halves the resolution.
    pub fn stride(&self) -> usize {
        self.stride
    }
}

/// PyTorch's `[o][i][3][3]` in blocks of `lanes` output channels from each group's start, the
/// last one 8 wide when only 8 are left: `[group][block][tap][input channel][lanes]`. A block at
/// channel f starts at f × TAPS × group_width whatever the widths, which is how the kernels find
/// it.
fn blocks(weight: &[f32], group_width: usize, lanes: usize) -> AlignedBuffer {
    let mut packed = AlignedBuffer::zeroed(weight.len());
    for (o, out_weights) in weight.chunks_exact(group_width * TAPS).enumerate() {
        let (group_start, j) = (o - o % group_width, o % group_width);
        let width = if j >= group_width / lanes * lanes {
            8
        } else {
            lanes
        };
        let start = group_start + j / width * width;
        for i in 0..group_width {
            for tap in 0..TAPS {
                packed[start * TAPS * group_width + (tap * group_width + i) * width + o - start] =
                    out_weights[i * TAPS + tap];
            }
        }
    }
    packed
}

/// Whether layers of this group width run Winograd's kernel at stride 1 with `isa` over input
/// maps of `height × width`: even sides (whole 2×2 tiles), and the 8-wide vectors of AVX2
/// (measured against the direct kernel in `benches/kernels.rs`) and NEON (where it runs fewer
/// instructions, `bench/insn_count.sh`); AVX-512 keeps its 16-wide direct kernels.
fn runs_winograd(isa: Isa, group_width: usize, height: usize, width: usize) -> bool {
    height.is_multiple_of(2)
        && width.is_multiple_of(2)
        && matches!(isa, Isa::Avx2Fma | Isa::Neon)
        && winograd::fits(group_width)
}

/// Which version of the kernel a layer runs (see `PackedConv3x3::kernel`).
#[derive(Clone, Copy)]
enum Kernel {
    /// 16-wide vectors, for group widths of 16 or more.
    #[cfg(target_arch = "x86_64")]
    Avx512,
    /// AVX-512's 32 registers with 8-wide vectors, for groups of 8.
    #[cfg(target_arch = "x86_64")]
    Avx512Ymm,
    #[cfg(target_arch = "x86_64")]
    Avx2,
    #[cfg(target_arch = "aarch64")]
    Neon,
    /// Any group width, any CPU.
    Scalar,
}

/// One grouped 3×3 convolution over a batch.
pub struct Conv3x3<'a> {
    /// The packed convolution (channels, groups, stride).
    pub weights: &'a PackedConv3x3,
    /// Images in the batch.
    pub batch: usize,
    /// Height of the input without its zero border, in pixels.
    pub height: usize,
    /// Width of the input without its zero border, in pixels.
    pub width: usize,
    /// `[batch][height + 2][width + 2][channels]`, border zero.
    pub input: &'a [f32],
}

impl Conv3x3<'_> {
    /// The output's (height, width): `(size - 1) / stride + 1`, as PyTorch's padding-1 3×3 gives.
    pub fn output_size(&self) -> (usize, usize) {
        let s = self.weights.stride;
        ((self.height - 1) / s + 1, (self.width - 1) / s + 1)
    }

    /// Writes `[batch][out_h][out_w][channels]` with bias and ReLU applied.
    pub fn run(&self, kernels: Kernels, threads: usize, output: &mut [f32]) {
        let (out_h, _) = self.output_size();
        self.run_rows(kernels, threads, 0..self.batch * out_h, output);
    }

    /// Writes output rows `rows` (counted over the batch: image n's row y is n × out_h + y) of
    /// `[batch][out_h][out_w][channels]`, leaving the others as they are. Reads only the input
    /// rows they cover (with the zero border: rows `y·stride..y·stride + 3` of the padded input),
    /// of whole groups of `rows_together` rows: the bits of a row do not depend on how the
    /// rows are split into runs.
    pub fn run_rows(
        &self,
        kernels: Kernels,
        threads: usize,
        rows: Range<usize>,
        output: &mut [f32],
    ) {
        let c = self.weights.channels;
        let (out_h, out_w) = self.output_size();
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
        assert!(rows.end <= self.batch * out_h, "conv rows past the output");
        let groups = c / self.weights.group_width;
        if rows.is_empty() {
            return;
        }
        let group_major = self.weights.group_major(self.height, self.width);
        let out = SendPtr(output.as_mut_ptr());
        if let Some(transformed) = self.weights.winograd(kernels, self.height, self.width) {
            // Tiles of 2×2 output pixels: a task takes whole pairs of rows.
            let tile_rows = rows.start / 2..rows.end.div_ceil(2);
            for_each_part(
                threads,
                tile_rows,
                groups,
                group_major,
                |own, group_range| {
                    // SAFETY: `winograd` gives weights only for the kernels' instruction set, at
                    // stride 1 over an even map; the extents are checked above; this task alone
                    // writes these tile rows (of `rows`) of these groups.
                    let task = (own, group_range, &rows, group_major);
                    #[cfg(target_arch = "x86_64")]
                    unsafe {
                        simd::winograd_avx2(self, transformed, task, out)
                    }
                    #[cfg(target_arch = "aarch64")]
                    unsafe {
                        simd::winograd_neon(self, transformed, task, out)
                    }
                    // Elsewhere no instruction set runs Winograd's kernel, so `winograd` gives none.
                    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
                    let _ = (task, transformed);
                },
            );
            return;
        }
        let (kernel, packed) = self.weights.kernel(kernels.isa);
        for_each_part(threads, rows, groups, group_major, |rows, groups| {
            let task = (rows, groups, group_major);
            match kernel {
                #[cfg(target_arch = "x86_64")]
                Kernel::Avx512 => {
                    // SAFETY: AVX-512F and VL were detected; `run` checked the input and output
                    // extents; this task alone writes these rows of these groups.
                    unsafe { simd::direct_avx512(self, packed, task, out) }
                }
                #[cfg(target_arch = "x86_64")]
                Kernel::Avx512Ymm => {
                    // SAFETY: as above, AVX-512F and VL (its 256-bit forms) detected.
                    unsafe { simd::direct_avx512_ymm(self, packed, task, out) }
                }
                #[cfg(target_arch = "x86_64")]
                Kernel::Avx2 => {
                    // SAFETY: as above, with AVX2 and FMA detected.
                    unsafe { simd::direct_avx2(self, packed, task, out) }
                }
                #[cfg(target_arch = "aarch64")]
                Kernel::Neon => {
                    // SAFETY: as above; NEON is part of every aarch64 CPU.
                    unsafe { simd::direct_neon(self, packed, task, out) }
                }
                Kernel::Scalar => {
                    for row in task.0 {
                        for group in task.1.clone() {
                            self.scalar_row_group(row, group, out);
                        }
                    }
                }
            }
        });
    }

    fn scalar_row_group(&self, row: usize, group: usize, out: SendPtr) {
        let (out_h, out_w) = self.output_size();
        for x in 0..out_w {
            self.scalar_pixel_group(row / out_h, row % out_h, x, group, out);
        }
    }

    /// Output pixel (y, x) of image n, the channels of group `group`.
    fn scalar_pixel_group(&self, n: usize, y: usize, x: usize, group: usize, out: SendPtr) {
        let (c, gw, s) = (
            self.weights.channels,
            self.weights.group_width,
            self.weights.stride,
        );
        let (out_h, out_w) = self.output_size();
        let padded_w = self.width + 2;
        for o in group * gw..(group + 1) * gw {
            let mut acc = self.weights.bias[o];
            let w = &self.weights.weight[o * gw * TAPS..(o + 1) * gw * TAPS];
            for ky in 0..3 {
                for kx in 0..3 {
                    let pixel = (n * (self.height + 2) + y * s + ky) * padded_w + x * s + kx;
                    let input = &self.input[pixel * c + group * gw..pixel * c + (group + 1) * gw];
                    for (i, &v) in input.iter().enumerate() {
                        acc += v * w[i * TAPS + ky * 3 + kx];
                    }
                }
            }
            // SAFETY: `run_rows` checked the output extent; this task owns this pixel's row
            // and group.
            unsafe { *out.0.add(((n * out_h + y) * out_w + x) * c + o) = relu(acc) };
        }
    }
}

/// How many of the `left` 8-wide blocks of a group's output channels share each broadcast input
/// (in the direct kernel's tiles and Winograd's products alike): three for an odd count (a
/// 24-wide group as one tile: 7 loads per 12 FMAs, where a pair and a single take 8 and 13),
/// else two, a lone block last.
fn blocks_together(left: usize) -> usize {
    match left {
        1 => 1,
        left if left % 2 == 1 => 3,
        _ => 2,
    }
}

/// One task of the direct kernel: its output rows (counted over the batch: image n's row y is
/// n × out_h + y), its groups, and whether it runs group by group (see `for_each_part`).
type DirectTask = (Range<usize>, Range<usize>, bool);

/// Runs `work(units, groups)` over a layer's `units` (rows, or pairs of rows) and its `groups`,
/// split into tasks: at least `4 × threads` on several threads, splitting the other dimension
/// too when one is short (a 7×7 map has 7 rows; stage 1 has 2 groups). Layers that run group by
/// group (`PackedConv3x3::group_major`), each group's weights (20 KiB for 24 channels) staying in
/// L1 over all its rows, split by groups first; the others run row by row, each input row read
/// once for all groups, and split by rows first.
fn for_each_part(
    threads: usize,
    units: Range<usize>,
    groups: usize,
    group_major: bool,
    work: impl Fn(Range<usize>, Range<usize>) + Sync,
) {
    let target = if threads <= 1 {
        1
    } else {
        threads.saturating_mul(4)
    };
    let (unit_parts, group_parts) = if group_major {
        let group_parts = target.clamp(1, groups);
        (
            target.div_ceil(group_parts).clamp(1, units.len()),
            group_parts,
        )
    } else {
        (
            units.len(),
            target.div_ceil(units.len().max(1)).clamp(1, groups),
        )
    };
    for_each_task(threads, unit_parts * group_parts, |task| {
        let own = chunk(units.len(), unit_parts, task / group_parts);
        work(
            units.start + own.start..units.start + own.end,
            chunk(groups, group_parts, task % group_parts),
        )
    });
}

#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
mod simd {
    #[cfg(target_arch = "x86_64")]
    use std::arch::x86_64::*;

    #[cfg(target_arch = "x86_64")]
    use super::super::leave_avx512;
    use std::marker::PhantomData;
    use std::ops::Range;

    use super::super::vector::{Tile, Vector, widest};
    use super::super::{Cache, prefetch};
    use super::winograd::{self, kernel::WinogradTask};
    use super::{Conv3x3, DirectTask, SendPtr, TAPS, blocks_together};

    /// # Safety
    /// `conv.run`'s extent checks hold; no other task writes the task's rows of its groups;
    /// `blocked` is the 8-wide packing.
    #[cfg(target_arch = "aarch64")]
    #[target_feature(enable = "neon")]
    pub unsafe fn direct_neon(conv: &Conv3x3<'_>, blocked: &[f32], task: DirectTask, out: SendPtr) {
        // Two NEON registers per 8-wide vector: AVX2's tiles fill NEON's 32 registers.
        // SAFETY: forwarded from the caller.
        unsafe { direct::<super::super::vector::F32x8, 6, 3, 7>(conv, blocked, task, out) }
    }

    /// # Safety
    /// AVX2 and FMA are available; `conv.run`'s extent checks hold; no other task writes the
    /// task's rows of its groups; `blocked` is the 8-wide packing.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn direct_avx2(conv: &Conv3x3<'_>, blocked: &[f32], task: DirectTask, out: SendPtr) {
        // 16 registers: 6 pixels × 2 vectors or 3 × 3, beside the weights and a broadcast, or
        // a sliding 7 × 1 beside three taps' weights and two broadcasts (7 divides every map of
        // a 224×224 RegNet; 8 and 12 measured slower over them). (4 × 3 leaves LLVM one
        // register short of the two broadcasts it schedules, and the accumulator it spills made
        // the 24-wide groups 1.8× slower, measured.)
        // SAFETY: forwarded from the caller.
        unsafe { direct::<__m256, 6, 3, 7>(conv, blocked, task, out) }
    }

    /// # Safety
    /// As for `direct_avx2`, with AVX-512F and VL (its 256-bit forms use 32 registers).
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
    pub unsafe fn direct_avx512_ymm(
        conv: &Conv3x3<'_>,
        blocked: &[f32],
        task: DirectTask,
        out: SendPtr,
    ) {
        // Only 8-wide groups come here (wider ones run the 16-wide kernel), so never a tile of
        // three vectors.
        // SAFETY: forwarded from the caller.
        unsafe { direct::<__m256, 14, 1, 12>(conv, blocked, task, out) };
        leave_avx512();
    }

    /// # Safety
    /// As for `direct_avx512_ymm`, with the 16-wide packing.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx512vl")]
    pub unsafe fn direct_avx512(
        conv: &Conv3x3<'_>,
        blocked: &[f32],
        task: DirectTask,
        out: SendPtr,
    ) {
        // A lone half vector needs a broadcast per FMA: 8 pixels keep their input pointers in
        // registers (14 spill them, and the reloads compete with the broadcasts). 16-wide
        // vectors pair a last 8 with a half vector instead of making three.
        // SAFETY: forwarded from the caller.
        unsafe { direct::<__m512, 14, 1, 8>(conv, blocked, task, out) };
        leave_avx512();
    }

    /// # Safety
    /// AVX2 and FMA are available; `conv.run_rows`'s extent checks hold over an even map at
    /// stride 1; no other task writes `task`'s tile rows of its groups; `transformed` is the
    /// layer's Winograd packing.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn winograd_avx2(
        conv: &Conv3x3<'_>,
        transformed: &[f32],
        task: WinogradTask<'_>,
        out: SendPtr,
    ) {
        // The direct kernel's register tiles (see `direct_avx2`), 12 tiles for one vector.
        // SAFETY: forwarded from the caller.
        unsafe { winograd::kernel::task::<__m256, 6, 3, 12>(conv, transformed, task, out) }
    }

    /// # Safety
    /// As for `winograd_avx2`; NEON is part of every aarch64 CPU.
    #[cfg(target_arch = "aarch64")]
    #[target_feature(enable = "neon")]
    pub unsafe fn winograd_neon(
        conv: &Conv3x3<'_>,
        transformed: &[f32],
        task: WinogradTask<'_>,
        out: SendPtr,
    ) {
        // SAFETY: forwarded from the caller.
        unsafe {
            winograd::kernel::task::<super::super::vector::F32x8, 6, 3, 12>(
                conv,
                transformed,
                task,
                out,
            )
        }
    }

    /// Where one register tile reads and writes.
    #[derive(Clone, Copy)]
    struct Site {
        /// Input at the tile's first output pixel's top-left tap, at the group's first channel.
        input: *const f32,
        /// Elements between horizontally adjacent output pixels' inputs (stride × channels).
        input_step: usize,
        /// Elements between input rows.
        input_row: usize,
        /// Pixels from the first one to the end of its output row: the tile's later pixels
        /// continue on the next rows.
        row_left: usize,
        /// Pixels in an output row.
        row_width: usize,
        /// Elements from past the input of an output row's last pixel to the next row's first.
        row_jump: usize,
        channels: usize,
        group_width: usize,
        /// Blocked weights of the tile's first block of output channels.
        weights: *const f32,
        bias: *const f32,
        /// Output at the tile's first pixel and first channel.
        output: *mut f32,
    }

    impl Site {
        /// The first tap's input of each of the tile's `P` pixels, row by row.
        #[inline(always)]
        fn pixel_inputs<const P: usize>(&self) -> [*const f32; P] {
            let (mut input, mut row_left) = (self.input, self.row_left);
            // Wrapping: the pointer past the tile's last pixel is formed, never read.
            std::array::from_fn(|_| {
                let this = input;
                input = input.wrapping_add(self.input_step);
                row_left -= 1;
                if row_left == 0 {
                    input = input.wrapping_add(self.row_jump);
                    row_left = self.row_width;
                }
                this
            })
        }
    }

    /// One task of the direct kernel (see `DirectTask`).
    ///
    /// # Safety
    /// As for the `direct_*` entry points, whose instruction sets `V` needs.
    #[inline(always)]
    unsafe fn direct<V: Vector, const PAIR: usize, const TRIPLE: usize, const SINGLE: usize>(
        conv: &Conv3x3<'_>,
        blocked: &[f32],
        (rows, groups, group_major): DirectTask,
        out: SendPtr,
    ) {
        // Two spelled-out calls, not one closure: a closure does not inherit the entry point's
        // target features (see Winograd's `task`).
        // SAFETY (both loops): forwarded from the caller.
        if group_major {
            // Image by image: one image's input stays in L2 while its groups pass over it, a
            // batch's would not (RegNetY-1.6GF's stage-4 3×3 at batch 8 took 1.6–1.8× the time
            // of 8 single images group-major over the whole batch). A group's rows run as one
            // line of pixels, so register tiles run on across rows (a 7×7 map as seven 6-pixel
            // tiles and a 4 and a 3, not seven rows of a 4 and a 3), and fetch the next group's
            // weights, which come from memory, as they go, so that the next group does not wait
            // on them.
            let out_h = conv.output_size().0;
            let per_group = conv.weights.group_width.pow(2) * TAPS;
            let mut first = rows.start;
            while first < rows.end {
                let image_rows = first..((first / out_h + 1) * out_h).min(rows.end);
                for group in groups.clone() {
                    let next = blocked
                        .get((group + 1) * per_group..(group + 2) * per_group)
                        .unwrap_or_default();
                    unsafe {
                        rows_group::<V, PAIR, TRIPLE, SINGLE>(
                            conv,
                            blocked,
                            image_rows.clone(),
                            group,
                            next,
                            out,
                        )
                    };
                }
                first = image_rows.end;
            }
        } else {
            // Row by row: each input row is read once for all the groups.
            for row in rows {
                for group in groups.clone() {
                    unsafe {
                        rows_group::<V, PAIR, TRIPLE, SINGLE>(
                            conv,
                            blocked,
                            row..row + 1,
                            group,
                            &[],
                            out,
                        )
                    };
                }
            }
        }
    }

    /// Output rows `rows` of one image, one group, in tiles of at most `PAIR` pixels × 2
    /// vectors of output channels, `TRIPLE` pixels × 3 (an odd number of 8-wide blocks, as in
    /// groups of 24), or `SINGLE` pixels × 1 (a group's one block, as a sliding tile, which
    /// stays in a row; or a lone half block). The other tiles run on from one row into the
    /// next. Fetches `next` into the cache over the first block's tiles.
    ///
    /// # Safety
    /// As for the `direct_*` entry points, whose instruction sets `V` needs.
    #[inline(always)]
    unsafe fn rows_group<V: Vector, const PAIR: usize, const TRIPLE: usize, const SINGLE: usize>(
        conv: &Conv3x3<'_>,
        blocked: &[f32],
        rows: Range<usize>,
        group: usize,
        next: &[f32],
        out: SendPtr,
    ) {
        let (c, gw, s) = (
            conv.weights.channels,
            conv.weights.group_width,
            conv.weights.stride,
        );
        let (out_h, out_w) = conv.output_size();
        let (n, first_row) = (rows.start / out_h, rows.start % out_h);
        let pixels = rows.len() * out_w;
        let padded_w = conv.width + 2;
        // Full blocks of V::LANES channels, and with 16-wide blocks maybe a last one of 8.
        let full = gw / V::LANES;
        // A constant: the 8-wide instances have no half blocks, and no code for them.
        let wide = V::LANES > <V::Half>::LANES;
        let mut half = wide && gw % V::LANES != 0;
        let mut block = 0;
        while block < full || half {
            // Vectors share each broadcast input: 8-wide ones as `blocks_together` says; 16-wide
            // ones two full blocks, or the last full block and the half one.
            let (vectors, halves) = match (full - block, half) {
                (left, false) if !wide => (blocks_together(left), 0),
                (0, _) => (0, 1),
                (1, true) => (1, 1),
                (1, false) => (1, 0),
                _ => (2, 0),
            };
            let first_channel = group * gw + block * V::LANES;
            // The next tile's first pixel: `done` along the rows, at (y, x).
            let (mut done, mut y, mut x) = (0, first_row, 0);
            while done < pixels {
                let pixel = (n * (conv.height + 2) + y * s) * padded_w + x * s;
                let site = Site {
                    input: conv.input[pixel * c + group * gw..].as_ptr(),
                    input_step: s * c,
                    input_row: padded_w * c,
                    row_left: out_w - x,
                    row_width: out_w,
                    row_jump: s * c * (padded_w - out_w),
                    channels: c,
                    group_width: gw,
                    weights: blocked[first_channel * TAPS * gw..].as_ptr(),
                    bias: conv.weights.bias[first_channel..].as_ptr(),
                    // SAFETY: the output pixel (n, y, x) and channel lie inside the output
                    // (checked in `run`).
                    output: unsafe { out.0.add(((n * out_h + y) * out_w + x) * c + first_channel) },
                };
                let (left, row_left) = (pixels - done, site.row_left);
                // SAFETY: the tile's pixels lie in the rows (a sliding tile's in the row), and
                // their taps in the padded input (checked in `run`).
                let tile = unsafe {
                    match (vectors, halves) {
                        (1, 1) if wide => widest::<_, PAIR>(ConvTile::<V, 1, 1>::at(site), left),
                        (0, 1) if wide => widest::<_, SINGLE>(ConvTile::<V, 0, 1>::at(site), left),
                        (1, _) if s == 1 => {
                            widest::<_, SINGLE>(SlidingTile::<V, 1>::at(site), row_left)
                        }
                        (1, _) => widest::<_, SINGLE>(SlidingTile::<V, 2>::at(site), row_left),
                        (3, _) if !wide => widest::<_, TRIPLE>(ConvTile::<V, 3, 0>::at(site), left),
                        _ => widest::<_, PAIR>(ConvTile::<V, 2, 0>::at(site), left),
                    }
                };
                if block == 0 && !next.is_empty() {
                    let share = |pixel: usize| pixel * next.len() / pixels;
                    prefetch(&next[share(done)..share(done + tile)], Cache::L1);
                }
                done += tile;
                x += tile;
                while x >= out_w {
                    x -= out_w;
                    y += 1;
                }
            }
            block += vectors;
            half &= halves == 0;
        }
    }

    /// The tile of `B` vectors and `H` half vectors of output channels at `site`.
    #[derive(Clone, Copy)]
    struct ConvTile<V, const B: usize, const H: usize> {
        site: Site,
        vector: PhantomData<V>,
    }

    impl<V, const B: usize, const H: usize> ConvTile<V, B, H> {
        fn at(site: Site) -> Self {
            ConvTile {
                site,
                vector: PhantomData,
            }
        }
    }

    impl<V: Vector, const B: usize, const H: usize> Tile for ConvTile<V, B, H> {
        #[inline(always)]
        unsafe fn run<const P: usize>(self) {
            // SAFETY: forwarded from the caller.
            unsafe { tile::<V, B, H, P>(self.site) }
        }
    }

    /// The tile of one vector of output channels at `site`, for stride `S`.
    #[derive(Clone, Copy)]
    struct SlidingTile<V, const S: usize> {
        site: Site,
        vector: PhantomData<V>,
    }

    impl<V, const S: usize> SlidingTile<V, S> {
        fn at(site: Site) -> Self {
            SlidingTile {
                site,
                vector: PhantomData,
            }
        }
    }

    impl<V: Vector, const S: usize> Tile for SlidingTile<V, S> {
        #[inline(always)]
        unsafe fn run<const P: usize>(self) {
            // SAFETY: forwarded from the caller.
            unsafe { sliding_tile::<V, S, P>(self.site) }
        }
    }

    /// `P` output pixels × one vector of output channels (a group of 8, or of 16 with AVX-512),
    /// at stride `S`. With a single vector, each tap of `tile` needs one broadcast per FMA; here
    /// each input pixel of a kernel row is broadcast once for the (up to three) taps that read
    /// it, the three taps' weights held in registers: 3 + S·(P − 1) + 3 loads per 3·P FMAs
    /// instead of 1 + P per P.
    ///
    /// # Safety
    /// As for `rows_group`, and the tile's P pixels lie in the row.
    #[inline(always)]
    unsafe fn sliding_tile<V: Vector, const S: usize, const P: usize>(site: Site) {
        let gw = site.group_width;
        // SAFETY (whole body): as for `tile`.
        unsafe {
            let mut acc = [V::zero(); P];
            for ky in 0..3 {
                let row = site.input.add(ky * site.input_row);
                let weights = site.weights.add(ky * 3 * gw * V::LANES);
                for i in 0..gw {
                    let w: [V; 3] =
                        std::array::from_fn(|kx| V::load(weights.add((kx * gw + i) * V::LANES)));
                    // Output pixel p's tap kx reads input pixel S·p + kx, which pixel p − 1
                    // read as its tap kx + S: taken from the registers, not broadcast again.
                    let mut previous = [V::zero(); 3];
                    // Constant-bound indexing keeps `acc` in registers (see `tile`).
                    #[allow(clippy::needless_range_loop)]
                    for p in 0..P {
                        let mut current = [V::zero(); 3];
                        for kx in 0..3 {
                            current[kx] = if p > 0 && kx + S < 3 {
                                previous[kx + S]
                            } else {
                                V::splat(row.add((S * p + kx) * site.channels + i))
                            };
                            acc[p] = V::mul_add(current[kx], w[kx], acc[p]);
                        }
                        previous = current;
                    }
                }
            }
            let bias = V::load(site.bias);
            #[allow(clippy::needless_range_loop)]
            for p in 0..P {
                acc[p].store_bias_relu(bias, site.output.add(p * site.channels));
            }
        }
    }

    /// `P` output pixels × `B` vectors of output channels and `H` (0 or 1) half vectors after
    /// them, accumulated over 9 taps × the group's input channels, then bias and ReLU. Inlined
    /// into its entry point, so that each instance keeps its accumulators in registers with the
    /// pixel loop innermost.
    ///
    /// # Safety
    /// As for `rows_group`, and the tile's P pixels lie in its rows.
    #[inline(always)]
    unsafe fn tile<V: Vector, const B: usize, const H: usize, const P: usize>(site: Site) {
        let gw = site.group_width;
        // The half block (H = 1) follows the B full ones.
        let half_channel = B * V::LANES;
        // SAFETY (whole body): the instruction set is the entry point's; every pointer stays
        // in the tile's taps, weights, biases and outputs (checked in `run`).
        unsafe {
            let mut acc = [[V::zero(); B]; P];
            let mut acc_half = [[<V::Half>::zero(); H]; P];
            let starts = site.pixel_inputs::<P>();
            for ky in 0..3 {
                for kx in 0..3 {
                    let tap = ky * 3 + kx;
                    let pixels: [*const f32; P] = std::array::from_fn(|p| {
                        starts[p].add(ky * site.input_row + kx * site.channels)
                    });
                    let weights: [*const f32; B] =
                        std::array::from_fn(|b| site.weights.add((b * TAPS + tap) * gw * V::LANES));
                    // Past the group's weights when the tile has no half block (H = 0): formed
                    // with wrapping arithmetic, and only read when H = 1.
                    let half_weights = site
                        .weights
                        .wrapping_add(half_channel * TAPS * gw + tap * gw * <V::Half>::LANES);
                    for i in 0..gw {
                        let w: [V; B] =
                            std::array::from_fn(|b| V::load(weights[b].add(i * V::LANES)));
                        let w_half: [V::Half; H] = std::array::from_fn(|_| {
                            <V::Half>::load(half_weights.add(i * <V::Half>::LANES))
                        });
                        for p in 0..P {
                            let x = V::splat(pixels[p].add(i));
                            for b in 0..B {
                                acc[p][b] = V::mul_add(x, w[b], acc[p][b]);
                            }
                            for h in 0..H {
                                acc_half[p][h] =
                                    <V::Half>::mul_add(x.low(), w_half[h], acc_half[p][h]);
                            }
                        }
                    }
                }
            }
            let bias: [V; B] = std::array::from_fn(|b| V::load(site.bias.add(b * V::LANES)));
            // Indexing with constant bounds, not iterating by reference, keeps `acc` out of
            // memory: borrowed, it stays on the stack and every FMA above stores to it.
            #[allow(clippy::needless_range_loop)]
            let bias_half: [V::Half; H] =
                std::array::from_fn(|_| <V::Half>::load(site.bias.add(half_channel)));
            for p in 0..P {
                let output = site.output.add(p * site.channels);
                for b in 0..B {
                    acc[p][b].store_bias_relu(bias[b], output.add(b * V::LANES));
                }
                for h in 0..H {
                    acc_half[p][h].store_bias_relu(bias_half[h], output.add(half_channel));
                }
            }
        }
    }
}
