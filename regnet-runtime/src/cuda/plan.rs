//! A forward pass on the GPU as a list of kernel launches, derived once from the architecture:
//! the launcher runs it, and the compiler's instance list is read from it, so the two agree.

use std::collections::BTreeSet;

use regnet_spec::{Architecture, strided};

use super::Precision;
use super::source::{Kernel, Pointwise, Rows, Tile, tiles};

/// The workspace buffers a step reads or writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Buffer {
    /// The caller's images, NCHW.
    Input,
    /// The two buffers block inputs and outputs alternate between.
    Activation(usize),
    /// A projecting block's shortcut (its input through the 1×1 projection, strided with the
    /// block), added by the block's last 1×1 convolution.
    Shortcut,
    /// The bottleneck after the first 1×1 convolution.
    Reduced,
    /// The bottleneck after the grouped 3×3.
    Bottleneck,
    /// Per image and channel means (squeeze-excitation, and the head's pool).
    Mean,
    /// Per image and channel squeeze-excitation gates in (0, 1), `[batch][bottleneck width]`:
    /// they scale the input channels of the block's last 1×1 convolution.
    Gate,
    /// The classifier's outputs, `[batch][classes]`.
    Logits,
    /// One kept feature map, NCHW, for the whole batch: it starts `offset × batch` floats into
    /// the features buffer, `offset` being the floats per image of the maps before it.
    StageOutputs(usize),
}

/// Which checkpoint tensors a step's weights come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
///
/// Block indices count the network's blocks from 0, across stages. Convolutions come with their
/// BatchNorm folded in, as a weight with the output channels last and a bias.
pub enum Weights {
    /// The stem's 3×3 convolution: weight `[3 (ci)][3 (ky)][3 (kx)][stem width]`, bias.
    Stem,
    /// A block's 1×1 shortcut projection (strided with the block): weight `[in width][width]`,
    /// bias.
    Projection(usize),
    /// A block's first 1×1 convolution: weight `[in width][bottleneck width]`, bias.
    Reduce(usize),
    /// A block's grouped 3×3 convolution: weight `[group width][3][3][bottleneck width]`, bias.
    Grouped(usize),
    /// A block's squeeze-excitation: W1 `[hidden][channels]`, b1, W2 `[hidden][channels]`
    /// (transposed from PyTorch's `[channels][hidden]`), b2.
    Excite(usize),
    /// A block's last 1×1 convolution: weight `[bottleneck width][width]`, bias.
    Expand(usize),
    /// The head's fully connected layer: weight `[last width][classes]`, bias.
    Classifier,
}

/// One kernel launch. A `Pointwise` kernel's tile is chosen at launch from the batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Step {
    /// The kernel instance; a `Pointwise` kernel's tile here is a placeholder (`Wide`).
    pub kernel: Kernel,
    /// The buffer the kernel reads (for `Excite`, the channel means).
    pub input: Buffer,
    /// The buffer the kernel writes; never one of the buffers it reads.
    pub output: Buffer,
    /// The squeeze-excitation gates that scale a 1×1 convolution's input channels per image
    /// (the last 1×1 of a block with SE).
    pub gate: Option<Buffer>,
    /// The shortcut a 1×1 convolution adds before its ReLU (the last 1×1 of every block): the
    /// block's input, or `Shortcut` where the block projects.
    pub residual: Option<Buffer>,
    /// A 1×1 convolution ends with ReLU (all but the shortcut projection and the classifier).
    pub relu: bool,
    /// Where a 1×1 convolution's rows are (unused by other kernels).
    pub rows: Rows,
    /// The tensors the kernel takes after its input, in order; `None` for the weightless
    /// means and NCHW copies.
    pub weights: Option<Weights>,
}

impl Step {
    fn new(kernel: Kernel, input: Buffer, output: Buffer, weights: Option<Weights>) -> Self {
        Step {
            kernel,
            input,
            output,
            gate: None,
            residual: None,
            relu: true,
            rows: Rows {
                input_size: 1,
                output_size: 1,
                stride: 1,
            },
            weights,
        }
    }
}

/// The launches of a forward pass; with `features`, also the copies of the stem's and every
/// stage's output into the features buffer (NCHW).
pub fn steps(architecture: &Architecture<'_>, features: bool) -> Vec<Step> {
    let stem_size = architecture.stem_size();
    let mut steps = vec![Step::new(
        Kernel::Stem {
            channels: architecture.stem_width,
            input_size: architecture.resolution,
            output_size: stem_size,
        },
        Buffer::Input,
        Buffer::Activation(0),
        Some(Weights::Stem),
    )];
    let mut features_offset = 0;
    let mut keep = |steps: &mut Vec<Step>, channels: usize, size: usize, from: Buffer| {
        if features {
            steps.push(Step::new(
                Kernel::ToNchw {
                    channels,
                    pixels: size * size,
                },
                from,
                Buffer::StageOutputs(features_offset),
                None,
            ));
        }
        features_offset += channels * size * size;
    };
    keep(
        &mut steps,
        architecture.stem_width,
        stem_size,
        Buffer::Activation(0),
    );
    let mut current = 0;
    for (index, block) in architecture.blocks().enumerate() {
        let input = Buffer::Activation(current);
        let output = Buffer::Activation(1 - current);
        // A 1×1 convolution of this block, reading `input_size` pixels with `stride`.
        let pointwise = |inputs, outputs, input_size, stride, input, output, weights| Step {
            rows: Rows {
                input_size,
                output_size: strided(input_size, stride),
                stride,
            },
            ..Step::new(
                Kernel::Pointwise(Pointwise {
                    inputs,
                    outputs,
                    tile: Tile::Wide,
                }),
                input,
                output,
                Some(weights),
            )
        };
        let residual = if block.has_projection() {
            steps.push(Step {
                relu: false,
                ..pointwise(
                    block.in_width,
                    block.width,
                    block.in_size,
                    block.stride,
                    input,
                    Buffer::Shortcut,
                    Weights::Projection(index),
                )
            });
            Buffer::Shortcut
        } else {
            input
        };
        let w_b = block.bottleneck_width;
        steps.push(pointwise(
            block.in_width,
            w_b,
            block.in_size,
            1,
            input,
            Buffer::Reduced,
            Weights::Reduce(index),
        ));
        steps.push(Step::new(
            Kernel::Grouped {
                channels: w_b,
                group_width: w_b / block.groups,
                input_size: block.in_size,
                output_size: block.out_size,
                stride: block.stride,
            },
            Buffer::Reduced,
            Buffer::Bottleneck,
            Some(Weights::Grouped(index)),
        ));
        let pixels = block.out_size * block.out_size;
        if let Some(hidden) = block.se_width {
            steps.push(Step::new(
                Kernel::ChannelMean {
                    channels: w_b,
                    pixels,
                },
                Buffer::Bottleneck,
                Buffer::Mean,
                None,
            ));
            steps.push(Step::new(
                Kernel::Excite {
                    channels: w_b,
                    hidden,
                },
                Buffer::Mean,
                Buffer::Gate,
                Some(Weights::Excite(index)),
            ));
        }
        steps.push(Step {
            gate: block.se_width.map(|_| Buffer::Gate),
            residual: Some(residual),
            ..pointwise(
                w_b,
                block.width,
                block.out_size,
                1,
                Buffer::Bottleneck,
                output,
                Weights::Expand(index),
            )
        });
        current = 1 - current;
        if block.index == architecture.stages[block.stage - 1].depth {
            keep(&mut steps, block.width, block.out_size, output);
        }
    }
    let last = (
        architecture.last_width(),
        architecture.stages.last().map_or(stem_size, |s| s.out_size),
    );
    steps.push(Step::new(
        Kernel::ChannelMean {
            channels: last.0,
            pixels: last.1 * last.1,
        },
        Buffer::Activation(current),
        Buffer::Mean,
        None,
    ));
    steps.push(Step {
        relu: false,
        ..Step::new(
            Kernel::Pointwise(Pointwise {
                inputs: last.0,
                outputs: architecture.num_classes,
                tile: Tile::Wide,
            }),
            Buffer::Mean,
            Buffer::Logits,
            Some(Weights::Classifier),
        )
    });
    steps
}

/// Every instance a forward pass of `architecture` may launch (features included).
pub fn kernels(architecture: &Architecture<'_>, precision: Precision) -> BTreeSet<Kernel> {
    let mut set = BTreeSet::new();
    let mut pointwise = |p: Pointwise| {
        for tile in tiles(precision) {
            set.insert(Kernel::Pointwise(Pointwise { tile, ..p }));
        }
    };
    let mut others = Vec::new();
    for step in steps(architecture, true) {
        match step.kernel {
            Kernel::Pointwise(p) => pointwise(p),
            kernel => others.push(kernel),
        }
    }
    set.extend(others);
    set
}
