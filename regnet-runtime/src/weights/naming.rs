//! Where each canonical tensor lives in the state dicts of pycls, torchvision and timm
//! (REFERENCE.md §4). One walk over the architecture ([`assemble`]) names every tensor in forward
//! order, so the expected key list, the loader, the error messages and the random weights cannot
//! disagree about which tensors exist or what shape they have.

use std::borrow::Cow;
use std::fmt;

use regnet_spec::{Architecture, Block, INPUT_CHANNELS};

use super::{BatchNorm, BlockWeights, ConvBn, Linear, NetworkWeights, SqueezeExcite, StepWeights};
use crate::plan::{Part, Step};

/// The state-dict naming of the library a checkpoint was saved from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Scheme {
    /// `torchvision.models.regnet_*`: `stem.0.weight`, `trunk_output.block1.block1-0.f.a.0.weight`.
    Torchvision,
    /// timm's `regnet*`: `stem.conv.weight`, `s1.b1.conv1.conv.weight`.
    Timm,
    /// pycls (and its `.pyth` zoo): `stem.conv.weight`, `s1.b1.f.a.weight`.
    Pycls,
}

impl Scheme {
    /// Every scheme, in the order of the enum's discriminants (which index vote counts).
    pub const ALL: [Scheme; 3] = [Scheme::Torchvision, Scheme::Timm, Scheme::Pycls];

    /// The library's name, as the specs' `compat:` field and the CLI spell it.
    pub const fn name(self) -> &'static str {
        match self {
            Scheme::Torchvision => "torchvision",
            Scheme::Timm => "timm",
            Scheme::Pycls => "pycls",
        }
    }

    /// The scheme most of `keys` are named in, or `None` if no key is recognizably from one of
    /// the three libraries (or two tie).
    ///
    /// Keys vote rather than one marker key deciding, so a checkpoint that lacks `s1.b1`'s
    /// tensors is still recognized and its missing keys can be listed.
    pub fn detect<'a>(keys: impl IntoIterator<Item = &'a str>) -> Option<Scheme> {
        let mut votes = [0usize; 3];
        for key in keys {
            if let Some(scheme) = classify(key) {
                votes[scheme as usize] += 1;
            }
        }
        let best = *votes.iter().max()?;
        let mut winners = Scheme::ALL
            .into_iter()
            .filter(|&s| votes[s as usize] == best);
        match (winners.next(), winners.next()) {
            (Some(scheme), None) if best > 0 => Some(scheme),
            _ => None,
        }
    }
}

impl fmt::Display for Scheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The scheme a single key can only come from. Stem and head keys are shared by pycls and timm,
/// so only block keys (and torchvision's distinct stem) decide.
fn classify(key: &str) -> Option<Scheme> {
    if key.starts_with("trunk_output.") || key.starts_with("stem.0.") || key.starts_with("stem.1.")
    {
        return Some(Scheme::Torchvision);
    }
    let rest = strip_block_prefix(key)?;
    let starts = |prefixes: &[&str]| prefixes.iter().any(|p| rest.starts_with(p));
    if starts(&["conv1.", "conv2.", "conv3.", "downsample.", "se."]) {
        Some(Scheme::Timm)
    } else if starts(&["f.", "proj.", "bn."]) {
        Some(Scheme::Pycls)
    } else {
        None
    }
}

/// `s<i>.b<j>.rest` → `rest`.
fn strip_block_prefix(key: &str) -> Option<&str> {
    let number = |s: &str, letter: char| -> Option<usize> {
        let digits = s.strip_prefix(letter)?;
        (!digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())).then_some(digits.len())
    };
    let mut parts = key.splitn(3, '.');
    let (stage, block, rest) = (parts.next()?, parts.next()?, parts.next()?);
    number(stage, 's')?;
    number(block, 'b')?;
    Some(rest)
}

/// Every tensor a checkpoint of `architecture` must hold under `scheme`, as (key, shape), in
/// forward order. `num_batches_tracked` is not listed: it is ignored wherever it appears.
pub fn expected_tensors(architecture: &Architecture, scheme: Scheme) -> Vec<(String, Vec<usize>)> {
    let mut expected = Vec::new();
    let Ok(_) = assemble(architecture, scheme, |slot| {
        expected.push((slot.key, slot.shape));
        Ok::<_, std::convert::Infallible>(Vec::new())
    });
    expected
}

/// What a tensor holds: enough for [`super::random`] to pick a distribution.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Role {
    ConvWeight { fan_in: usize },
    BnWeight,
    BnBias,
    BnMean,
    BnVar,
    LinearWeight { fan_in: usize },
    LinearBias,
}

/// One tensor of the network, named for a scheme.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Slot {
    pub key: String,
    pub shape: Vec<usize>,
    pub role: Role,
}

/// The convolutions that carry a BatchNorm.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Conv {
    Stem,
    Projection,
    Reduce,
    Grouped,
    Expand,
}

/// The key prefix of stage `stage`, block `index` (both 1-based, as in [`Block`]).
fn block_prefix(scheme: Scheme, stage: usize, index: usize) -> String {
    match scheme {
        // torchvision numbers blocks from 0 within a stage.
        Scheme::Torchvision => format!(
            "trunk_output.block{stage}.block{stage}-{}.",
            index.saturating_sub(1)
        ),
        Scheme::Timm | Scheme::Pycls => format!("s{stage}.b{index}."),
    }
}

/// (conv weight key, BN key prefix) within a block (or at the top level for the stem).
fn conv_bn_names(scheme: Scheme, conv: Conv) -> (&'static str, &'static str) {
    use Conv::*;
    match (scheme, conv) {
        (Scheme::Torchvision, Stem) => ("stem.0.weight", "stem.1."),
        (Scheme::Torchvision, Projection) => ("proj.0.weight", "proj.1."),
        (Scheme::Torchvision, Reduce) => ("f.a.0.weight", "f.a.1."),
        (Scheme::Torchvision, Grouped) => ("f.b.0.weight", "f.b.1."),
        (Scheme::Torchvision, Expand) => ("f.c.0.weight", "f.c.1."),
        (Scheme::Timm, Stem) | (Scheme::Pycls, Stem) => ("stem.conv.weight", "stem.bn."),
        (Scheme::Timm, Projection) => ("downsample.conv.weight", "downsample.bn."),
        (Scheme::Timm, Reduce) => ("conv1.conv.weight", "conv1.bn."),
        (Scheme::Timm, Grouped) => ("conv2.conv.weight", "conv2.bn."),
        (Scheme::Timm, Expand) => ("conv3.conv.weight", "conv3.bn."),
        (Scheme::Pycls, Projection) => ("proj.weight", "bn."),
        (Scheme::Pycls, Reduce) => ("f.a.weight", "f.a_bn."),
        (Scheme::Pycls, Grouped) => ("f.b.weight", "f.b_bn."),
        (Scheme::Pycls, Expand) => ("f.c.weight", "f.c_bn."),
    }
}

/// Key prefixes of the SE's hidden and gate layers (1×1 convolutions) within a block.
fn se_names(scheme: Scheme) -> (&'static str, &'static str) {
    match scheme {
        Scheme::Torchvision => ("f.se.fc1.", "f.se.fc2."),
        Scheme::Timm => ("se.fc1.", "se.fc2."),
        // f_ex.1 and f_ex.3 are the ReLU and the sigmoid.
        Scheme::Pycls => ("f.se.f_ex.0.", "f.se.f_ex.2."),
    }
}

fn head_prefix(scheme: Scheme) -> &'static str {
    match scheme {
        Scheme::Torchvision => "fc.",
        Scheme::Timm | Scheme::Pycls => "head.fc.",
    }
}

/// The weight key of a block's convolution, for reading a checkpoint's widths in error hints.
pub(crate) fn block_conv_key(scheme: Scheme, stage: usize, index: usize, conv: Conv) -> String {
    format!(
        "{}{}",
        block_prefix(scheme, stage, index),
        conv_bn_names(scheme, conv).0
    )
}

/// The weight key of a block's SE reduce convolution.
pub(crate) fn block_se_key(scheme: Scheme, stage: usize, index: usize) -> String {
    format!(
        "{}{}weight",
        block_prefix(scheme, stage, index),
        se_names(scheme).0
    )
}

pub(crate) fn head_weight_key(scheme: Scheme) -> String {
    format!("{}weight", head_prefix(scheme))
}

/// Walks `architecture` in forward order, asking `tensor` for each tensor's values, and builds
/// the network's weights from the answers. The walk order is the order of
/// [`expected_tensors`].
pub(crate) fn assemble<E>(
    architecture: &Architecture,
    scheme: Scheme,
    mut tensor: impl FnMut(Slot) -> Result<Vec<f32>, E>,
) -> Result<NetworkWeights, E> {
    let mut walker = Walker {
        scheme,
        tensor: &mut tensor,
    };
    let stem = walker.stem(architecture)?;
    let mut blocks = Vec::new();
    for block in architecture.blocks() {
        blocks.push(walker.block(&block)?);
    }
    let classifier = walker.classifier(architecture)?;
    Ok(NetworkWeights {
        stem,
        blocks,
        classifier,
    })
}

/// The weights of one plan step, asking `tensor` for its tensors in the order [`assemble`] walks
/// them; `None` for a step without weights.
pub(crate) fn step_weights<E>(
    architecture: &Architecture,
    scheme: Scheme,
    step: &Step,
    mut tensor: impl FnMut(Slot) -> Result<Vec<f32>, E>,
) -> Result<Option<StepWeights<'static>>, E> {
    if !step.has_weights() {
        return Ok(None);
    }
    let mut walker = Walker {
        scheme,
        tensor: &mut tensor,
    };
    let block = || architecture.blocks().nth(step.block);
    let conv = |walker: &mut Walker<'_, _>, conv| match block() {
        Some(block) => walker
            .block_conv(&block, conv)
            .map(|weights| Some(StepWeights::Convolution(Cow::Owned(weights)))),
        None => Ok(None),
    };
    match step.part {
        Part::Stem => Ok(Some(StepWeights::Convolution(Cow::Owned(
            walker.stem(architecture)?,
        )))),
        Part::Projection => conv(&mut walker, Conv::Projection),
        Part::Reduce => conv(&mut walker, Conv::Reduce),
        Part::Grouped => conv(&mut walker, Conv::Grouped),
        Part::Expand => conv(&mut walker, Conv::Expand),
        Part::SqueezeExcite => match block().and_then(|block| Some((block, block.se_width?))) {
            Some((block, w_se)) => Ok(Some(StepWeights::SqueezeExcite(Cow::Owned(
                walker.squeeze_excite(&block, w_se)?,
            )))),
            None => Ok(None),
        },
        Part::Head => Ok(Some(StepWeights::Classifier(Cow::Owned(
            walker.classifier(architecture)?,
        )))),
        Part::Kept => Ok(None),
    }
}

struct Walker<'f, F> {
    scheme: Scheme,
    tensor: &'f mut F,
}

impl<F, E> Walker<'_, F>
where
    F: FnMut(Slot) -> Result<Vec<f32>, E>,
{
    fn slot(&mut self, key: String, shape: Vec<usize>, role: Role) -> Result<Vec<f32>, E> {
        (self.tensor)(Slot { key, shape, role })
    }

    fn block(&mut self, block: &Block) -> Result<BlockWeights, E> {
        // Forward order, as the blocks run: shortcut first (pycls and torchvision order), then
        // the residual branch.
        let projection = if block.has_projection() {
            Some(self.block_conv(block, Conv::Projection)?)
        } else {
            None
        };
        let reduce = self.block_conv(block, Conv::Reduce)?;
        let grouped = self.block_conv(block, Conv::Grouped)?;
        let squeeze_excite = match block.se_width {
            Some(w_se) => Some(self.squeeze_excite(block, w_se)?),
            None => None,
        };
        let expand = self.block_conv(block, Conv::Expand)?;
        Ok(BlockWeights {
            projection,
            reduce,
            grouped,
            squeeze_excite,
            expand,
        })
    }

    /// One of a block's convolutions with its BatchNorm.
    fn block_conv(&mut self, block: &Block, conv: Conv) -> Result<ConvBn, E> {
        let prefix = block_prefix(self.scheme, block.stage, block.index);
        let (w_in, w, w_b) = (block.in_width, block.width, block.bottleneck_width);
        // A malformed architecture with 0 groups must not divide by zero; its shapes then
        // simply cannot match any checkpoint.
        let group_width = w_b.checked_div(block.groups).unwrap_or(0);
        let shape = match conv {
            Conv::Projection => [w, w_in, 1, 1],
            Conv::Reduce => [w_b, w_in, 1, 1],
            Conv::Grouped => [w_b, group_width, 3, 3],
            Conv::Expand => [w, w_b, 1, 1],
            Conv::Stem => unreachable!("the stem is not a block's convolution"),
        };
        self.conv_bn(&prefix, conv, shape)
    }

    /// A block's squeeze-and-excitation, with `w_se` hidden units.
    fn squeeze_excite(&mut self, block: &Block, w_se: usize) -> Result<SqueezeExcite, E> {
        let prefix = block_prefix(self.scheme, block.stage, block.index);
        let w_b = block.bottleneck_width;
        let (hidden, gate) = se_names(self.scheme);
        Ok(SqueezeExcite {
            hidden: self.linear(&format!("{prefix}{hidden}"), w_se, w_b, true)?,
            gate: self.linear(&format!("{prefix}{gate}"), w_b, w_se, true)?,
        })
    }

    fn stem(&mut self, architecture: &Architecture) -> Result<ConvBn, E> {
        self.conv_bn(
            "",
            Conv::Stem,
            [architecture.stem_width, INPUT_CHANNELS, 3, 3],
        )
    }

    fn classifier(&mut self, architecture: &Architecture) -> Result<Linear, E> {
        self.linear(
            head_prefix(self.scheme),
            architecture.num_classes,
            architecture.last_width(),
            false,
        )
    }

    fn conv_bn(&mut self, prefix: &str, conv: Conv, shape: [usize; 4]) -> Result<ConvBn, E> {
        let (weight_key, bn) = conv_bn_names(self.scheme, conv);
        let [out, in_per_group, k, _] = shape;
        let weight = self.slot(
            format!("{prefix}{weight_key}"),
            shape.to_vec(),
            Role::ConvWeight {
                fan_in: in_per_group * k * k,
            },
        )?;
        let bn = format!("{prefix}{bn}");
        let mut stat = |name: &str, role| self.slot(format!("{bn}{name}"), vec![out], role);
        Ok(ConvBn {
            weight,
            bn: BatchNorm {
                weight: stat("weight", Role::BnWeight)?,
                bias: stat("bias", Role::BnBias)?,
                running_mean: stat("running_mean", Role::BnMean)?,
                running_var: stat("running_var", Role::BnVar)?,
            },
        })
    }

    /// A linear layer stored as `[out, in]`, or as the SE's `[out, in, 1, 1]` convolution.
    fn linear(
        &mut self,
        prefix: &str,
        out: usize,
        input: usize,
        conv_1x1: bool,
    ) -> Result<Linear, E> {
        let shape = if conv_1x1 {
            vec![out, input, 1, 1]
        } else {
            vec![out, input]
        };
        Ok(Linear {
            weight: self.slot(
                format!("{prefix}weight"),
                shape,
                Role::LinearWeight { fan_in: input },
            )?,
            bias: self.slot(format!("{prefix}bias"), vec![out], Role::LinearBias)?,
        })
    }
}

/// Whether a key is PyTorch's BN step counter, which no inference needs.
pub(crate) fn is_ignored(key: &str) -> bool {
    key == "num_batches_tracked" || key.ends_with(".num_batches_tracked")
}
