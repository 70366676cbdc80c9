//! Weights in the framework's own, naming-independent form: one entry per layer, f32, in
//! PyTorch's tensor layouts. Checkpoints of any naming scheme load into this; the CPU backend
//! folds and packs it, and other backends can upload it.

mod error;
mod load;
mod naming;
mod random;

pub use error::LoadError;
pub use load::{decode_f32, load, load_bytes};
pub use naming::{Scheme, expected_tensors};

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
        let bn = &self.bn;
        let outputs = bn.weight.len();
        let per_output = self.weight.len() / outputs;
        let mut weight = Vec::with_capacity(self.weight.len());
        let mut bias = Vec::with_capacity(outputs);
        for o in 0..outputs {
            let scale = f64::from(bn.weight[o]) / (f64::from(bn.running_var[o]) + BN_EPS).sqrt();
            weight.extend(
                self.weight[o * per_output..(o + 1) * per_output]
                    .iter()
                    .map(|&w| (f64::from(w) * scale) as f32),
            );
            bias.push((f64::from(bn.bias[o]) - f64::from(bn.running_mean[o]) * scale) as f32);
        }
        Linear { weight, bias }
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

/// A plan step's weights, as the checkpoint has them, for a backend to fold and pack or upload.
pub(crate) enum StepWeights<'a> {
    /// A convolution with its BatchNorm (the stem, and the blocks' convolutions).
    Convolution(&'a ConvBn),
    /// Squeeze-and-excitation's two layers.
    SqueezeExcite(&'a SqueezeExcite),
    /// The classifier.
    Classifier(&'a Linear),
}

impl NetworkWeights {
    /// The weights of `step`; `None` for steps without weights. The loader guarantees a
    /// projection and SE exactly where the architecture, and so the plan, has them.
    pub(crate) fn of(&self, step: &Step) -> Option<StepWeights<'_>> {
        if !step.has_weights() {
            return None;
        }
        let block = self.blocks.get(step.block);
        match step.part {
            Part::Stem => Some(StepWeights::Convolution(&self.stem)),
            Part::Projection => block?.projection.as_ref().map(StepWeights::Convolution),
            Part::Reduce => Some(StepWeights::Convolution(&block?.reduce)),
            Part::Grouped => Some(StepWeights::Convolution(&block?.grouped)),
            Part::SqueezeExcite => block?
                .squeeze_excite
                .as_ref()
                .map(StepWeights::SqueezeExcite),
            Part::Expand => Some(StepWeights::Convolution(&block?.expand)),
            Part::Head => Some(StepWeights::Classifier(&self.classifier)),
            Part::Kept => None,
        }
    }
}
