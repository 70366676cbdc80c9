//! The CPU backend: each step of the plan with its weights folded and packed once, executed by
//! the SIMD kernels over a workspace's host buffers.

use std::borrow::Cow;

use rayon::prelude::*;
use regnet_spec::{Architecture, INPUT_CHANNELS};

use crate::kernels::channels::{average_pool, scale_channels};
use crate::kernels::conv3x3::{Conv3x3, PackedConv3x3};
use crate::kernels::gemm::{Gemm, PackedLinear};
use crate::kernels::parallel::{chunk, for_each_part, install_rayon};
use crate::kernels::stem::{PackedStem, Stem};
use crate::kernels::{Cache, Kernels, Pixels, prefetch};
use crate::plan::{Buffer, Op, Plan, Step};
use crate::profile::Profile;
use crate::weights::{
    self, CheckpointSource, LoadError, NetworkWeights, Recycled, Scheme, StepWeights,
};
use crate::workspace::{Pool, Workspace, WorkspaceLayout};

/// A step's weights, packed for its kernel.
enum Packed {
    /// Pooling and copies have none.
    Nothing,
    Stem(PackedStem),
    Pointwise(PackedLinear),
    Grouped(PackedConv3x3),
    Excite {
        hidden: PackedLinear,
        gate: PackedLinear,
    },
}

impl Packed {
    /// Folds BatchNorm into `step`'s weights (in place, where they are owned) and packs them for
    /// `kernels`; the weight buffers it was given to own go back to `recycled`.
    fn new(
        step: &Step,
        weights: Option<StepWeights<'_>>,
        kernels: Kernels,
        recycled: &mut Recycled,
    ) -> Packed {
        // Every layer but SE's becomes one weight matrix and bias: a convolution once folded,
        // the classifier as it is.
        let (linear, se) = match weights {
            Some(StepWeights::Convolution(conv)) => {
                (Some(Cow::Owned(conv.into_owned().into_folded())), None)
            }
            Some(StepWeights::Classifier(linear)) => (Some(linear), None),
            Some(StepWeights::SqueezeExcite(se)) => (None, Some(se)),
            None => (None, None),
        };
        let packed = match (step.op, &linear, se) {
            (Op::Stem { channels, .. }, Some(l), None) => Packed::Stem(PackedStem::new(
                &l.weight,
                &l.bias,
                INPUT_CHANNELS,
                channels,
            )),
            (
                Op::Pointwise {
                    inputs, outputs, ..
                },
                Some(l),
                None,
            ) => Packed::Pointwise(PackedLinear::new(&l.weight, &l.bias, inputs, outputs)),
            (
                Op::Grouped {
                    channels,
                    group_width,
                    stride,
                    input_size,
                    ..
                },
                Some(l),
                None,
            ) => Packed::Grouped(PackedConv3x3::new(
                &l.weight,
                &l.bias,
                channels,
                group_width,
                stride,
                (input_size, input_size),
                kernels,
            )),
            (Op::Excite { channels, hidden }, None, Some(se)) => Packed::Excite {
                hidden: PackedLinear::new(&se.hidden.weight, &se.hidden.bias, channels, hidden),
                gate: PackedLinear::new(&se.gate.weight, &se.gate.bias, hidden, channels),
            },
            (Op::Pool { .. } | Op::ToNchw { .. }, None, None) => Packed::Nothing,
            (op, _, _) => unreachable!(
                "the loader gives every step its weights, of its kind; not so for {op:?}"
            ),
        };
        if let Some(Cow::Owned(linear)) = linear {
            recycled.give(linear.weight);
        }
        packed
    }
}

/// A network's weights ready for the CPU kernels: the plan, each step with its packed weights.
pub struct CpuNetwork {
    architecture: Architecture<'static>,
    steps: Vec<(Step, Packed)>,
    /// The first step that `whole_images` runs over a group of images at once.
    batched_from: usize,
}

impl CpuNetwork {
    /// Folds BatchNorm and packs every step's weights for `kernels` (the best table any
    /// workspace on this CPU can choose, so that every table finds its layouts). `weights` must
    /// match `architecture` (as the loader guarantees).
    pub fn new(
        architecture: Architecture<'static>,
        weights: &NetworkWeights,
        kernels: Kernels,
    ) -> Self {
        let plan = Plan::new(&architecture);
        // Folding and packing are independent per step: spread them over the cores.
        let steps = plan
            .steps()
            .par_iter()
            .map(|step| {
                (
                    *step,
                    Packed::new(step, weights.of(step), kernels, &mut Recycled::default()),
                )
            })
            .collect();
        CpuNetwork::from_steps(architecture, steps)
    }

    /// Reads the checkpoint at `source` step by step (see [`weights::load_steps`]), folding
    /// and packing each step's weights for `kernels` as they arrive.
    pub fn load(
        architecture: Architecture<'static>,
        source: CheckpointSource<'_>,
        alternative: Option<(&str, &[usize])>,
        kernels: Kernels,
    ) -> Result<(Self, Scheme), LoadError> {
        let plan = Plan::new(&architecture);
        let (packed, scheme) = weights::load_steps(
            source,
            &architecture,
            alternative,
            plan.steps(),
            |step, weights, recycled| Packed::new(step, weights, kernels, recycled),
        )?;
        let steps = plan.steps().iter().copied().zip(packed).collect();
        let network = CpuNetwork::from_steps(architecture, steps);
        Ok((network, scheme))
    }

    fn from_steps(architecture: Architecture<'static>, steps: Vec<(Step, Packed)>) -> Self {
        CpuNetwork {
            architecture,
            batched_from: batched_from(&steps),
            steps,
        }
    }

    /// The architecture the weights were packed for.
    pub fn architecture(&self) -> &Architecture<'static> {
        &self.architecture
    }

    /// Runs `batch` NCHW images (`input.len() == batch × 3 × r × r`, `batch ≤ capacity`, a
    /// workspace for the CPU: checked by the caller), leaving the logits, `[batch][classes]`, in
    /// the workspace. With `features`, the stem's and every stage's outputs are kept too.
    pub(crate) fn run(
        &self,
        input: &[f32],
        batch: usize,
        workspace: &mut Workspace,
        features: bool,
        profile: Option<&mut Profile>,
    ) {
        let Workspace {
            layout,
            options,
            kernels,
            team,
            buffers,
            ..
        } = workspace;
        let slots = Slots(buffers.each_mut().map(|buffer| &mut buffer[..]));
        let context = Context {
            kernels: *kernels,
            threads: match options.pool {
                Pool::Own => options.threads,
                Pool::Rayon => rayon::current_num_threads(),
            },
            batch,
        };
        let image_floats = INPUT_CHANNELS * self.architecture.resolution.pow(2);
        // Whole images on each thread need no synchronization within a pass and keep each
        // image's activations in its own core's cache, so batches run that way, as far as they
        // divide among the threads. The rest, and passes that record features or a profile
        // (which follow one batch layer by layer), split each layer over the threads instead.
        let whole = if features || profile.is_some() {
            0
        } else {
            batch - batch % options.threads
        };
        let run = || {
            if whole == 0 {
                forward(&self.steps, context, input, slots, features, profile);
                return;
            }
            let (input_whole, input_rest) = input.split_at(whole * image_floats);
            let (slots_whole, slots_rest) = slots.split_at(whole, layout);
            let images = Context {
                batch: whole,
                ..context
            };
            self.whole_images(images, input_whole, slots_whole, layout);
            if whole < batch {
                let rest = Context {
                    batch: batch - whole,
                    ..context
                };
                forward(&self.steps, rest, input_rest, slots_rest, false, None);
            }
        };
        match (team, options.pool) {
            (Some(team), _) => team.install(run),
            (None, Pool::Rayon) => install_rayon(run),
            (None, Pool::Own) => run(),
        }
    }

    /// Runs `context.batch` images on one thread per group of them, the batch split into as
    /// many contiguous groups as there are threads: each image alone through the early stages
    /// (its activations stay in its core's cache), then the whole group at once from
    /// `batched_from` (the late stages' weights read once per group, not once per image).
    fn whole_images(
        &self,
        context: Context,
        input: &[f32],
        slots: Slots<'_>,
        layout: &WorkspaceLayout,
    ) {
        let images = context.batch;
        let groups = images.min(context.threads).clamp(1, MAX_GROUPS);
        let per_image = input.len() / images;
        let mut rest = Some((input, slots));
        let parts: [Option<(&[f32], Slots<'_>)>; MAX_GROUPS] = std::array::from_fn(|group| {
            let (input, slots) = rest.take().filter(|_| group < groups)?;
            let count = chunk(images, groups, group).len();
            let (mine, others) = input.split_at(count * per_image);
            let (my_slots, other_slots) = slots.split_at(count, layout);
            rest = Some((others, other_slots));
            Some((mine, my_slots))
        });
        let one_image = Context {
            threads: 1,
            batch: 1,
            ..context
        };
        let (each_image, whole_group) = self.steps.split_at(self.batched_from);
        for_each_part(context.threads, parts, |(input, mut slots)| {
            let mut rest = slots.reborrow();
            for image in input.chunks_exact(per_image) {
                let (mine, others) = rest.split_at(1, layout);
                forward(each_image, one_image, image, mine, false, None);
                rest = others;
            }
            let images = input.len() / per_image;
            // The images' input to the first step over the group, written at their own rooms.
            if let Some((step, _)) = whole_group.first()
                && let Some((buffer, floats)) = step.reaches()[0]
            {
                slots.pack_images(buffer, images, floats, layout);
            }
            let group = Context {
                batch: images,
                ..one_image
            };
            forward(whole_group, group, input, slots, false, None);
        });
    }
}

/// One forward pass of `context.batch` images through `steps`, step by step, each split over
/// `context.threads`.
fn forward(
    steps: &[(Step, Packed)],
    context: Context,
    images: &[f32],
    mut slots: Slots<'_>,
    features: bool,
    mut profile: Option<&mut Profile>,
) {
    let mut next = 0;
    while let Some((step, packed)) = steps.get(next) {
        next += 1;
        if !step.runs(features) {
            continue;
        }
        let banded = steps
            .get(next)
            .filter(|_| context.batch == 1 && context.threads == 1)
            .and_then(|(grouped, grouped_packed)| {
                Banded::of(context.kernels, (step, packed), (grouped, grouped_packed))
            });
        // Asked for by steps with weights only, so not again by the pool just before the SE.
        if !matches!(packed, Packed::Nothing) {
            prefetch_weights(
                &steps[next + usize::from(banded.is_some())..],
                context.kernels,
            );
        }
        if let Some(banded) = banded {
            banded.run(&mut slots, profile.as_deref_mut());
            next += 1;
            continue;
        }
        let multiply_adds = multiply_adds(step, packed, context.kernels);
        Profile::time(&mut profile, (step, multiply_adds), context.batch, || {
            execute(context, step, packed, images, &mut slots)
        });
    }
}

/// The most of a step's weights `prefetch_weights` asks for: all of RegNetY-1.6GF's largest SE
/// (1.5 MiB; what L2 cannot hold waits in L3), and a bound on the burst for wider networks,
/// whose weights would be evicted again before their turn.
const PREFETCH_FLOATS: usize = 2 * 1024 * 1024 / 4;

/// Asks for the weights of the next step with weights in `upcoming` into L2, if it is one that
/// would otherwise start by waiting on memory for them (RegNetY-1.6GF's 45 MB of weights do not
/// stay in the cache from one pass to the next), so that they arrive during the step before.
/// A squeeze-excitation: its two GEMMs have one row per image, so at batch 1 they read each
/// weight once and would wait for each panel. A grouped 3×3: it fetches each group's weights
/// while the group before runs, but the first groups' have no group before them. The 1×1s'
/// panels are fetched as the panels before them run (asking for their first 32–128 KiB
/// earlier changed nothing). `regnet bench MODEL --threads 1 --profile`, AMD EPYC, alternating
/// runs, fastest, without / with: RegNetY-1.6GF's stage-3 SE steps 0.456 / 0.341 ms a pass,
/// stage 4 0.180 / 0.119; RegNetY-400MF's 0.077 / 0.061 and 0.188 / 0.130 (6 runs); the grouped
/// 3×3s of RegNetX-400MF's stage 3 0.624 / 0.588 ms, stage 4 0.846 / 0.823 (6 runs), of
/// RegNetY-1.6GF's 3.838 / 3.700 and 0.480 / 0.465 (4 runs).
fn prefetch_weights(upcoming: &[(Step, Packed)], kernels: Kernels) {
    let Some((step, packed)) = upcoming
        .iter()
        .find(|(_, packed)| !matches!(packed, Packed::Nothing))
    else {
        return;
    };
    let weights: [&[f32]; 2] = match (step.op, packed) {
        (Op::Grouped { input_size, .. }, Packed::Grouped(weights)) => {
            [weights.kernel_weights(kernels, input_size, input_size), &[]]
        }
        (_, Packed::Excite { hidden, gate }) => [hidden.packed_weights(), gate.packed_weights()],
        _ => return,
    };
    let mut budget = PREFETCH_FLOATS;
    for weights in weights {
        let taken = weights.len().min(budget);
        prefetch(&weights[..taken], Cache::L2);
        budget -= taken;
    }
}

/// The multiply-adds per image that `step` runs with `kernels`: pycls's count, or fewer for a
/// grouped 3×3 computed with Winograd's transform.
fn multiply_adds(step: &Step, packed: &Packed, kernels: Kernels) -> u64 {
    match (step.op, packed) {
        (Op::Grouped { input_size, .. }, Packed::Grouped(weights)) => {
            weights.multiply_adds(kernels, input_size, input_size, step.flops)
        }
        _ => step.flops,
    }
}

/// Bytes of a bottleneck's reduced map that a band of rows fills before the grouped 3×3 reads
/// them: with the band's input rows, within L2.
const BAND_BYTES: usize = 128 * 1024;

/// A block's reduce 1×1 and its grouped 3×3 over one image, run a band of rows at a time: the
/// 3×3 reads each band of the reduced map while it is in L2, instead of after the whole map
/// has gone out to memory.
struct Banded<'a> {
    kernels: Kernels,
    reduce: &'a Step,
    reduce_weights: &'a PackedLinear,
    grouped: &'a Step,
    grouped_weights: &'a PackedConv3x3,
    /// Side of the reduced map.
    size: usize,
    /// The 3×3's stride and the side of its output map, as the plan has them.
    stride: usize,
    output_size: usize,
}

impl<'a> Banded<'a> {
    fn of(
        kernels: Kernels,
        (reduce, reduce_packed): (&'a Step, &'a Packed),
        (grouped, grouped_packed): (&'a Step, &'a Packed),
    ) -> Option<Self> {
        match (reduce.op, reduce_packed, grouped.op, grouped_packed) {
            (
                Op::Pointwise { rows, .. },
                Packed::Pointwise(reduce_weights),
                Op::Grouped {
                    input_size,
                    output_size,
                    stride,
                    ..
                },
                Packed::Grouped(grouped_weights),
            ) if rows.stride == 1
                && reduce.output.bordered()
                && grouped.input == reduce.output
                && input_size == rows.output_size
                && reduce.fused.gate.is_none()
                && reduce.fused.residual.is_none()
                && !grouped_weights.group_major(input_size, input_size)
                && input_size * input_size * reduce_weights.outputs() * 4 > 2 * BAND_BYTES =>
            {
                Some(Banded {
                    kernels,
                    reduce,
                    reduce_weights,
                    grouped,
                    grouped_weights,
                    size: input_size,
                    stride,
                    output_size,
                })
            }
            _ => None,
        }
    }

    /// Runs both steps; a profile gets each one's time, summed over its bands.
    fn run(&self, slots: &mut Slots<'_>, profile: Option<&mut Profile>) {
        let (size, k, n) = (
            self.size,
            self.reduce_weights.inputs(),
            self.reduce_weights.outputs(),
        );
        let side = size + 2;
        let reduced = std::mem::take(&mut slots.0[self.reduce.output.index()]);
        let output = std::mem::take(&mut slots.0[self.grouped.output.index()]);
        zero_border(&mut reduced[..side * side * n], size, n);
        let input = slots.read(self.reduce.input);
        // Bands of a multiple of 3 rows: whole 6-row register tiles at every even width.
        let band = (BAND_BYTES / (size * n * 4) / 3 * 3).max(3);
        let (mut done, mut convolved) = (0, 0);
        let mut seconds = [0.0; 2];
        // Piece 0 is the 1×1's, piece 1 the 3×3's.
        let mut timed = |piece: usize, work: &mut dyn FnMut()| match profile {
            None => work(),
            Some(_) => {
                let start = std::time::Instant::now();
                work();
                seconds[piece] += start.elapsed().as_secs_f64();
            }
        };
        let together = self.grouped_weights.rows_together(self.kernels, size, size);
        while done < size {
            let rows = band.min(size - done);
            timed(0, &mut || {
                Gemm {
                    weights: self.reduce_weights,
                    rows: rows * size,
                    input: &input[done * size * k..],
                    input_pixels: Pixels::Dense,
                    residual: None,
                    relu: self.reduce.fused.relu,
                    output_pixels: Pixels::Padded { h: rows, w: size },
                }
                .run(self.kernels, 1, &mut reduced[done * side * n..])
            });
            done += rows;
            // Output row y reads reduced rows y·stride - 1 ..= y·stride + 1, and rows computed
            // together wait for the last of them.
            let ready = if done == size {
                self.output_size
            } else {
                ((done - 2) / self.stride + 1) / together * together
            };
            timed(1, &mut || {
                Conv3x3 {
                    weights: self.grouped_weights,
                    batch: 1,
                    height: size,
                    width: size,
                    input: reduced,
                }
                .run_rows(self.kernels, 1, convolved..ready, output)
            });
            convolved = ready;
        }
        if let Some(profile) = profile {
            let grouped = self.grouped_weights.multiply_adds(
                self.kernels,
                self.size,
                self.size,
                self.grouped.flops,
            );
            profile.record((self.reduce, self.reduce.flops), 1, seconds[0]);
            profile.record((self.grouped, grouped), 1, seconds[1]);
        }
        slots.0[self.reduce.output.index()] = reduced;
        slots.0[self.grouped.output.index()] = output;
    }
}

/// Where a thread's group of whole images switches from one image at a time to the whole group
/// at once (see `CpuNetwork::whole_images`): the first step of the first stage whose bottleneck
/// 1×1 weights (channels²) are at least twice an image's feature map there (pixels ×
/// channels), or else of the head. Before it, an image's activations stay in cache through the
/// stage, which saves more than reading the weights once per image costs; from it on, the
/// weights dominate, and the group reads them once. (Batch 8 on one thread, AMD EPYC, AVX2:
/// from stage 4 on, RegNetX-400MF 5% faster and RegNetY-1.6GF unchanged; from the first stage
/// where the weights merely match the map, RegNetY-1.6GF's stage 3 too, 1.6GF 1–10% slower.)
fn batched_from(steps: &[(Step, Packed)]) -> usize {
    let weight_bound = steps.iter().find_map(|(step, _)| match step.op {
        Op::Grouped {
            channels,
            output_size,
            ..
        } if channels >= 2 * output_size * output_size => Some(step.stage),
        _ => None,
    });
    let head = steps.iter().map(|(step, _)| step.stage).max().unwrap_or(0);
    let stage = weight_bound.unwrap_or(head);
    steps
        .iter()
        .position(|(step, _)| step.stage >= stage)
        .unwrap_or(steps.len())
}

/// The most groups of whole images a batch splits into (one per thread, up to this).
const MAX_GROUPS: usize = 32;

/// How the kernels of one forward pass run.
#[derive(Clone, Copy)]
struct Context {
    kernels: Kernels,
    threads: usize,
    batch: usize,
}

/// Every host buffer of a pass, by role ([`Buffer::index`]), for as many images as it has room
/// for.
struct Slots<'a>([&'a mut [f32]; Buffer::COUNT]);

impl<'a> Slots<'a> {
    /// The room of the first `images` images, and the rest. The features buffer holds each map
    /// for the whole batch, not image by image, and only passes over the whole batch keep
    /// features: it stays whole with the first part.
    fn split_at(self, images: usize, layout: &WorkspaceLayout) -> (Slots<'a>, Slots<'a>) {
        let mut rest: [&'a mut [f32]; Buffer::COUNT] = Default::default();
        let mut first = self.0;
        for (buffer, (slot, rest)) in Buffer::ALL.into_iter().zip(first.iter_mut().zip(&mut rest)) {
            if buffer != Buffer::Kept {
                let (head, tail) =
                    std::mem::take(slot).split_at_mut(images * layout.floats(buffer));
                (*slot, *rest) = (head, tail);
            }
        }
        (Slots(first), Slots(rest))
    }

    /// Moves `images` images' `floats` values of `buffer`, written one image at a time (each
    /// at its room's start, a whole room per image), together: where a step over all of them
    /// reads them, one after another.
    fn pack_images(
        &mut self,
        buffer: Buffer,
        images: usize,
        floats: usize,
        layout: &WorkspaceLayout,
    ) {
        let room = layout.floats(buffer);
        let slot = &mut self.0[buffer.index()];
        // Each image moves down (floats ≤ room), after the ones before it have left its place.
        for image in 1..images {
            slot.copy_within(image * room..image * room + floats, image * floats);
        }
    }

    /// The same room, borrowed for a while.
    fn reborrow(&mut self) -> Slots<'_> {
        Slots(self.0.each_mut().map(|slot| &mut **slot))
    }

    fn read(&self, buffer: Buffer) -> &[f32] {
        self.0[buffer.index()]
    }
}

/// Runs one step: reads its buffers, writes its output.
fn execute(context: Context, step: &Step, packed: &Packed, images: &[f32], slots: &mut Slots<'_>) {
    let Context {
        kernels,
        threads,
        batch,
    } = context;
    // The output is never one of the buffers the step reads: take it out of the slots, so the
    // others can be read while it is written.
    let output = std::mem::take(&mut slots.0[step.output.index()]);
    match (step.op, packed) {
        (Op::Stem { input_size, .. }, Packed::Stem(weights)) => {
            pad_images(images, batch, input_size, slots.0[step.input.index()]);
            Stem {
                weights,
                batch,
                height: input_size,
                width: input_size,
                input: slots.read(step.input),
            }
            .run(kernels, threads, output);
        }
        (
            Op::Pointwise {
                inputs,
                outputs,
                rows,
            },
            Packed::Pointwise(weights),
        ) => {
            let (size_in, size_out) = (rows.input_size, rows.output_size);
            // The gate scales the input in place: nothing reads it after this step.
            if let Some(gate) = step.fused.gate {
                let [x, gate] = slots
                    .0
                    .get_disjoint_mut([step.input.index(), gate.index()])
                    .expect("a step's input and gate are different buffers");
                scale_channels(kernels, threads, x, batch, size_in * size_in, inputs, gate);
            }
            let output_pixels = if step.output.bordered() {
                let side = size_out + 2;
                zero_border(
                    &mut output[..batch * side * side * outputs],
                    size_out,
                    outputs,
                );
                Pixels::Padded {
                    h: size_out,
                    w: size_out,
                }
            } else {
                Pixels::Dense
            };
            let input_pixels = if rows.stride == 1 {
                Pixels::Dense
            } else {
                Pixels::Strided {
                    h: size_out,
                    w: size_out,
                    stride: rows.stride,
                    in_h: size_in,
                    in_w: size_in,
                }
            };
            Gemm {
                weights,
                rows: batch * size_out * size_out,
                input: slots.read(step.input),
                input_pixels,
                residual: step.fused.residual.map(|buffer| slots.read(buffer)),
                relu: step.fused.relu,
                output_pixels,
            }
            .run(kernels, threads, output);
        }
        (Op::Grouped { input_size, .. }, Packed::Grouped(weights)) => Conv3x3 {
            weights,
            batch,
            height: input_size,
            width: input_size,
            input: slots.read(step.input),
        }
        .run(kernels, threads, output),
        (Op::Pool { channels, pixels }, Packed::Nothing) => average_pool(
            kernels,
            threads,
            slots.read(step.input),
            batch,
            pixels,
            channels,
            output,
        ),
        (Op::Excite { channels, .. }, Packed::Excite { hidden, gate }) => {
            let scratch = step.scratch.expect("the plan gives SE its hidden buffer");
            let units = std::mem::take(&mut slots.0[scratch.index()]);
            let units_len = batch * hidden.outputs();
            // Two small GEMMs (one row per image), bound by reading their weights: the threads
            // split those by output channels (the SE steps of RegNetY-400MF and -1.6GF at batch 1
            // on two threads, AMD EPYC, AVX2: 8–15% less time than on one thread, 3 alternating
            // profile runs each).
            let layer = |weights, input, relu| Gemm {
                weights,
                rows: batch,
                input,
                input_pixels: Pixels::Dense,
                residual: None,
                relu,
                output_pixels: Pixels::Dense,
            };
            layer(hidden, slots.read(step.input), true).run(kernels, threads, units);
            let gates = &mut output[..batch * channels];
            layer(gate, &units[..units_len], false).run(kernels, threads, gates);
            gates
                .iter_mut()
                .for_each(|g| *g = 1.0 / (1.0 + (-*g).exp()));
            slots.0[scratch.index()] = units;
        }
        (
            Op::ToNchw {
                channels,
                pixels,
                offset,
            },
            Packed::Nothing,
        ) => {
            let nhwc = slots.read(step.input);
            let out = &mut output[offset * batch..(offset + channels * pixels) * batch];
            for n in 0..batch {
                for p in 0..pixels {
                    for c in 0..channels {
                        out[(n * channels + c) * pixels + p] =
                            nhwc[(n * pixels + p) * channels + c];
                    }
                }
            }
        }
        (op, _) => unreachable!("steps are packed for their own op; not so for {op:?}"),
    }
    slots.0[step.output.index()] = output;
}

/// Copies NCHW images into a buffer with a one-pixel zero border, writing each element once
/// (zeroing the whole buffer first made the stem step 5–9% slower: median and best of 5
/// alternating `regnet bench regnety_400mf --profile` runs, 0.420 and 0.364 against 0.398 and
/// 0.331 ms).
fn pad_images(input: &[f32], batch: usize, size: usize, padded: &mut [f32]) {
    let p = size + 2;
    let padded = &mut padded[..batch * INPUT_CHANNELS * p * p];
    for (plane, source) in padded
        .chunks_exact_mut(p * p)
        .zip(input.chunks_exact(size * size))
    {
        let (top, rest) = plane.split_at_mut(p);
        let (rows, bottom) = rest.split_at_mut(size * p);
        top.fill(0.0);
        bottom.fill(0.0);
        for (line, row) in rows.chunks_exact_mut(p).zip(source.chunks_exact(size)) {
            line[0] = 0.0;
            line[1..=size].copy_from_slice(row);
            line[p - 1] = 0.0;
        }
    }
}

/// Zeroes the one-pixel border of `[batch][size + 2][size + 2][channels]`: the buffer is shared
/// by blocks of different shapes, so last block's values may sit where this one's border is.
fn zero_border(padded: &mut [f32], size: usize, channels: usize) {
    let p = size + 2;
    for image in padded.chunks_exact_mut(p * p * channels) {
        image[..p * channels].fill(0.0);
        image[(p - 1) * p * channels..].fill(0.0);
        for y in 1..p - 1 {
            image[y * p * channels..(y * p + 1) * channels].fill(0.0);
            image[((y + 1) * p - 1) * channels..(y + 1) * p * channels].fill(0.0);
        }
    }
}
