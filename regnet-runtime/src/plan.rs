//! The forward pass as data: the ordered steps every backend runs (the CPU executes them, CUDA
//! launches them), the profiler times and the workspace is sized from. Each step says what it
//! computes ([`Op`]), which buffers it reads and writes (by [`Buffer`] role), what it applies on
//! the way out ([`Fused`]), its flops as pycls counts them and where it belongs ([`Part`],
//! stage). A fused step (several layers in one pass over a row band) is one more [`Op`], with the
//! buffers it no longer needs left out of its step.
//!
//! The steps are made by `const fn`s, so that the workspace's sizes (`WorkspaceLayout::of`, a
//! `const fn` whose result a generated network keeps as a constant) come from the same steps as
//! the passes that use them.

use regnet_spec::{Architecture, Block, INPUT_CHANNELS};

/// A buffer of a forward pass, by the role it plays. Every role is one buffer, sized per image
/// by `WorkspaceLayout`; the two activation buffers are the only pair.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Buffer {
    /// The images, NCHW, with room for a one-pixel zero border: the CPU copies the caller's
    /// images in bordered (its stem then reads no bounds), the GPU copies them dense.
    Images,
    /// One of the two buffers (0 and 1) that block inputs and outputs alternate between, NHWC.
    Activation(usize),
    /// A projecting block's shortcut (its input through the strided 1×1 projection), added by
    /// the block's last 1×1 convolution.
    Shortcut,
    /// The bottleneck after the block's first 1×1 convolution, with room for a one-pixel zero
    /// border: the CPU's grouped 3×3 reads it bordered, the GPU's reads it dense.
    Reduced,
    /// The bottleneck after the grouped 3×3.
    Bottleneck,
    /// Per image and channel means (squeeze-excitation's squeeze, and the head's pool).
    Pooled,
    /// Squeeze-excitation's hidden layer, per image (the CPU's; the GPU keeps it in shared
    /// memory).
    Hidden,
    /// Per image and channel squeeze-excitation gates in (0, 1): they scale the input channels
    /// of the block's last 1×1 convolution.
    Gate,
    /// The classifier's outputs, `[batch][classes]`.
    Logits,
    /// The kept feature maps: the stem's and every stage's output, NCHW, one map after
    /// another, each for the whole batch (only in workspaces that keep features).
    Kept,
}

impl Buffer {
    /// How many roles there are (the two activation buffers count as two).
    pub const COUNT: usize = 11;

    /// Every role, in the order of [`Buffer::index`].
    pub const ALL: [Buffer; Buffer::COUNT] = [
        Buffer::Images,
        Buffer::Activation(0),
        Buffer::Activation(1),
        Buffer::Shortcut,
        Buffer::Reduced,
        Buffer::Bottleneck,
        Buffer::Pooled,
        Buffer::Hidden,
        Buffer::Gate,
        Buffer::Logits,
        Buffer::Kept,
    ];

    /// The role's place in per-role arrays (sizes, allocations), `0..COUNT`.
    pub const fn index(self) -> usize {
        match self {
            Buffer::Images => 0,
            Buffer::Activation(0) => 1,
            Buffer::Activation(_) => 2,
            Buffer::Shortcut => 3,
            Buffer::Reduced => 4,
            Buffer::Bottleneck => 5,
            Buffer::Pooled => 6,
            Buffer::Hidden => 7,
            Buffer::Gate => 8,
            Buffer::Logits => 9,
            Buffer::Kept => 10,
        }
    }

    /// Whether the buffer has room for (and on the CPU holds) a one-pixel zero border around
    /// each map: the inputs of the 3×3 convolutions.
    pub const fn bordered(self) -> bool {
        matches!(self, Buffer::Images | Buffer::Reduced)
    }
}

/// Where a 1×1 convolution's rows are: output pixel (image, y, x) of an `output_size`² map reads
/// input pixel (image, y·stride, x·stride) of an `input_size`² map.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Rows {
    /// Side of the square input map, in pixels (1 for the classifier).
    pub input_size: usize,
    /// Side of the square output map, `strided(input_size, stride)`.
    pub output_size: usize,
    /// The spatial stride: the block's (1 or 2) for its shortcut projection, else 1.
    pub stride: usize,
}

/// What a step computes. Sizes are the sides of square maps in pixels; channels count per image.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Op {
    /// The stem: 3×3, stride 2, zero padding 1, from NCHW RGB images to NHWC.
    Stem {
        /// Output channels (the stem width).
        channels: usize,
        /// Side of the input images (the resolution).
        input_size: usize,
        /// Side of the output map.
        output_size: usize,
    },
    /// A 1×1 convolution (or the classifier, at size 1) as a GEMM over pixels × channels.
    Pointwise {
        /// Input channels: the GEMM's reduction length K.
        inputs: usize,
        /// Output channels: the GEMM's width N.
        outputs: usize,
        /// Where its rows are read and written.
        rows: Rows,
    },
    /// A block's grouped 3×3 convolution, zero padding 1, NHWC to NHWC.
    Grouped {
        /// Channels in and out (the bottleneck width).
        channels: usize,
        /// Channels per group: each output channel reads only its group's inputs.
        group_width: usize,
        /// Side of the input map.
        input_size: usize,
        /// Side of the output map, `strided(input_size, stride)`.
        output_size: usize,
        /// The stage's stride (1 or 2) in its first block, else 1.
        stride: usize,
    },
    /// Per image and channel, the mean over an NHWC map's pixels (SE's squeeze, the head's
    /// pool).
    Pool {
        /// Channels of the map.
        channels: usize,
        /// Pixels per image (height × width).
        pixels: usize,
    },
    /// Squeeze-excitation's two small layers, from the channel means to the gates:
    /// sigmoid(expand(ReLU(reduce(mean)))).
    Excite {
        /// Channels gated (the bottleneck width).
        channels: usize,
        /// Hidden units (the SE width).
        hidden: usize,
    },
    /// An NHWC map copied out as NCHW, into the features buffer.
    ToNchw {
        /// Channels of the map.
        channels: usize,
        /// Pixels per image (height × width).
        pixels: usize,
        /// Floats per image of the maps before it in the features buffer: this one starts
        /// `offset × batch` floats in.
        offset: usize,
    },
}

/// What a step applies besides its op, in this order: the input channels scaled by the gate,
/// the bias (every step with weights has one, BatchNorm folded in), the residual added, ReLU.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fused {
    /// Squeeze-excitation gates that scale the input channels per image (the last 1×1 of a
    /// block with SE).
    pub gate: Option<Buffer>,
    /// The shortcut added before the ReLU (the last 1×1 of every block): the block's input, or
    /// [`Buffer::Shortcut`] where the block projects.
    pub residual: Option<Buffer>,
    /// Whether it ends with ReLU.
    pub relu: bool,
}

impl Fused {
    const NOTHING: Fused = Fused {
        gate: None,
        residual: None,
        relu: false,
    };
    const RELU: Fused = Fused {
        relu: true,
        ..Fused::NOTHING
    };
}

/// The layer of the network a step belongs to: the profile's label, and which checkpoint
/// tensors the step's weights are.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Part {
    /// The stem's stride-2 3×3 convolution (with BN and ReLU).
    Stem,
    /// A block's shortcut projection: a strided 1×1 convolution with BN.
    Projection,
    /// A block's first 1×1 convolution, into the bottleneck (with BN and ReLU).
    Reduce,
    /// A block's grouped 3×3 convolution (with BN and ReLU).
    Grouped,
    /// A block's squeeze-and-excitation: the channel means and the two small layers.
    SqueezeExcite,
    /// A block's last 1×1 convolution (with BN), the SE gate, the residual add and ReLU.
    Expand,
    /// The global average pool and the classifier.
    Head,
    /// A copy of the stem's or a stage's output into the kept feature maps (only in passes
    /// that keep features).
    Kept,
}

/// One step of the forward pass.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Step {
    /// What it computes.
    pub op: Op,
    /// The buffer it reads (the caller's images for the stem).
    pub input: Buffer,
    /// The buffer it writes; never one it reads.
    pub output: Buffer,
    /// What it applies besides its op.
    pub fused: Fused,
    /// A buffer it uses in between ([`Buffer::Hidden`] for [`Op::Excite`] on the CPU).
    pub scratch: Option<Buffer>,
    /// The layer it belongs to.
    pub part: Part,
    /// 0 for the stem, 1.. for the stages, one past the last stage for the head.
    pub stage: usize,
    /// The block it belongs to, counting the network's blocks from 0 across stages (0 outside
    /// blocks): with `part`, which tensors its weights are.
    pub block: usize,
    /// Multiply-adds per image, as pycls counts them (biases only where the layer has its own:
    /// SE and the classifier; pooling, copies and element-wise work free).
    pub flops: u64,
}

/// The most steps of one block: projection, reduce, grouped, pool, excite, expand.
pub const BLOCK_STEPS: usize = 6;

impl Step {
    const fn new(op: Op, input: Buffer, output: Buffer, part: Part, stage: usize) -> Step {
        Step {
            op,
            input,
            output,
            fused: Fused::RELU,
            scratch: None,
            part,
            stage,
            block: 0,
            flops: 0,
        }
    }

    /// Whether a pass runs the step: every one, but the copies into the kept maps only in
    /// passes that keep features.
    pub fn runs(&self, features: bool) -> bool {
        features || self.part != Part::Kept
    }

    /// Whether the step has weights (convolutions, the SE layers and the classifier).
    pub const fn has_weights(&self) -> bool {
        !matches!(self.op, Op::Pool { .. } | Op::ToNchw { .. })
    }

    /// Every buffer the step touches, with the floats per image it reaches in it (the sizing
    /// of each role is the largest of these).
    pub const fn reaches(&self) -> [Option<(Buffer, usize)>; 5] {
        let (read, written) = match self.op {
            Op::Stem {
                channels,
                input_size,
                output_size,
            } => (
                INPUT_CHANNELS * (input_size + 2) * (input_size + 2),
                channels * output_size * output_size,
            ),
            Op::Pointwise {
                inputs,
                outputs,
                rows,
            } => {
                let side = if self.output.bordered() {
                    rows.output_size + 2
                } else {
                    rows.output_size
                };
                (
                    inputs * rows.input_size * rows.input_size,
                    outputs * side * side,
                )
            }
            Op::Grouped {
                channels,
                input_size,
                output_size,
                ..
            } => (
                channels * (input_size + 2) * (input_size + 2),
                channels * output_size * output_size,
            ),
            Op::Pool { channels, pixels } => (channels * pixels, channels),
            Op::Excite { channels, .. } => (channels, channels),
            Op::ToNchw {
                channels,
                pixels,
                offset,
            } => (channels * pixels, offset + channels * pixels),
        };
        let residual = match (self.fused.residual, self.op) {
            (Some(buffer), Op::Pointwise { outputs, rows, .. }) => {
                Some((buffer, outputs * rows.output_size * rows.output_size))
            }
            _ => None,
        };
        let gate = match (self.fused.gate, self.op) {
            (Some(buffer), Op::Pointwise { inputs, .. }) => Some((buffer, inputs)),
            _ => None,
        };
        let scratch = match (self.scratch, self.op) {
            (Some(buffer), Op::Excite { hidden, .. }) => Some((buffer, hidden)),
            _ => None,
        };
        [
            Some((self.input, read)),
            Some((self.output, written)),
            residual,
            gate,
            scratch,
        ]
    }
}

/// The stem's step, from the images into activation buffer 0.
pub const fn stem(architecture: &Architecture<'_>) -> Step {
    let (channels, size) = (architecture.stem_width, architecture.stem_size());
    Step {
        flops: (INPUT_CHANNELS * 9 * channels * size * size) as u64,
        ..Step::new(
            Op::Stem {
                channels,
                input_size: architecture.resolution,
                output_size: size,
            },
            Buffer::Images,
            Buffer::Activation(0),
            Part::Stem,
            0,
        )
    }
}

/// A 1×1 convolution of block `number` of `stage`, reading `input_size`² pixels with `stride`.
#[allow(clippy::too_many_arguments)]
const fn pointwise(
    stage: usize,
    number: usize,
    inputs: usize,
    outputs: usize,
    input_size: usize,
    stride: usize,
    (input, output): (Buffer, Buffer),
    part: Part,
    fused: Fused,
) -> Step {
    let output_size = regnet_spec::strided(input_size, stride);
    Step {
        fused,
        block: number,
        flops: (inputs * outputs * output_size * output_size) as u64,
        ..Step::new(
            Op::Pointwise {
                inputs,
                outputs,
                rows: Rows {
                    input_size,
                    output_size,
                    stride,
                },
            },
            input,
            output,
            part,
            stage,
        )
    }
}

/// The steps of block `number` (counted from 0 across stages), reading `input` and writing
/// `output` (the two activation buffers); `None` where the block has no such step.
pub const fn block(
    block: &Block,
    number: usize,
    input: Buffer,
    output: Buffer,
) -> [Option<Step>; BLOCK_STEPS] {
    let (w_in, w, w_b, stage) = (
        block.in_width,
        block.width,
        block.bottleneck_width,
        block.stage,
    );
    let (h_in, h_out) = (block.in_size, block.out_size);
    let projects = block.has_projection();
    let projection = if projects {
        Some(pointwise(
            stage,
            number,
            w_in,
            w,
            h_in,
            block.stride,
            (input, Buffer::Shortcut),
            Part::Projection,
            Fused::NOTHING,
        ))
    } else {
        None
    };
    let reduce = pointwise(
        stage,
        number,
        w_in,
        w_b,
        h_in,
        1,
        (input, Buffer::Reduced),
        Part::Reduce,
        Fused::RELU,
    );
    let group_width = w_b / block.groups;
    let grouped = Step {
        block: number,
        flops: (9 * w_b * group_width * h_out * h_out) as u64,
        ..Step::new(
            Op::Grouped {
                channels: w_b,
                group_width,
                input_size: h_in,
                output_size: h_out,
                stride: block.stride,
            },
            Buffer::Reduced,
            Buffer::Bottleneck,
            Part::Grouped,
            stage,
        )
    };
    let (pool, excite, gate) = match block.se_width {
        Some(hidden) => (
            Some(Step {
                fused: Fused::NOTHING,
                block: number,
                ..Step::new(
                    Op::Pool {
                        channels: w_b,
                        pixels: h_out * h_out,
                    },
                    Buffer::Bottleneck,
                    Buffer::Pooled,
                    Part::SqueezeExcite,
                    stage,
                )
            }),
            Some(Step {
                // pycls counts both layers' biases.
                flops: (2 * w_b * hidden + hidden + w_b) as u64,
                scratch: Some(Buffer::Hidden),
                fused: Fused::NOTHING,
                block: number,
                ..Step::new(
                    Op::Excite {
                        channels: w_b,
                        hidden,
                    },
                    Buffer::Pooled,
                    Buffer::Gate,
                    Part::SqueezeExcite,
                    stage,
                )
            }),
            Some(Buffer::Gate),
        ),
        None => (None, None, None),
    };
    let expand = pointwise(
        stage,
        number,
        w_b,
        w,
        h_out,
        1,
        (Buffer::Bottleneck, output),
        Part::Expand,
        Fused {
            gate,
            residual: Some(if projects { Buffer::Shortcut } else { input }),
            relu: true,
        },
    );
    [
        projection,
        Some(reduce),
        Some(grouped),
        pool,
        excite,
        Some(expand),
    ]
}

/// A kept feature map: the stem's output (index 0) or stage `index`'s.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeptMap {
    /// Channels of the map.
    pub channels: usize,
    /// Side of the square map, in pixels.
    pub size: usize,
    /// Floats per image of the maps before it: it starts `offset × batch` floats into the
    /// kept-maps buffer.
    pub offset: usize,
}

/// Kept map `index` of `architecture` (0 the stem's, 1.. the stages'), the maps one after
/// another in the kept-maps buffer.
pub const fn kept_map(architecture: &Architecture<'_>, index: usize) -> KeptMap {
    let mut map = KeptMap {
        channels: architecture.stem_width,
        size: architecture.stem_size(),
        offset: 0,
    };
    let mut stage = 1;
    while stage <= index {
        let s = &architecture.stages[stage - 1];
        map = KeptMap {
            channels: s.width,
            size: s.out_size,
            offset: map.offset + map.channels * map.size * map.size,
        };
        stage += 1;
    }
    map
}

/// The copy of kept map `index` (see [`kept_map`]) from `from` into the kept-maps buffer.
pub const fn keep(architecture: &Architecture<'_>, index: usize, from: Buffer) -> Step {
    let map = kept_map(architecture, index);
    Step {
        fused: Fused::NOTHING,
        ..Step::new(
            Op::ToNchw {
                channels: map.channels,
                pixels: map.size * map.size,
                offset: map.offset,
            },
            from,
            Buffer::Kept,
            Part::Kept,
            index,
        )
    }
}

/// The head's steps, from the last stage's output in `from`: the global average pool and the
/// classifier.
pub const fn head(architecture: &Architecture<'_>, from: Buffer) -> [Step; 2] {
    let stages = architecture.stages.len();
    let (channels, size) = match architecture.stages.last() {
        Some(last) => (last.width, last.out_size),
        None => (architecture.stem_width, architecture.stem_size()),
    };
    let classes = architecture.num_classes;
    let stage = stages + 1;
    [
        Step {
            fused: Fused::NOTHING,
            ..Step::new(
                Op::Pool {
                    channels,
                    pixels: size * size,
                },
                from,
                Buffer::Pooled,
                Part::Head,
                stage,
            )
        },
        Step {
            // pycls counts the classifier's bias.
            flops: (channels * classes + classes) as u64,
            fused: Fused::NOTHING,
            ..Step::new(
                Op::Pointwise {
                    inputs: channels,
                    outputs: classes,
                    rows: Rows {
                        input_size: 1,
                        output_size: 1,
                        stride: 1,
                    },
                },
                Buffer::Pooled,
                Buffer::Logits,
                Part::Head,
                stage,
            )
        },
    ]
}

/// The ordered steps of a forward pass, the copies into the features buffer included (a pass
/// that keeps no features skips them).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    steps: Vec<Step>,
}

impl Plan {
    /// The plan of `architecture`'s forward pass.
    pub fn new(architecture: &Architecture<'_>) -> Plan {
        let mut steps = vec![
            stem(architecture),
            keep(architecture, 0, Buffer::Activation(0)),
        ];
        let mut current = 0;
        for (number, geometry) in architecture.blocks().enumerate() {
            let output = Buffer::Activation(1 - current);
            steps.extend(
                block(&geometry, number, Buffer::Activation(current), output)
                    .into_iter()
                    .flatten(),
            );
            current = 1 - current;
            if geometry.index == architecture.stages[geometry.stage - 1].depth {
                steps.push(keep(architecture, geometry.stage, output));
            }
        }
        steps.extend(head(architecture, Buffer::Activation(current)));
        Plan { steps }
    }

    /// The steps, in the order they run.
    pub fn steps(&self) -> &[Step] {
        &self.steps
    }

    /// Multiply-adds per image of the whole pass: pycls's flops.
    pub fn flops(&self) -> u64 {
        self.steps.iter().map(|step| step.flops).sum()
    }
}
