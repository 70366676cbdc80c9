//! The CUDA source that defines a set of kernel instances: `kernels.cu`'s templates plus one
//! `extern "C"` wrapper per instance, its shapes as template arguments. It only writes text;
//! which instances a network needs is the plan's answer (`plan::kernels`).

use std::collections::BTreeSet;
use std::fmt::Write;

use super::Precision;

/// The templates, compiled with every network's wrappers.
pub const TEMPLATES: &str = include_str!("kernels.cu");

/// Threads per block of every kernel (`THREADS` in `kernels.cu`).
pub const THREADS: u32 = 256;

/// How a 1×1 convolution's outputs are tiled over blocks: `Narrow` (32×32) fills the GPU when
/// there are few rows (small batches in late stages), `Wide` (128×64) reuses more per load,
/// `TensorCore` is `Wide` on TF32 tensor cores.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Tile {
    /// 32×32 outputs per block, 2×2 per thread, on CUDA cores.
    Narrow,
    /// 128×64 outputs per block, 8×4 per thread, on CUDA cores.
    Wide,
    /// 128×64 outputs per block as `mma.m16n8k8` TF32 tiles with fp32 sums (sm_80 and newer).
    TensorCore,
}

impl Tile {
    /// Rows and columns of outputs per block.
    pub const fn shape(self) -> (usize, usize) {
        match self {
            Tile::Narrow => (32, 32),
            Tile::Wide | Tile::TensorCore => (128, 64),
        }
    }

    /// The thread tile (rows, columns per thread) and whether tensor cores compute it.
    const fn template(self) -> (usize, usize, bool) {
        match self {
            Tile::Narrow => (2, 2, false),
            Tile::Wide => (8, 4, false),
            Tile::TensorCore => (8, 4, true),
        }
    }
}

/// A 1×1 convolution (or the classifier) as the GEMM `Pointwise` computes it; where its rows
/// are ([`Rows`]) is given at launch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Pointwise {
    /// Input channels: the GEMM's reduction length K (a template argument).
    pub inputs: usize,
    /// Output channels: the GEMM's width N, the row length of the weights and the outputs.
    pub outputs: usize,
    /// How the outputs are split over blocks (and so which instance runs).
    pub tile: Tile,
}

/// A 1×1 convolution's rows: output pixel (image, y, x) of an `output_size`² map reads input
/// pixel (image, y·stride, x·stride) of an `input_size`² map.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rows {
    /// Side of the square input map, in pixels (1 for the classifier).
    pub input_size: usize,
    /// Side of the square output map, `strided(input_size, stride)`.
    pub output_size: usize,
    /// The spatial stride: the block's (1 or 2) for its shortcut projection, else 1.
    pub stride: usize,
}

/// The run-time flags of a 1×1 convolution (`GATE`, `RESIDUAL`, `RELU` in `kernels.cu`).
pub fn epilogue(gate: bool, residual: bool, relu: bool) -> i32 {
    i32::from(gate) | i32::from(residual) << 1 | i32::from(relu) << 2
}

/// One kernel instance: a template of `kernels.cu` with its shapes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
///
/// Sizes are the sides of square maps in pixels; channels count per image.
pub enum Kernel {
    /// The stem: 3×3, stride 2, zero padding 1, bias and ReLU, from NCHW RGB images to NHWC.
    Stem {
        /// Output channels (the stem width); its 27 weights per channel sit in shared memory.
        channels: usize,
        /// Side of the input images (the resolution).
        input_size: usize,
        /// Side of the output map.
        output_size: usize,
    },
    /// A block's grouped 3×3 convolution, zero padding 1, bias and ReLU, NHWC to NHWC.
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
    /// Per image and channel, the mean over an NHWC map's pixels: `[batch][channels]`
    /// (squeeze-excitation's squeeze, the head's pool).
    ChannelMean {
        /// Channels of the map.
        channels: usize,
        /// Pixels per image (height × width).
        pixels: usize,
    },
    /// Squeeze-excitation's two layers, one block per image:
    /// gate = sigmoid(W2ᵀ·ReLU(W1·mean + b1) + b2).
    Excite {
        /// Channels gated (the bottleneck width).
        channels: usize,
        /// Hidden units (the SE width), held in shared memory.
        hidden: usize,
    },
    /// An NHWC map copied to NCHW, for the feature maps kept.
    ToNchw {
        /// Channels of the map.
        channels: usize,
        /// Pixels per image (height × width).
        pixels: usize,
    },
    /// A 1×1 convolution or the classifier, as a tiled GEMM whose epilogue (gate, residual,
    /// ReLU) is chosen per launch by [`epilogue`]'s flags.
    Pointwise(Pointwise),
}

const POINTER: &str = "const float* __restrict__";

impl Kernel {
    /// The instance's symbol: the template's name and its arguments.
    pub fn name(&self) -> String {
        let arguments = self.arguments();
        let mut name = self.template().to_owned();
        for argument in arguments {
            name.push('_');
            name.push_str(match argument.as_str() {
                "true" => "1",
                "false" => "0",
                other => other,
            });
        }
        name
    }

    fn template(&self) -> &'static str {
        match self {
            Kernel::Stem { .. } => "stem",
            Kernel::Grouped { .. } => "grouped",
            Kernel::ChannelMean { .. } => "channel_mean",
            Kernel::Excite { .. } => "excite",
            Kernel::ToNchw { .. } => "to_nchw",
            Kernel::Pointwise(_) => "pointwise",
        }
    }

    fn arguments(&self) -> Vec<String> {
        let numbers = |values: &[usize]| values.iter().map(usize::to_string).collect();
        match *self {
            Kernel::Stem {
                channels,
                input_size,
                output_size,
            } => numbers(&[channels, input_size, output_size]),
            Kernel::Grouped {
                channels,
                group_width,
                input_size,
                output_size,
                stride,
            } => numbers(&[channels, group_width, input_size, output_size, stride]),
            Kernel::ChannelMean { channels, pixels } | Kernel::ToNchw { channels, pixels } => {
                numbers(&[channels, pixels])
            }
            Kernel::Excite { channels, hidden } => numbers(&[channels, hidden]),
            Kernel::Pointwise(p) => {
                let (rows, columns, tensor_cores) = p.tile.template();
                let mut arguments: Vec<String> = numbers(&[p.inputs, p.outputs, rows, columns]);
                arguments.push(tensor_cores.to_string());
                arguments
            }
        }
    }

    /// The C parameters of the wrapper, and the call of the template with them.
    fn signature(&self) -> (String, String) {
        let out = "float* __restrict__ output";
        let (parameters, call) = match self {
            Kernel::Stem { .. } | Kernel::Grouped { .. } => (
                format!("{POINTER} input, {POINTER} weight, {POINTER} bias, {out}, int batch"),
                "(input, weight, bias, output, batch)",
            ),
            Kernel::ChannelMean { .. } | Kernel::ToNchw { .. } => (
                format!("{POINTER} input, {out}, int batch"),
                "(input, output, batch)",
            ),
            Kernel::Excite { .. } => (
                format!(
                    "{POINTER} mean, {POINTER} w1, {POINTER} b1, {POINTER} w2, {POINTER} b2, {out}"
                ),
                "(mean, w1, b1, w2, b2, output)",
            ),
            Kernel::Pointwise(_) => (
                format!(
                    "{POINTER} input, {POINTER} gate, {POINTER} weight, {POINTER} bias, \
                     {POINTER} residual, {out}, int batch, int flags, int in_size, \
                     int out_size, int stride"
                ),
                "(input, gate, weight, bias, residual, output, batch, flags, in_size, out_size, \
                 stride)",
            ),
        };
        let template = match self {
            Kernel::Pointwise(_) => "Pointwise".to_owned(),
            _ => self.template().to_owned(),
        };
        let instance = format!("{template}<{}>", self.arguments().join(", "));
        let call = match self {
            Kernel::Pointwise(_) => format!("{instance}::run{call}"),
            _ => format!("{instance}{call}"),
        };
        (parameters, call)
    }
}

/// The source of a module with the given instances.
pub fn source<'k>(kernels: impl IntoIterator<Item = &'k Kernel>) -> String {
    let mut source = String::from(TEMPLATES);
    source.push_str("\n// The instances this module needs.\n");
    for kernel in kernels {
        let (parameters, call) = kernel.signature();
        // Writing to a String cannot fail. The bounds' second argument (at least one block per
        // multiprocessor) keeps ptxas from squeezing a kernel into 32 registers for full
        // occupancy, which made the strided 3×3 spill on sm_90.
        let _ = writeln!(
            source,
            "extern \"C\" __global__ void __launch_bounds__(THREADS, 1) {}({parameters}) {{ {call}; }}",
            kernel.name()
        );
    }
    source
}

/// Static shared memory a block may have without opting in to more.
const SHARED_BYTES: usize = 48 * 1024;

/// Checks the kernels whose static shared memory grows with the network (the stem's weights,
/// the SE hidden layer) fit, so a huge spec is a clear error rather than an NVRTC failure.
pub fn fits_shared_memory(kernels: &BTreeSet<Kernel>) -> Result<(), String> {
    for kernel in kernels {
        let floats = match *kernel {
            Kernel::Stem { channels, .. } => 27 * channels,
            Kernel::Excite { hidden, .. } => hidden,
            _ => 0,
        };
        if floats * size_of::<f32>() > SHARED_BYTES {
            return Err(format!(
                "{} needs {} bytes of shared memory; the CUDA backend supports up to {SHARED_BYTES}",
                kernel.name(),
                floats * size_of::<f32>()
            ));
        }
    }
    Ok(())
}

/// Instances per NVRTC program: programs compile in parallel, and a small program keeps a
/// change to one network from invalidating the cached CUBIN of every other.
const PER_MODULE: usize = 16;

/// The instances split into modules, each with its source.
pub fn modules(kernels: &BTreeSet<Kernel>) -> Vec<(Vec<Kernel>, String)> {
    let kernels: Vec<Kernel> = kernels.iter().copied().collect();
    kernels
        .chunks(PER_MODULE)
        .map(|chunk| (chunk.to_vec(), source(chunk)))
        .collect()
}

/// The tiles a 1×1 convolution may run with; which one is chosen at launch from the rows.
pub const fn tiles(precision: Precision) -> [Tile; 2] {
    match precision {
        Precision::Fp32 => [Tile::Narrow, Tile::Wide],
        Precision::Tf32 => [Tile::Narrow, Tile::TensorCore],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instance_names_spell_their_template_arguments() {
        let kernel = Kernel::Pointwise(Pointwise {
            inputs: 32,
            outputs: 24,
            tile: Tile::Wide,
        });
        assert_eq!(kernel.name(), "pointwise_32_24_8_4_0");
        let (_, call) = kernel.signature();
        assert_eq!(
            call,
            "Pointwise<32, 24, 8, 4, false>::run\
             (input, gate, weight, bias, residual, output, batch, flags, in_size, out_size, stride)"
        );
    }
}
