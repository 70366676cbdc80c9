//! The quantized network in a borrowed, `const`-constructible form: the macro emits an
//! [`Architecture`] literal into generated code and the CLI builds one from a parsed spec, so the
//! graph and complexity below serve both.

use crate::INPUT_CHANNELS;

/// One stage of a quantized RegNet, with the spatial sizes it runs at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stage {
    /// Number of blocks in the stage (at least 1).
    pub depth: usize,
    /// Output channels of every block, after the width/group compatibility rule.
    pub width: usize,
    /// Channels per group of the 3×3 convolution: the spec's `g` clipped to the bottleneck width
    /// (pycls's `g' = min(g, w_b)`), so a too-large `g` gives a dense convolution.
    pub group_width: usize,
    /// Channels inside the block (the 3×3 convolution): `round_half_even(width / b)`, always a
    /// multiple of `group_width`.
    pub bottleneck_width: usize,
    /// Stride of the first block (the later ones have stride 1).
    pub stride: usize,
    /// The width entering the stage (the previous stage's width, or the stem's).
    pub in_width: usize,
    /// Spatial size (height = width) entering the stage, before the first block's stride.
    pub in_size: usize,
    /// Spatial size of the stage's output.
    pub out_size: usize,
    /// SE width of the first block, from its input width; `None` without SE.
    pub se_width: Option<usize>,
    /// SE width of blocks 2.. (from the stage width); `None` without SE or with depth 1.
    pub se_width_rest: Option<usize>,
}

impl Stage {
    /// Number of groups of the 3×3 convolution.
    pub const fn groups(&self) -> usize {
        self.bottleneck_width / self.group_width
    }
}

/// A whole quantized network. All shapes are fixed: batch size is the only free dimension.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Architecture<'a> {
    /// The network's label (for example `RegNetX-200MF`), for display; the math ignores it.
    pub name: &'a str,
    /// Side of the square input image in pixels (224 for the pycls zoo).
    pub resolution: usize,
    /// Output channels of the 3×3 stride-2 stem convolution (32 in pycls).
    pub stem_width: usize,
    /// Outputs of the classifier (1000 for ImageNet).
    pub num_classes: usize,
    /// The stages s1..sN in forward order; each must start where the previous one ends.
    pub stages: &'a [Stage],
}

/// One residual bottleneck block (pycls `ResBottleneckBlock`); stage and block are 1-based, as in
/// pycls's `s1.b1` names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Block {
    /// 1-based stage number (the `N` of pycls's `sN`).
    pub stage: usize,
    /// 1-based position within the stage (the `K` of pycls's `bK`).
    pub index: usize,
    /// Input channels: the previous stage's (or the stem's) width for a stage's first block, the
    /// stage width otherwise.
    pub in_width: usize,
    /// Output channels (the stage width).
    pub width: usize,
    /// Channels of the 1×1 → 3×3 → 1×1 branch's inner convolutions (pycls `w_b`).
    pub bottleneck_width: usize,
    /// Number of groups of the 3×3 convolution (`bottleneck_width / group_width`; 1 is dense).
    pub groups: usize,
    /// Stride of the 3×3 convolution and of the projection: the stage's stride for the first
    /// block, 1 for the others.
    pub stride: usize,
    /// SE squeeze channels, `round_half_even(se_ratio × in_width)` (from the block's input width,
    /// as pycls does); `None` without SE.
    pub se_width: Option<usize>,
    /// Spatial size (height = width) of the block's input.
    pub in_size: usize,
    /// Spatial size of the block's output, after the stride.
    pub out_size: usize,
}

impl Block {
    /// The shortcut is a strided 1×1 projection with BN iff the shape changes.
    pub const fn has_projection(&self) -> bool {
        self.in_width != self.width || self.stride != 1
    }
}

/// Complexity as pycls counts it: flops are multiply-adds; BN adds parameters only; ReLU,
/// sigmoid, pooling, the SE product and the residual add are free.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Complexity {
    /// Multiply-adds for one image at the network's resolution (pycls "flops"; exceeds 2³² for the
    /// largest zoo models).
    pub flops: u64,
    /// Learnable parameters: conv and FC weights and biases plus BN scale and shift (not the
    /// running statistics), i.e. PyTorch's `sum(p.numel() for p in model.parameters())`.
    pub params: u64,
    /// Activations: the output elements of every convolution and linear layer for one image.
    pub acts: u64,
}

impl Architecture<'_> {
    /// Spatial size after the stride-2 stem (224 → 112), i.e. the first stage's input size.
    pub const fn stem_size(&self) -> usize {
        strided(self.resolution, 2)
    }

    /// Width of the features entering the head.
    pub fn last_width(&self) -> usize {
        self.stages.last().map_or(self.stem_width, |s| s.width)
    }

    /// Every block in forward order.
    pub fn blocks(&self) -> impl Iterator<Item = Block> + '_ {
        (1..=self.stages.len())
            .flat_map(move |stage| (1..=self.stages[stage - 1].depth).map(move |k| (stage, k)))
            .map(|(stage, index)| self.block(stage, index))
    }

    /// Block `index` of stage `stage`, both 1-based (pycls's `sN.bK`). Every block after a
    /// stage's first has the same shapes, so a `const fn` that walks the stages can visit each
    /// distinct block shape with `index` 1 and 2. Panics if the stage does not exist.
    pub const fn block(&self, stage: usize, index: usize) -> Block {
        let s = &self.stages[stage - 1];
        let first = index == 1;
        Block {
            stage,
            index,
            in_width: if first { s.in_width } else { s.width },
            width: s.width,
            bottleneck_width: s.bottleneck_width,
            groups: s.groups(),
            stride: if first { s.stride } else { 1 },
            se_width: if first { s.se_width } else { s.se_width_rest },
            in_size: if first { s.in_size } else { s.out_size },
            out_size: s.out_size,
        }
    }

    /// Checks that the stages chain (each starts where the previous one ends, sizes follow the
    /// strides, groups divide the bottlenecks, every count is positive). Architectures compiled
    /// from specs always pass; this guards hand-built ones before a backend trusts them.
    pub fn validate(&self) -> Result<(), String> {
        let positive = self.resolution > 0 && self.stem_width > 0 && self.num_classes > 0;
        if !positive || self.stages.is_empty() {
            return Err(
                "resolution, stem width, classes and the stage list must be non-empty".into(),
            );
        }
        let (mut width, mut size) = (self.stem_width, self.stem_size());
        for (i, s) in self.stages.iter().enumerate() {
            let n = i + 1;
            let counts = s.depth > 0 && s.width > 0 && s.group_width > 0 && s.bottleneck_width > 0;
            let se = |w: Option<usize>| w.is_none_or(|w| w > 0);
            if !counts
                || !s.bottleneck_width.is_multiple_of(s.group_width)
                || !se(s.se_width)
                || !se(s.se_width_rest)
            {
                return Err(format!(
                    "stage {n}: counts must be positive and the group width must divide the bottleneck width"
                ));
            }
            if !(s.stride == 1 || s.stride == 2)
                || s.in_width != width
                || s.in_size != size
                || s.out_size != strided(size, s.stride)
            {
                return Err(format!(
                    "stage {n} does not start where stage {} ends or its size does not follow its stride",
                    n - 1
                ));
            }
            (width, size) = (s.width, s.out_size);
        }
        self.complexity()
            .map(|_| ())
            .ok_or_else(|| "the complexity does not fit in 64 bits".into())
    }

    /// pycls's `complexity()`, exactly. `None` if a count does not fit in a u64.
    pub fn complexity(&self) -> Option<Complexity> {
        // u128 cannot overflow for widths ≤ 2^20, sizes < 2^33 and depths ≤ 2^10.
        let mut cx = Counter::default();
        let stem = self.stem_size();
        cx.conv(INPUT_CHANNELS, self.stem_width, 3, 1, stem, false);
        cx.batch_norm(self.stem_width);
        for block in self.blocks() {
            let (w_in, w, w_b, out) = (
                block.in_width,
                block.width,
                block.bottleneck_width,
                block.out_size,
            );
            if block.has_projection() {
                cx.conv(w_in, w, 1, 1, out, false);
                cx.batch_norm(w);
            }
            cx.conv(w_in, w_b, 1, 1, block.in_size, false);
            cx.batch_norm(w_b);
            cx.conv(w_b, w_b, 3, block.groups, out, false);
            cx.batch_norm(w_b);
            if let Some(w_se) = block.se_width {
                cx.conv(w_b, w_se, 1, 1, 1, true);
                cx.conv(w_se, w_b, 1, 1, 1, true);
            }
            cx.conv(w_b, w, 1, 1, out, false);
            cx.batch_norm(w);
        }
        cx.conv(self.last_width(), self.num_classes, 1, 1, 1, true);
        Some(Complexity {
            flops: u64::try_from(cx.flops).ok()?,
            params: u64::try_from(cx.params).ok()?,
            acts: u64::try_from(cx.acts).ok()?,
        })
    }
}

/// Output size of a convolution with padding (k - 1) / 2, as pycls computes it.
pub const fn strided(size: usize, stride: usize) -> usize {
    (size - 1) / stride + 1
}

#[derive(Default)]
struct Counter {
    flops: u128,
    params: u128,
    acts: u128,
}

impl Counter {
    /// A k×k convolution producing `size`×`size` outputs (pycls `conv2d_cx`; a linear layer is a
    /// 1×1 convolution at size 1).
    fn conv(
        &mut self,
        c_in: usize,
        c_out: usize,
        k: usize,
        groups: usize,
        size: usize,
        bias: bool,
    ) {
        let (c_in, c_out, k, groups) = (c_in as u128, c_out as u128, k as u128, groups as u128);
        let pixels = (size as u128) * (size as u128);
        let (bias_flops, bias_params) = if bias {
            (c_out * pixels, c_out)
        } else {
            (0, 0)
        };
        self.flops += k * k * c_in * c_out * pixels / groups + bias_flops;
        self.params += k * k * c_in * c_out / groups + bias_params;
        self.acts += c_out * pixels;
    }

    fn batch_norm(&mut self, channels: usize) {
        self.params += 2 * channels as u128;
    }
}
