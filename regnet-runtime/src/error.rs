//! Why a forward pass could not run. In a module of its own: the workspace, the engines and
//! the network all return it, and none of them should import another for it.

use crate::device::{Device, DeviceError};

/// Why a forward pass could not run; nothing was computed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum RunError {
    /// The input's length is not a multiple of one image's floats (3 × resolution², NCHW).
    #[error(
        "the input has {floats} floats, which is not a whole number of {name} images \
         ({channels}×{size}×{size} = {per_image} floats each, NCHW f32)"
    )]
    InputLength {
        /// The network's name, as its spec gives it.
        name: &'static str,
        /// The input's length in floats.
        floats: usize,
        /// Channels per image (3, RGB).
        channels: usize,
        /// The network's input resolution: images are `size`×`size` pixels.
        size: usize,
        /// Floats per image: `channels × size × size`.
        per_image: usize,
    },
    /// The input is empty: a pass needs at least one image.
    #[error("the input holds no image")]
    EmptyBatch,
    /// The input has more images than the workspace was made for.
    #[error(
        "a batch of {batch} images does not fit a workspace made for {capacity}; make the \
         workspace with a larger capacity or split the batch"
    )]
    BatchTooLarge {
        /// Images in the input.
        batch: usize,
        /// The most images the workspace holds.
        capacity: usize,
    },
    /// The workspace's buffers are sized for another architecture.
    #[error(
        "this workspace was made for another network; make one with this network's `workspace`"
    )]
    WorkspaceMismatch,
    /// A network on the CPU was given a workspace made for a GPU, which keeps no activation
    /// buffers in host memory.
    #[error(
        "this workspace was made for {device:?} and has no host buffers for a network on the \
         CPU; make one with `Options {{ device: Device::Cpu, .. }}`"
    )]
    WorkspaceDevice {
        /// The device the workspace was made for.
        device: Device,
    },
    /// `forward_features` was called with a workspace made without room for the features.
    #[error("this workspace keeps no features; make it with `Options {{ features: true, .. }}`")]
    NoFeatures,
    /// The buffers for `capacity` images overflow the address space or could not be allocated.
    #[error(
        "a workspace for {capacity} images does not fit in memory; make one for fewer images and \
         split the batch"
    )]
    WorkspaceTooLarge {
        /// The number of images the workspace was asked to hold.
        capacity: usize,
    },
    /// The architecture fails its own consistency checks (`Architecture::validate`'s reason).
    #[error("the architecture is inconsistent: {0}")]
    InvalidArchitecture(String),
    /// The device failed, or cannot do what was asked of it.
    #[error(transparent)]
    Device(#[from] DeviceError),
}
