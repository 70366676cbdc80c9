//! regnet: RegNet design spaces compiled to statically shaped Rust networks.
//!
//! `regnet!` reads a YAML spec at compile time, computes the network exactly as pycls does and
//! names a [`runtime::Model`] type with the architecture as constants and a forward pass on the
//! runtime's kernels. The paper's models come ready-made in [`zoo`].
//!
//! ```
//! use regnet::runtime::Options;
//!
//! regnet::regnet!("specs/regnety_200mf.yaml"); // pub type RegNetY200MF = Model<…>
//!
//! assert_eq!(RegNetY200MF::FLOPS, 199_519_076);
//! let widths: Vec<usize> = RegNetY200MF::STAGES.iter().map(|s| s.width).collect();
//! assert_eq!(widths, [24, 56, 152, 368]);
//! assert_eq!(RegNetY200MF::INPUT_SHAPE, [3, 224, 224]);
//!
//! // `RegNetY200MF::load("w.safetensors")?` reads torchvision, timm or pycls checkpoints.
//! let model = RegNetY200MF::random(0)?;
//! let options = Options { threads: 2, features: true, ..Options::default() };
//! let mut workspace = RegNetY200MF::workspace_with(2, options)?;
//!
//! // Two NCHW images in one heap slice; `forward` takes `&[Image<224, 224>]` instead.
//! let batch = vec![0.5f32; 2 * 3 * 224 * 224];
//! let (logits, features) = model.forward_features(&batch, &mut workspace)?;
//! assert_eq!(logits.len(), 2 * 1000);
//! let (_, shape) = features.stage(4).unwrap();
//! assert_eq!(shape, [2, 368, 7, 7]);
//!
//! // Length errors are values, not panics.
//! assert!(model.forward_slice(&batch[1..], &mut workspace).is_err());
//! # Ok::<(), regnet::runtime::RunError>(())
//! ```
#![cfg_attr(docsrs, feature(doc_cfg))]

/// Compiles a RegNet spec (YAML, relative to the crate's root) into a network type at build
/// time; a bad spec is a compile error naming the file, line:column, field and rule.
///
/// ```
/// regnet::regnet!(pub Small = "specs/regnetx_200mf.yaml");
///
/// assert_eq!(Small::STAGES.iter().map(|s| s.depth).sum::<usize>(), 1 + 1 + 4 + 7);
/// assert_eq!(Small::FLOPS, 199_040_872); // pycls's count (zoo.json)
/// let model = Small::random(7)?;
/// let mut workspace = Small::workspace(1)?;
/// let logits = model.forward_slice(&vec![0.0; 3 * 224 * 224], &mut workspace)?;
/// assert_eq!(logits.len(), 1000);
/// # Ok::<(), regnet::runtime::RunError>(())
/// ```
pub use regnet_macros::regnet;
pub use regnet_runtime as runtime;
pub use regnet_runtime::spec;

// The generated code names this crate `::regnet`; inside it too (the zoo).
extern crate self as regnet;

#[cfg(feature = "zoo")]
#[cfg_attr(docsrs, doc(cfg(feature = "zoo")))]
pub mod zoo;

// The README's Rust snippets, compiled as doc tests (`no_run`: they name files a user has), so
// that they compile as written. They use the zoo, `image`, `cuda` and `graph` features.
#[cfg(all(
    doctest,
    feature = "zoo",
    feature = "image",
    feature = "cuda",
    feature = "graph"
))]
#[doc = include_str!("../README.md")]
struct ReadmeSnippets;
