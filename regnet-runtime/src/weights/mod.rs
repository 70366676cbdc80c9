//! Weights in the framework's own, naming-independent form: one entry per layer, f32, in
//! PyTorch's tensor layouts. Checkpoints of any naming scheme load into this; the CPU backend
//! folds and packs it, and other backends can upload it.

mod error;
mod load;
mod naming;
mod random;

pub use error::LoadError;
pub use load::{load, load_bytes};
pub use naming::{Scheme, expected_tensors};

/// BatchNorm statistics and affine parameters (eval mode), each of length C.
#[derive(Clone, Debug, PartialEq)]
pub struct BatchNorm {
    pub weight: Vec<f32>,
    pub bias: Vec<f32>,
    pub running_mean: Vec<f32>,
    pub running_var: Vec<f32>,
}

/// A bias-free convolution followed by BatchNorm. `weight` is PyTorch's
/// `[out_channels][in_channels / groups][k][k]`, row-major.
#[derive(Clone, Debug, PartialEq)]
pub struct ConvBn {
    pub weight: Vec<f32>,
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
    pub weight: Vec<f32>,
    pub bias: Vec<f32>,
}

/// Squeeze-and-excitation: `reduce` is w_b → w_se, `expand` is w_se → w_b.
#[derive(Clone, Debug, PartialEq)]
pub struct SqueezeExcite {
    pub reduce: Linear,
    pub expand: Linear,
}

/// One residual bottleneck block.
#[derive(Clone, Debug, PartialEq)]
pub struct BlockWeights {
    /// The shortcut's 1×1 projection, present iff the block changes shape.
    pub proj: Option<ConvBn>,
    pub a: ConvBn,
    pub b: ConvBn,
    pub se: Option<SqueezeExcite>,
    pub c: ConvBn,
}

/// A whole network's weights; `blocks` in forward order (as `Architecture::blocks()`).
#[derive(Clone, Debug, PartialEq)]
pub struct NetworkWeights {
    pub stem: ConvBn,
    pub blocks: Vec<BlockWeights>,
    pub fc: Linear,
}
