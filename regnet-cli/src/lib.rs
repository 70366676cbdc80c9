//! The parts of the `regnet` command that other code reuses: the image preprocessing of
//! `regnet classify` (also the target of `fuzz/fuzz_targets/preprocess.rs`).

pub mod preprocess;
