//! A loaded network, independent of the backend that runs it. Generated network types wrap
//! this; a new backend becomes another variant of `Backend` without touching generated code.

use std::path::Path;

use regnet_spec::{Architecture, INPUT_CHANNELS};

use crate::cpu::{CpuNetwork, Profile};
use crate::weights::{self, LoadError, NetworkWeights, Scheme};
use crate::workspace::{Workspace, WorkspaceLayout};

/// Why a forward pass could not run; nothing was computed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RunError {
    #[error(
        "the input has {floats} floats, which is not a whole number of {name} images \
         ({channels}×{size}×{size} = {per_image} floats each, NCHW f32)"
    )]
    InputLength {
        name: &'static str,
        floats: usize,
        channels: usize,
        size: usize,
        per_image: usize,
    },
    #[error("the input holds no image")]
    EmptyBatch,
    #[error(
        "a batch of {batch} images does not fit a workspace made for {capacity}; make the \
         workspace with a larger capacity or split the batch"
    )]
    BatchTooLarge { batch: usize, capacity: usize },
    #[error(
        "this workspace was made for another network; make one with this network's `workspace`"
    )]
    WorkspaceMismatch,
    #[error("this workspace keeps no features; make it with `Options {{ features: true, .. }}`")]
    NoFeatures,
    #[error(
        "a workspace for {capacity} images does not fit in memory; make one for fewer images and \
         split the batch"
    )]
    WorkspaceTooLarge { capacity: usize },
    #[error("the architecture is inconsistent: {0}")]
    InvalidArchitecture(String),
}

enum Backend {
    Cpu(CpuNetwork),
}

/// A network with its weights, ready to run. `Send + Sync`: share it between threads, each with
/// its own workspace.
pub struct Network {
    backend: Backend,
    scheme: Option<Scheme>,
    /// The workspace layout this network's passes need, computed once.
    layout: WorkspaceLayout,
}

/// The stem's and every stage's outputs of one forward pass, NCHW.
pub struct FeatureMaps<'w> {
    buffer: &'w [f32],
    architecture: &'w Architecture<'static>,
    batch: usize,
}

impl<'w> FeatureMaps<'w> {
    /// The stem's output: `[batch][stem width][size][size]`.
    pub fn stem(&self) -> (&'w [f32], [usize; 4]) {
        self.get(0)
    }

    /// Stage `index` (1-based, as `s1`..): `[batch][width][size][size]`.
    pub fn stage(&self, index: usize) -> Option<(&'w [f32], [usize; 4])> {
        (1..=self.architecture.stages.len())
            .contains(&index)
            .then(|| self.get(index))
    }

    /// Number of stages.
    pub fn stages(&self) -> usize {
        self.architecture.stages.len()
    }

    fn get(&self, index: usize) -> (&'w [f32], [usize; 4]) {
        let shapes = std::iter::once((self.architecture.stem_width, self.architecture.stem_size()))
            .chain(
                self.architecture
                    .stages
                    .iter()
                    .map(|s| (s.width, s.out_size)),
            );
        let mut offset = 0;
        for (i, (channels, size)) in shapes.enumerate() {
            let len = self.batch * channels * size * size;
            if i == index {
                return (
                    &self.buffer[offset..offset + len],
                    [self.batch, channels, size, size],
                );
            }
            offset += len;
        }
        unreachable!("index checked by the callers")
    }
}

impl Network {
    /// Loads a safetensors checkpoint in torchvision's, timm's or pycls's naming.
    /// `alternative` is the other compatibility rule's stage widths, for a helpful error.
    pub fn load(
        architecture: Architecture<'static>,
        path: &Path,
        alternative: Option<(&str, &[usize])>,
    ) -> Result<Self, LoadError> {
        architecture
            .validate()
            .map_err(|reason| LoadError::InvalidArchitecture { reason })?;
        let (weights, scheme) = weights::load(path, &architecture, alternative)?;
        let mut network = Self::from_weights(architecture, &weights);
        network.scheme = Some(scheme);
        Ok(network)
    }

    /// `weights` must hold this architecture's tensors (as `NetworkWeights::random` and the
    /// loader give).
    fn from_weights(architecture: Architecture<'static>, weights: &NetworkWeights) -> Self {
        Network {
            backend: Backend::Cpu(CpuNetwork::new(architecture, weights)),
            scheme: None,
            layout: WorkspaceLayout::of(&architecture),
        }
    }

    /// Deterministic random weights (and randomized BatchNorm statistics): for benchmarks.
    pub fn random(architecture: Architecture<'static>, seed: u64) -> Result<Self, RunError> {
        architecture
            .validate()
            .map_err(RunError::InvalidArchitecture)?;
        Ok(Self::from_weights(
            architecture,
            &NetworkWeights::random(&architecture, seed),
        ))
    }

    /// The naming scheme of the checkpoint it was loaded from.
    pub fn scheme(&self) -> Option<Scheme> {
        self.scheme
    }

    pub fn architecture(&self) -> &Architecture<'static> {
        let Backend::Cpu(cpu) = &self.backend;
        cpu.architecture()
    }

    /// NCHW f32 images in, logits out (`[batch][classes]`, inside the workspace).
    pub fn forward<'w>(
        &self,
        input: &[f32],
        workspace: &'w mut Workspace,
    ) -> Result<&'w [f32], RunError> {
        let batch = self.check(input, workspace, false)?;
        let Backend::Cpu(cpu) = &self.backend;
        cpu.run(input, batch, workspace, false, None);
        Ok(&workspace.logits[..batch * cpu.architecture().num_classes])
    }

    /// Like `forward`, and also keeps the stem's and every stage's output.
    pub fn forward_features<'w>(
        &'w self,
        input: &[f32],
        workspace: &'w mut Workspace,
    ) -> Result<(&'w [f32], FeatureMaps<'w>), RunError> {
        let batch = self.check(input, workspace, true)?;
        let Backend::Cpu(cpu) = &self.backend;
        cpu.run(input, batch, workspace, true, None);
        let features = FeatureMaps {
            buffer: &workspace.features,
            architecture: cpu.architecture(),
            batch,
        };
        Ok((
            &workspace.logits[..batch * cpu.architecture().num_classes],
            features,
        ))
    }

    /// Runs like `forward` and records the time of every step into `profile`.
    pub fn profile(
        &self,
        input: &[f32],
        workspace: &mut Workspace,
        profile: &mut Profile,
    ) -> Result<(), RunError> {
        let batch = self.check(input, workspace, false)?;
        let Backend::Cpu(cpu) = &self.backend;
        cpu.run(input, batch, workspace, false, Some(profile));
        Ok(())
    }

    fn check(
        &self,
        input: &[f32],
        workspace: &Workspace,
        features: bool,
    ) -> Result<usize, RunError> {
        let architecture = self.architecture();
        let size = architecture.resolution;
        let per_image = INPUT_CHANNELS * size * size;
        if !input.len().is_multiple_of(per_image) {
            return Err(RunError::InputLength {
                name: architecture.name,
                floats: input.len(),
                channels: INPUT_CHANNELS,
                size,
                per_image,
            });
        }
        let batch = input.len() / per_image;
        if batch == 0 {
            return Err(RunError::EmptyBatch);
        }
        if workspace.layout != self.layout {
            return Err(RunError::WorkspaceMismatch);
        }
        if batch > workspace.capacity {
            return Err(RunError::BatchTooLarge {
                batch,
                capacity: workspace.capacity,
            });
        }
        if features && !workspace.options.features {
            return Err(RunError::NoFeatures);
        }
        Ok(batch)
    }
}
