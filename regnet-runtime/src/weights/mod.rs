//! Weights in the framework's own, naming-independent form: one entry per layer, f32, in
//! PyTorch's tensor layouts. Checkpoints of any naming scheme load into this; the CPU backend
//! folds and packs it, and other backends can upload it.

mod error;
mod load;
mod naming;
mod pytorch;
mod random;

pub use error::{LISTED_KEYS, LoadError};
pub use load::{CheckpointSource, IN_MEMORY, decode_f32, load, load_bytes, pytorch_to_safetensors};
pub(crate) use load::{Recycled, load_steps};
pub use naming::{Scheme, expected_tensors};

use std::borrow::Cow;

use crate::plan::{Part, Step};

/// BatchNorm statistics and affine parameters (eval mode), each of length C.
#[derive(Clone, Debug, PartialEq)]
pub struct BatchNorm {
    /// The scale γ.
    pub weight: Vec<f32>,
    /// The shift β.
    pub bias: Vec<f32>,
    /// The running mean μ used in eval mode.
    pub running_mean: Vec<f32>,
    /// The running variance σ² used in eval mode (ε is added when folding).
    pub running_var: Vec<f32>,
}

/// A bias-free convolution followed by BatchNorm. `weight` is PyTorch's
/// `[out_channels][in_channels / groups][k][k]`, row-major.
#[derive(Clone, Debug, PartialEq)]
pub struct ConvBn {
    /// The convolution kernel, `[out_channels][in_channels / groups][k][k]`.
    pub weight: Vec<f32>,
    /// The BatchNorm over the convolution's `out_channels` outputs.
    pub bn: BatchNorm,
}

/// PyTorch's BatchNorm epsilon in pycls, torchvision and timm.
const BN_EPS: f64 = 1e-5;

impl ConvBn {
    /// Folds eval-mode BatchNorm into the convolution: per output channel,
    /// w' = w·γ/√(σ² + ε) and b' = β − μ·γ/√(σ² + ε), computed in f64. Every backend runs
    /// these folded weights.
    pub fn fold(&self) -> Linear {
        self.clone().into_folded()
    }

    /// [`ConvBn::fold`] in place: the folded weights take the convolution's memory and the bias
    /// β's, so folding a layer read from a checkpoint costs no new allocation.
    pub fn into_folded(self) -> Linear {
        let ConvBn {
            mut weight,
            bn:
                BatchNorm {
                    weight: gamma,
                    bias: mut beta,
                    running_mean,
                    running_var,
                },
        } = self;
        // At least 1, so that a malformed layer without outputs folds to nothing instead of panicking.
        let per_output = (weight.len() / gamma.len().max(1)).max(1);
        for (o, (outputs, beta)) in weight
            .chunks_exact_mut(per_output)
            .zip(&mut beta)
            .enumerate()
        {
            let scale = f64::from(gamma[o]) / (f64::from(running_var[o]) + BN_EPS).sqrt();
            for w in outputs {
                *w = (f64::from(*w) * scale) as f32;
            }
            *beta = (f64::from(*beta) - f64::from(running_mean[o]) * scale) as f32;
        }
        Linear { weight, bias: beta }
    }
}

/// A fully connected layer (also the SE's 1×1 convolutions): `weight` is `[out][in]`, row-major.
#[derive(Clone, Debug, PartialEq)]
pub struct Linear {
    /// `[out][in]`, row-major (for a folded convolution, the convolution's own layout).
    pub weight: Vec<f32>,
    /// One entry per output.
    pub bias: Vec<f32>,
}

/// Squeeze-and-excitation's two layers, on the channel means of the bottleneck.
#[derive(Clone, Debug, PartialEq)]
pub struct SqueezeExcite {
    /// w_b → w_se, followed by ReLU: the hidden units.
    pub hidden: Linear,
    /// w_se → w_b, followed by the sigmoid: the channel gates.
    pub gate: Linear,
}

/// One residual bottleneck block.
#[derive(Clone, Debug, PartialEq)]
pub struct BlockWeights {
    /// The shortcut's 1×1 projection, present iff the block changes shape (pycls `proj`).
    pub projection: Option<ConvBn>,
    /// The 1×1 convolution from the block's input width to the bottleneck width, then ReLU
    /// (pycls `f.a`).
    pub reduce: ConvBn,
    /// The grouped 3×3 convolution over the bottleneck, with the block's stride, then ReLU
    /// (pycls `f.b`).
    pub grouped: ConvBn,
    /// Squeeze-and-excitation on the bottleneck, present iff the architecture has SE.
    pub squeeze_excite: Option<SqueezeExcite>,
    /// The 1×1 convolution from the bottleneck to the block's output width, before the residual
    /// add (pycls `f.c`).
    pub expand: ConvBn,
}

/// A whole network's weights; `blocks` in forward order (as `Architecture::blocks()`).
#[derive(Clone, Debug, PartialEq)]
pub struct NetworkWeights {
    /// The stem's 3×3 convolution, RGB → stem width.
    pub stem: ConvBn,
    /// Every block of every stage, in forward order.
    pub blocks: Vec<BlockWeights>,
    /// The classifier, last width → classes (pycls `head.fc`).
    pub classifier: Linear,
}

/// A plan step's weights, as the checkpoint has them, for a backend to fold and pack or upload:
/// borrowed from a [`NetworkWeights`], or owned when read from a checkpoint step by step (and
/// then folded in place).
pub(crate) enum StepWeights<'a> {
    /// A convolution with its BatchNorm (the stem, and the blocks' convolutions).
    Convolution(Cow<'a, ConvBn>),
    /// Squeeze-and-excitation's two layers.
    SqueezeExcite(Cow<'a, SqueezeExcite>),
    /// The classifier.
    Classifier(Cow<'a, Linear>),
}

impl NetworkWeights {
    /// The weights of `step`; `None` for steps without weights. The loader guarantees a
    /// projection and SE exactly where the architecture, and so the plan, has them.
    pub(crate) fn of(&self, step: &Step) -> Option<StepWeights<'_>> {
        if !step.has_weights() {
            return None;
        }
        let block = self.blocks.get(step.block);
        let convolution = |conv| StepWeights::Convolution(Cow::Borrowed(conv));
        match step.part {
            Part::Stem => Some(convolution(&self.stem)),
            Part::Projection => block?.projection.as_ref().map(convolution),
            Part::Reduce => Some(convolution(&block?.reduce)),
            Part::Grouped => Some(convolution(&block?.grouped)),
            Part::SqueezeExcite => block?
                .squeeze_excite
                .as_ref()
                .map(|se| StepWeights::SqueezeExcite(Cow::Borrowed(se))),
            Part::Expand => Some(convolution(&block?.expand)),
            Part::Head => Some(StepWeights::Classifier(Cow::Borrowed(&self.classifier))),
            Part::Kept => None,
        }
    }
}
