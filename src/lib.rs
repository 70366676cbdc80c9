//! regnet: RegNet design spaces compiled to statically shaped Rust networks.
//!
//! ```
//! regnet::regnet!("specs/regnety_1.6gf.yaml");
//!
//! assert_eq!(RegNetY1_6GF::FLOPS, 1_612_087_326);
//! assert_eq!(RegNetY1_6GF::STAGES.map(|s| s.width), [48, 120, 336, 888]);
//! assert_eq!(RegNetY1_6GF::INPUT_SHAPE, [3, 224, 224]);
//! ```

pub use regnet_macros::regnet;
pub use regnet_runtime as runtime;
pub use regnet_runtime::spec;
