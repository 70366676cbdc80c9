//! The CUDA source that defines a set of kernel instances: `kernels.cu`'s templates plus one
//! `extern "C"` wrapper per instance, its shapes as template arguments. It only writes text;
//! which instances a network needs is its plan's answer (`instances::kernels`).

use std::collections::BTreeSet;
use std::fmt::Write;

use super::Precision;
use crate::plan::{Op, Rows};

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

/// One kernel instance: a template of `kernels.cu` with the shapes of the op it runs, all
/// template arguments but those given at launch (where a 1×1 convolution's rows are, where a
/// kept map goes), and for a 1×1 convolution the tile of its outputs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Kernel {
    op: Op,
    tile: Tile,
}

/// The run-time flags of a 1×1 convolution (`GATE`, `RESIDUAL`, `RELU` in `kernels.cu`).
pub fn epilogue(gate: bool, residual: bool, relu: bool) -> i32 {
    i32::from(gate) | i32::from(residual) << 1 | i32::from(relu) << 2
}

const POINTER: &str = "const float* __restrict__";

impl Kernel {
    /// The instance that runs `op`, with `tile` if it is a 1×1 convolution (other ops have no
    /// tile). Instances differ only in template arguments: what is given at launch is set aside.
    pub fn new(op: Op, tile: Tile) -> Kernel {
        let (op, tile) = match op {
            Op::Pointwise {
                inputs, outputs, ..
            } => (
                Op::Pointwise {
                    inputs,
                    outputs,
                    rows: Rows {
                        input_size: 1,
                        output_size: 1,
                        stride: 1,
                    },
                },
                tile,
            ),
            Op::ToNchw {
                channels, pixels, ..
            } => (
                Op::ToNchw {
                    channels,
                    pixels,
                    offset: 0,
                },
                Tile::Wide,
            ),
            other => (other, Tile::Wide),
        };
        Kernel { op, tile }
    }

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
        match self.op {
            Op::Stem { .. } => "stem",
            Op::Grouped { .. } => "grouped",
            Op::Pool { .. } => "pool",
            Op::Excite { .. } => "excite",
            Op::ToNchw { .. } => "to_nchw",
            Op::Pointwise { .. } => "pointwise",
        }
    }

    fn arguments(&self) -> Vec<String> {
        let numbers = |values: &[usize]| values.iter().map(usize::to_string).collect();
        match self.op {
            Op::Stem {
                channels,
                input_size,
                output_size,
            } => numbers(&[channels, input_size, output_size]),
            Op::Grouped {
                channels,
                group_width,
                input_size,
                output_size,
                stride,
            } => numbers(&[channels, group_width, input_size, output_size, stride]),
            Op::Pool { channels, pixels }
            | Op::ToNchw {
                channels, pixels, ..
            } => numbers(&[channels, pixels]),
            Op::Excite { channels, hidden } => numbers(&[channels, hidden]),
            Op::Pointwise {
                inputs, outputs, ..
            } => {
                let (rows, columns, tensor_cores) = self.tile.template();
                let mut arguments: Vec<String> = numbers(&[inputs, outputs, rows, columns]);
                arguments.push(tensor_cores.to_string());
                arguments
            }
        }
    }

    /// The C parameters of the wrapper, and the call of the template with them.
    fn signature(&self) -> (String, String) {
        let out = "float* __restrict__ output";
        let (parameters, call) = match self.op {
            Op::Stem { .. } | Op::Grouped { .. } => (
                format!("{POINTER} input, {POINTER} weight, {POINTER} bias, {out}, int batch"),
                "(input, weight, bias, output, batch)",
            ),
            Op::Pool { .. } | Op::ToNchw { .. } => (
                format!("{POINTER} input, {out}, int batch"),
                "(input, output, batch)",
            ),
            Op::Excite { .. } => (
                format!(
                    "{POINTER} mean, {POINTER} w1, {POINTER} b1, {POINTER} w2, {POINTER} b2, {out}"
                ),
                "(mean, w1, b1, w2, b2, output)",
            ),
            Op::Pointwise { .. } => (
                format!(
                    "{POINTER} input, {POINTER} gate, {POINTER} weight, {POINTER} bias, \
                     {POINTER} residual, {out}, int batch, int flags, int in_size, \
                     int out_size, int stride"
                ),
                "(input, gate, weight, bias, residual, output, batch, flags, in_size, out_size, \
                 stride)",
            ),
        };
        let instance = format!("{}<{}>", self.template(), self.arguments().join(", "));
        let call = match self.op {
            Op::Pointwise { .. } => {
                format!("Pointwise<{}>::run{call}", self.arguments().join(", "))
            }
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
        let floats = match kernel.op {
            Op::Stem { channels, .. } => 27 * channels,
            Op::Excite { hidden, .. } => hidden,
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
        let rows = Rows {
            input_size: 14,
            output_size: 7,
            stride: 2,
        };
        let op = Op::Pointwise {
            inputs: 32,
            outputs: 24,
            rows,
        };
        let kernel = Kernel::new(op, Tile::Wide);
        assert_eq!(kernel.name(), "pointwise_32_24_8_4_0");
        let (_, call) = kernel.signature();
        assert_eq!(
            call,
            "Pointwise<32, 24, 8, 4, false>::run\
             (input, gate, weight, bias, residual, output, batch, flags, in_size, out_size, stride)"
        );
    }
}
