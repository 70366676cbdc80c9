#![warn(missing_docs)]
//! The RegNet design space ("Designing Network Design Spaces", Radosavovic et al., 2020) exactly as
//! pycls computes it: YAML spec → per-block widths → quantized stages → width/group compatibility →
//! complexity → operation graph.
//!
//! This crate is the single home of the design-space math. The `regnet!` macro runs it at compile
//! time and the `regnet` CLI at run time; neither re-derives anything.
//!
//! ```
//! let net = regnet_spec::compile_str(
//!     "name: RegNetX-200MF\nd: 13\nw0: 24\nwa: 36.44\nwm: 2.49\ng: 8\n",
//!     "inline.yaml",
//! )
//! .unwrap();
//! let widths: Vec<usize> = net.stages.iter().map(|s| s.width).collect();
//! assert_eq!(widths, [24, 56, 152, 368]);
//! assert_eq!(net.complexity.flops, 199_040_872);
//! ```

//! Features: `yaml` (specs from YAML: parsing, quantization, sampling) and `graph` (the
//! operation graph and the stage table), both default. Without them the crate is the
//! architecture types and their arithmetic, which is all a runtime needs.

mod architecture;
#[cfg(feature = "yaml")]
mod compiled;
#[cfg(feature = "yaml")]
mod diagnostics;
pub mod files;
#[cfg(feature = "graph")]
pub mod graph;
#[cfg(feature = "yaml")]
mod outline;
#[cfg(feature = "yaml")]
mod quantize;
#[cfg(feature = "yaml")]
pub mod sample;
#[cfg(feature = "yaml")]
mod spec;
#[cfg(feature = "graph")]
mod table;

pub use architecture::{Architecture, Block, Complexity, Stage, strided};
#[cfg(feature = "yaml")]
pub use compiled::{CompiledSpec, compile_file, compile_str};
#[cfg(feature = "yaml")]
pub use compiled::{MAX_DEPTH, MAX_SPEC_BYTES, MIN_B};
#[cfg(feature = "yaml")]
pub use diagnostics::{Diagnostic, Location, MAX_REPORTED, SpecError, excerpt, format_number};
#[cfg(feature = "yaml")]
pub use quantize::{BlockWidth, MAX_WIDTH, QuantizedStage, block_widths, quantize};
#[cfg(feature = "yaml")]
pub use spec::{Compat, Design, RegNetParameters, Spec, StageSpec, parse_spec};
#[cfg(feature = "graph")]
pub use table::stage_table;

/// Input channels of every RegNet (RGB images).
pub const INPUT_CHANNELS: usize = 3;
