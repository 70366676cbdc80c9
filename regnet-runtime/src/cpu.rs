//! The CPU backend: weights folded and packed once, then forward passes over a workspace.

use rayon::prelude::*;
use regnet_spec::{Architecture, Block, INPUT_CHANNELS};

use crate::kernels::channels::{average_pool, scale_channels};
use crate::kernels::conv3x3::{Conv3x3, PackedConv3x3};
use crate::kernels::gemm::{Gemm, PackedLinear};
use crate::kernels::stem::{PackedStem, Stem};
use crate::kernels::{Isa, Pixels};
use crate::weights::{BlockWeights, ConvBn, NetworkWeights};
use crate::workspace::{Workspace, WorkspaceLayout};

fn pointwise(conv: &ConvBn, inputs: usize, outputs: usize) -> PackedLinear {
    let folded = conv.fold();
    PackedLinear::new(&folded.weight, &folded.bias, inputs, outputs)
}

struct SqueezeExcite {
    reduce: PackedLinear,
    expand: PackedLinear,
}

struct CpuBlock {
    geometry: Block,
    proj: Option<PackedLinear>,
    a: PackedLinear,
    b: PackedConv3x3,
    se: Option<SqueezeExcite>,
    c: PackedLinear,
}

impl CpuBlock {
    fn new(geometry: Block, weights: &BlockWeights) -> Self {
        let (w_in, w, w_b) = (geometry.in_width, geometry.width, geometry.bottleneck_width);
        // The loader guarantees SE weights exactly where the architecture has SE.
        debug_assert_eq!(weights.se.is_some(), geometry.se_width.is_some());
        let grouped = weights.b.fold();
        CpuBlock {
            geometry,
            proj: weights.proj.as_ref().map(|proj| pointwise(proj, w_in, w)),
            a: pointwise(&weights.a, w_in, w_b),
            b: PackedConv3x3::new(
                &grouped.weight,
                &grouped.bias,
                w_b,
                w_b / geometry.groups,
                geometry.stride,
            ),
            se: weights
                .se
                .as_ref()
                .zip(geometry.se_width)
                .map(|(se, width)| SqueezeExcite {
                    reduce: PackedLinear::new(&se.reduce.weight, &se.reduce.bias, w_b, width),
                    expand: PackedLinear::new(&se.expand.weight, &se.expand.bias, width, w_b),
                }),
            c: pointwise(&weights.c, w_b, w),
        }
    }
}

/// What each timed step of a forward pass does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Step {
    /// The stem's stride-2 3×3 convolution (with BN and ReLU).
    Stem,
    /// The shortcut's strided 1×1 projection.
    Projection,
    /// The block's first 1×1 convolution (into the bottleneck).
    Reduce,
    /// The grouped 3×3 convolution.
    Grouped,
    /// Squeeze-and-excitation: pooling, the two small linear layers and the channel scaling.
    SqueezeExcite,
    /// The block's last 1×1 convolution, with the residual add.
    Expand,
    /// Pooling and the classifier.
    Head,
}

/// The time of every step of forward passes, for `regnet bench --profile`.
#[derive(Clone, Debug, Default)]
pub struct Profile {
    /// Every step run, in order, pass after pass.
    pub steps: Vec<StepTiming>,
}

/// One run of one step of a forward pass.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StepTiming {
    /// Where it ran: 0 for the stem, 1.. for the stages, one past the last stage for the head.
    pub stage: usize,
    /// What it did.
    pub step: Step,
    /// Its multiply-adds.
    pub flops: u64,
    /// How long it took.
    pub seconds: f64,
}

impl Profile {
    fn time<R>(
        profile: &mut Option<&mut Profile>,
        stage: usize,
        step: Step,
        flops: u64,
        work: impl FnOnce() -> R,
    ) -> R {
        match profile {
            None => work(),
            Some(profile) => {
                let start = std::time::Instant::now();
                let result = work();
                profile.steps.push(StepTiming {
                    stage,
                    step,
                    flops,
                    seconds: start.elapsed().as_secs_f64(),
                });
                result
            }
        }
    }
}

/// A network's weights ready for the CPU kernels.
pub struct CpuNetwork {
    architecture: Architecture<'static>,
    stem: PackedStem,
    blocks: Vec<CpuBlock>,
    head: PackedLinear,
}

/// Where the stem's and each stage's outputs go (NCHW), when asked for.
struct FeatureSink<'a> {
    buffer: &'a mut [f32],
    filled: usize,
}

impl FeatureSink<'_> {
    /// Appends an NHWC batch as NCHW.
    fn push(&mut self, nhwc: &[f32], batch: usize, size: usize, channels: usize) {
        let pixels = size * size;
        let out = &mut self.buffer[self.filled..self.filled + batch * channels * pixels];
        for n in 0..batch {
            for p in 0..pixels {
                for c in 0..channels {
                    out[(n * channels + c) * pixels + p] = nhwc[(n * pixels + p) * channels + c];
                }
            }
        }
        self.filled += batch * channels * pixels;
    }
}

impl CpuNetwork {
    /// Folds BatchNorm and packs every layer. `weights` must match `architecture` (as the
    /// loader guarantees).
    pub fn new(architecture: Architecture<'static>, weights: &NetworkWeights) -> Self {
        let stem = weights.stem.fold();
        // Folding and packing are independent per block: spread them over the cores.
        let geometry: Vec<Block> = architecture.blocks().collect();
        let blocks = geometry
            .into_par_iter()
            .zip(&weights.blocks)
            .map(|(geometry, weights)| CpuBlock::new(geometry, weights))
            .collect();
        CpuNetwork {
            stem: PackedStem::new(
                &stem.weight,
                &stem.bias,
                INPUT_CHANNELS,
                architecture.stem_width,
            ),
            blocks,
            head: PackedLinear::new(
                &weights.fc.weight,
                &weights.fc.bias,
                architecture.last_width(),
                architecture.num_classes,
            ),
            architecture,
        }
    }

    /// The architecture the weights were packed for.
    pub fn architecture(&self) -> &Architecture<'static> {
        &self.architecture
    }

    /// Runs `batch` NCHW images (`input.len() == batch × 3 × r × r`, `batch ≤ capacity`,
    /// checked by the caller), leaving the logits, `[batch][classes]`, in the workspace. With
    /// `features`, the stem's and every stage's outputs are kept too (NCHW, one after another).
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
            pool,
            image,
            activations,
            shortcut,
            bottleneck_padded,
            bottleneck,
            vectors,
            logits,
            features: feature_buffer,
            ..
        } = workspace;
        let [activation_x, activation_y] = activations.each_mut().map(|a| &mut a[..]);
        let buffers = Buffers {
            image,
            x: activation_x,
            y: activation_y,
            shortcut,
            padded: bottleneck_padded,
            bottleneck,
            vectors,
            logits,
        };
        let context = Context {
            isa: options.isa,
            threads: options.threads,
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
                let mut sink = features.then(|| FeatureSink {
                    buffer: feature_buffer,
                    filled: 0,
                });
                self.forward(context, input, buffers, sink.as_mut(), profile);
                return;
            }
            let (input_whole, input_rest) = input.split_at(whole * image_floats);
            let (buffers_whole, buffers_rest) = buffers.split_at(whole, layout);
            let images = Context {
                batch: whole,
                ..context
            };
            self.whole_images(images, input_whole, buffers_whole, layout);
            if whole < batch {
                let rest = Context {
                    batch: batch - whole,
                    ..context
                };
                self.forward(rest, input_rest, buffers_rest, None, None);
            }
        };
        match pool {
            Some(pool) => pool.install(run),
            None => run(),
        }
    }

    /// Runs `context.batch` images each on one thread from start to end: one after another on
    /// one thread (each image's activations stay in cache), else halves of the batch at once on
    /// the pool's threads.
    fn whole_images(
        &self,
        context: Context,
        input: &[f32],
        buffers: Buffers<'_>,
        layout: &WorkspaceLayout,
    ) {
        let images = context.batch;
        if images == 1 {
            let one_thread = Context {
                threads: 1,
                ..context
            };
            self.forward(one_thread, input, buffers, None, None);
            return;
        }
        let half = images / 2;
        let (input_first, input_second) = input.split_at(input.len() / images * half);
        let (first, second) = buffers.split_at(half, layout);
        let halves = [half, images - half].map(|batch| Context { batch, ..context });
        let run_first = || self.whole_images(halves[0], input_first, first, layout);
        let run_second = || self.whole_images(halves[1], input_second, second, layout);
        if context.threads <= 1 {
            run_first();
            run_second();
        } else {
            rayon::join(run_first, run_second);
        }
    }

    /// One forward pass of `context.batch` images, each layer split over `context.threads`.
    fn forward(
        &self,
        context: Context,
        input: &[f32],
        buffers: Buffers<'_>,
        mut sink: Option<&mut FeatureSink<'_>>,
        mut profile: Option<&mut Profile>,
    ) {
        let Context {
            isa,
            threads,
            batch,
        } = context;
        let Buffers {
            image,
            mut x,
            mut y,
            shortcut,
            padded,
            bottleneck,
            vectors,
            logits,
        } = buffers;
        let r = self.architecture.resolution;
        pad_images(input, batch, r, image);
        let stem = Stem {
            weights: &self.stem,
            batch,
            height: r,
            width: r,
            input: image,
        };
        let stem_size = self.architecture.stem_size();
        let stem_flops = (batch * stem_size * stem_size * self.architecture.stem_width * 27) as u64;
        Profile::time(&mut profile, 0, Step::Stem, stem_flops, || {
            stem.run(isa, threads, x)
        });
        if let Some(sink) = sink.as_mut() {
            sink.push(x, batch, stem_size, self.architecture.stem_width);
        }
        for block in &self.blocks {
            let buffers = BlockBuffers {
                shortcut: &mut *shortcut,
                padded: &mut *padded,
                bottleneck: &mut *bottleneck,
                vectors: &mut *vectors,
            };
            block.run(context, x, y, buffers, &mut profile);
            std::mem::swap(&mut x, &mut y);
            let g = block.geometry;
            let last_of_stage = g.index == self.architecture.stages[g.stage - 1].depth;
            if let (true, Some(sink)) = (last_of_stage, sink.as_mut()) {
                sink.push(x, batch, g.out_size, g.width);
            }
        }
        let head_flops =
            (batch * self.architecture.last_width() * self.architecture.num_classes) as u64;
        let head_stage = self.architecture.stages.len() + 1;
        Profile::time(&mut profile, head_stage, Step::Head, head_flops, || {
            self.head(isa, threads, batch, x, vectors, logits)
        });
    }

    fn head(
        &self,
        isa: Isa,
        threads: usize,
        batch: usize,
        x: &[f32],
        vectors: &mut [f32],
        logits: &mut [f32],
    ) {
        let channels = self.architecture.last_width();
        let size = self
            .blocks
            .last()
            .map_or(self.architecture.stem_size(), |b| b.geometry.out_size);
        let pooled = &mut vectors[..batch * channels];
        average_pool(isa, threads, x, batch, size * size, channels, pooled);
        Gemm {
            weights: &self.head,
            rows: batch,
            input: pooled,
            input_pixels: Pixels::Dense,
            residual: None,
            relu: false,
            output_pixels: Pixels::Dense,
        }
        .run(isa, threads, logits);
    }
}

/// How the kernels of one forward pass run.
#[derive(Clone, Copy)]
struct Context {
    isa: Isa,
    threads: usize,
    batch: usize,
}

/// Every buffer of a forward pass, for as many images as it has room for.
struct Buffers<'a> {
    image: &'a mut [f32],
    /// Block inputs and outputs alternate between these two.
    x: &'a mut [f32],
    y: &'a mut [f32],
    shortcut: &'a mut [f32],
    padded: &'a mut [f32],
    bottleneck: &'a mut [f32],
    vectors: &'a mut [f32],
    logits: &'a mut [f32],
}

impl<'a> Buffers<'a> {
    /// The room of the first `images` images, and the rest.
    fn split_at(self, images: usize, layout: &WorkspaceLayout) -> (Buffers<'a>, Buffers<'a>) {
        let split =
            |buffer: &'a mut [f32], per_image: usize| buffer.split_at_mut(images * per_image);
        let (image, image_rest) = split(self.image, layout.image);
        let (x, x_rest) = split(self.x, layout.activation);
        let (y, y_rest) = split(self.y, layout.activation);
        let (shortcut, shortcut_rest) = split(self.shortcut, layout.shortcut);
        let (padded, padded_rest) = split(self.padded, layout.bottleneck_padded);
        let (bottleneck, bottleneck_rest) = split(self.bottleneck, layout.bottleneck);
        let (vectors, vectors_rest) = split(self.vectors, layout.vector);
        let (logits, logits_rest) = split(self.logits, layout.logits);
        (
            Buffers {
                image,
                x,
                y,
                shortcut,
                padded,
                bottleneck,
                vectors,
                logits,
            },
            Buffers {
                image: image_rest,
                x: x_rest,
                y: y_rest,
                shortcut: shortcut_rest,
                padded: padded_rest,
                bottleneck: bottleneck_rest,
                vectors: vectors_rest,
                logits: logits_rest,
            },
        )
    }
}

struct BlockBuffers<'a> {
    shortcut: &'a mut [f32],
    padded: &'a mut [f32],
    bottleneck: &'a mut [f32],
    vectors: &'a mut [f32],
}

impl CpuBlock {
    fn run(
        &self,
        context: Context,
        input: &[f32],
        output: &mut [f32],
        buffers: BlockBuffers<'_>,
        profile: &mut Option<&mut Profile>,
    ) {
        let Context {
            isa,
            threads,
            batch,
        } = context;
        let g = self.geometry;
        let (h_in, h_out) = (g.in_size, g.out_size);
        let rows_in = batch * h_in * h_in;
        let rows_out = batch * h_out * h_out;
        let (w_in, w, w_b) = (g.in_width, g.width, g.bottleneck_width);
        let pointwise =
            |rows: usize, inputs: usize, outputs: usize| (rows * inputs * outputs) as u64;
        if let Some(proj) = &self.proj {
            let input_pixels = if g.stride == 1 {
                Pixels::Dense
            } else {
                Pixels::Strided {
                    h: h_out,
                    w: h_out,
                    stride: g.stride,
                    in_h: h_in,
                    in_w: h_in,
                }
            };
            let gemm = Gemm {
                weights: proj,
                rows: rows_out,
                input,
                input_pixels,
                residual: None,
                relu: false,
                output_pixels: Pixels::Dense,
            };
            Profile::time(
                profile,
                g.stage,
                Step::Projection,
                pointwise(rows_out, w_in, w),
                || gemm.run(isa, threads, buffers.shortcut),
            );
        }
        let padded = &mut buffers.padded[..batch * (h_in + 2) * (h_in + 2) * w_b];
        let reduce = Gemm {
            weights: &self.a,
            rows: rows_in,
            input,
            input_pixels: Pixels::Dense,
            residual: None,
            relu: true,
            output_pixels: Pixels::Padded { h: h_in, w: h_in },
        };
        Profile::time(
            profile,
            g.stage,
            Step::Reduce,
            pointwise(rows_in, w_in, w_b),
            || {
                zero_border(padded, h_in, w_b);
                reduce.run(isa, threads, padded)
            },
        );
        let bottleneck = &mut buffers.bottleneck[..rows_out * w_b];
        let grouped = Conv3x3 {
            weights: &self.b,
            batch,
            height: h_in,
            width: h_in,
            input: padded,
        };
        let grouped_flops = (rows_out * w_b * 9 * w_b / g.groups) as u64;
        Profile::time(profile, g.stage, Step::Grouped, grouped_flops, || {
            grouped.run(isa, threads, bottleneck)
        });
        if let Some(se) = &self.se {
            let se_flops = (batch * 2 * w_b * se.reduce.outputs()) as u64;
            Profile::time(profile, g.stage, Step::SqueezeExcite, se_flops, || {
                se.run(context, h_out * h_out, w_b, bottleneck, buffers.vectors)
            });
        }
        let residual: &[f32] = if self.proj.is_some() {
            buffers.shortcut
        } else {
            input
        };
        let expand = Gemm {
            weights: &self.c,
            rows: rows_out,
            input: bottleneck,
            input_pixels: Pixels::Dense,
            residual: Some(residual),
            relu: true,
            output_pixels: Pixels::Dense,
        };
        Profile::time(
            profile,
            g.stage,
            Step::Expand,
            pointwise(rows_out, w_b, w),
            || expand.run(isa, threads, output),
        );
    }
}

impl SqueezeExcite {
    /// Scales each channel of `x` (`[batch][pixels][channels]`) by its gate: the sigmoid of
    /// expand(ReLU(reduce(mean over pixels))).
    fn run(
        &self,
        context: Context,
        pixels: usize,
        channels: usize,
        x: &mut [f32],
        vectors: &mut [f32],
    ) {
        let Context {
            isa,
            threads,
            batch,
        } = context;
        let (pooled, rest) = vectors.split_at_mut(batch * channels);
        let (hidden, gates) = rest.split_at_mut(batch * self.reduce.outputs());
        let gates = &mut gates[..batch * channels];
        average_pool(isa, threads, x, batch, pixels, channels, pooled);
        // Two small GEMMs (one row per image): splitting them over threads would cost more
        // than they take.
        let layer = |weights, input, relu| Gemm {
            weights,
            rows: batch,
            input,
            input_pixels: Pixels::Dense,
            residual: None,
            relu,
            output_pixels: Pixels::Dense,
        };
        layer(&self.reduce, pooled, true).run(isa, 1, hidden);
        layer(&self.expand, hidden, false).run(isa, 1, gates);
        gates
            .iter_mut()
            .for_each(|g| *g = 1.0 / (1.0 + (-*g).exp()));
        scale_channels(isa, threads, x, batch, pixels, channels, gates);
    }
}

/// Copies NCHW images into a buffer with a one-pixel zero border.
fn pad_images(input: &[f32], batch: usize, size: usize, padded: &mut [f32]) {
    let p = size + 2;
    let padded = &mut padded[..batch * INPUT_CHANNELS * p * p];
    padded.fill(0.0);
    for (plane, source) in padded
        .chunks_exact_mut(p * p)
        .zip(input.chunks_exact(size * size))
    {
        for (y, row) in source.chunks_exact(size).enumerate() {
            plane[(y + 1) * p + 1..(y + 1) * p + 1 + size].copy_from_slice(row);
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
