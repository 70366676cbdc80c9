//! The built-in models (`regnet::zoo`): `regnet run` and `regnet bench` take a model by its
//! spec's file stem.

pub use regnet::zoo::{Listed, find};

/// The model names, for messages.
pub fn names() -> String {
    regnet::zoo::MODELS
        .iter()
        .map(|m| m.name)
        .collect::<Vec<_>>()
        .join(", ")
}
