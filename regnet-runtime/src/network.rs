//! A loaded network, independent of the backend that runs it. Generated network types wrap
//! this; a new backend becomes another variant of `Backend` without touching generated code.

use std::path::{Path, PathBuf};

use regnet_spec::{Architecture, INPUT_CHANNELS};

use crate::cpu::CpuNetwork;
#[cfg(feature = "cuda")]
use crate::cuda::{CudaNetwork, Precision};
use crate::device::{Device, DeviceError};
use crate::error::RunError;
use crate::kernels::Kernels;
use crate::plan::{Buffer, KeptMap, kept_map};
use crate::profile::Profile;
use crate::weights::{CheckpointSource, LoadError, NetworkWeights, Scheme};
use crate::workspace::{Workspace, WorkspaceLayout};

enum Backend {
    Cpu(CpuNetwork),
    #[cfg(feature = "cuda")]
    Cuda(CudaNetwork),
}

impl Backend {
    fn new(
        device: Device,
        architecture: Architecture<'static>,
        weights: &NetworkWeights,
    ) -> Result<Self, DeviceError> {
        match device {
            Device::Cpu => Ok(Backend::Cpu(CpuNetwork::new(
                architecture,
                weights,
                Kernels::detect(),
            ))),
            #[cfg(feature = "cuda")]
            Device::Cuda(ordinal) => {
                CudaNetwork::new(architecture, weights, ordinal, Precision::Fp32).map(Backend::Cuda)
            }
            #[cfg(feature = "cuda")]
            Device::CudaTf32(ordinal) => {
                CudaNetwork::new(architecture, weights, ordinal, Precision::Tf32).map(Backend::Cuda)
            }
        }
    }

    /// Reads the checkpoint at `source` for `device`: the CPU folds and packs it step by step
    /// as it is read; a GPU takes the whole network's weights to upload.
    fn load(
        device: Device,
        architecture: Architecture<'static>,
        source: CheckpointSource<'_>,
        alternative: Option<(&str, &[usize])>,
    ) -> Result<(Self, Scheme), LoadError> {
        match device {
            Device::Cpu => CpuNetwork::load(architecture, source, alternative, Kernels::detect())
                .map(|(cpu, scheme)| (Backend::Cpu(cpu), scheme)),
            #[cfg(feature = "cuda")]
            Device::Cuda(_) | Device::CudaTf32(_) => {
                use crate::weights::{IN_MEMORY, load, load_bytes};
                let (weights, scheme) = match source {
                    CheckpointSource::File(path) => load(path, &architecture, alternative),
                    CheckpointSource::Bytes(bytes) => {
                        load_bytes(bytes, Path::new(IN_MEMORY), &architecture, alternative)
                    }
                }?;
                Ok((Backend::new(device, architecture, &weights)?, scheme))
            }
        }
    }

    fn device(&self) -> Device {
        match self {
            Backend::Cpu(_) => Device::Cpu,
            #[cfg(feature = "cuda")]
            Backend::Cuda(cuda) => match cuda.precision() {
                Precision::Fp32 => Device::Cuda(cuda.ordinal()),
                Precision::Tf32 => Device::CudaTf32(cuda.ordinal()),
            },
        }
    }

    fn architecture(&self) -> &Architecture<'static> {
        match self {
            Backend::Cpu(cpu) => cpu.architecture(),
            #[cfg(feature = "cuda")]
            Backend::Cuda(cuda) => cuda.architecture(),
        }
    }

    /// A pass over `batch` images (checked by the caller); with `profile`, every step timed.
    fn run(
        &self,
        input: &[f32],
        batch: usize,
        workspace: &mut Workspace,
        features: bool,
        profile: Option<&mut Profile>,
    ) -> Result<(), RunError> {
        match self {
            Backend::Cpu(cpu) => cpu.run(input, batch, workspace, features, profile),
            #[cfg(feature = "cuda")]
            Backend::Cuda(cuda) => match profile {
                Some(profile) => cuda.profile(input, batch, workspace, profile)?,
                None => cuda.run(input, batch, workspace, features)?,
            },
        }
        Ok(())
    }
}

/// Where a network's weights came from, to read them again for another device.
enum Source {
    File {
        path: PathBuf,
        alternative: Option<(String, Vec<usize>)>,
    },
    /// Bytes the caller owns: not kept, so not read again.
    Bytes,
    Random(u64),
}

/// A network with its weights, ready to run. `Send + Sync`: share it between threads, each with
/// its own workspace.
pub struct Network {
    backend: Backend,
    source: Source,
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

impl std::fmt::Debug for Network {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Network")
            .field("name", &self.architecture().name)
            .field("device", &self.device())
            .field("scheme", &self.scheme)
            .finish_non_exhaustive()
    }
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

    /// Kept map `index`; `index` is at most the number of stages (checked by the callers).
    fn get(&self, index: usize) -> (&'w [f32], [usize; 4]) {
        let KeptMap {
            channels,
            size,
            offset,
        } = kept_map(self.architecture, index);
        let start = offset * self.batch;
        (
            &self.buffer[start..start + self.batch * channels * size * size],
            [self.batch, channels, size, size],
        )
    }
}

impl Network {
    /// Loads a safetensors checkpoint in torchvision's, timm's or pycls's naming, for the CPU.
    /// `alternative` is the other compatibility rule's stage widths, for a helpful error.
    pub fn load(
        architecture: Architecture<'static>,
        path: &Path,
        alternative: Option<(&str, &[usize])>,
    ) -> Result<Self, LoadError> {
        Self::load_on(Device::Cpu, architecture, path, alternative)
    }

    /// Loads a checkpoint as [`Network::load`] does, straight onto `device`: the file is read
    /// once and the weights are prepared only for that device.
    pub fn load_on(
        device: Device,
        architecture: Architecture<'static>,
        path: &Path,
        alternative: Option<(&str, &[usize])>,
    ) -> Result<Self, LoadError> {
        let source = Source::File {
            path: path.to_owned(),
            alternative: alternative.map(|(name, widths)| (name.to_owned(), widths.to_vec())),
        };
        let checkpoint = CheckpointSource::File(path);
        Self::read(device, architecture, checkpoint, alternative, source)
    }

    /// Loads a whole safetensors checkpoint already in memory, as [`Network::load_on`] reads a
    /// file. The bytes are not kept: [`Network::to_device`] cannot read them again.
    pub fn from_bytes_on(
        device: Device,
        architecture: Architecture<'static>,
        bytes: &[u8],
        alternative: Option<(&str, &[usize])>,
    ) -> Result<Self, LoadError> {
        let checkpoint = CheckpointSource::Bytes(bytes);
        Self::read(device, architecture, checkpoint, alternative, Source::Bytes)
    }

    fn read(
        device: Device,
        architecture: Architecture<'static>,
        checkpoint: CheckpointSource<'_>,
        alternative: Option<(&str, &[usize])>,
        source: Source,
    ) -> Result<Self, LoadError> {
        architecture
            .validate()
            .map_err(|reason| LoadError::InvalidArchitecture { reason })?;
        let (backend, scheme) = Backend::load(device, architecture, checkpoint, alternative)?;
        Ok(Self::new(backend, source, Some(scheme)))
    }

    /// A network running on `backend`, whose weights came from `source`.
    fn new(backend: Backend, source: Source, scheme: Option<Scheme>) -> Self {
        Network {
            layout: WorkspaceLayout::of(backend.architecture()),
            backend,
            source,
            scheme,
        }
    }

    /// The same network on `device`. The weights are read again from where they came from
    /// (the checkpoint file, or the random seed) and prepared for that device; on the device
    /// it already is on, the network is returned as it is. To read a checkpoint only once,
    /// load it with [`Network::load_on`] instead.
    pub fn to_device(self, device: Device) -> Result<Self, DeviceError> {
        if device == self.device() {
            return Ok(self);
        }
        let architecture = *self.architecture();
        // The same reading as the first load's, prepared for the new device.
        let backend = match &self.source {
            Source::File { path, alternative } => {
                let alternative = alternative
                    .as_ref()
                    .map(|(name, widths)| (name.as_str(), widths.as_slice()));
                let checkpoint = CheckpointSource::File(path);
                match Backend::load(device, architecture, checkpoint, alternative) {
                    Ok((backend, _)) => backend,
                    Err(LoadError::Device(error)) => return Err(error),
                    Err(error) => return Err(DeviceError::Reload(error.to_string())),
                }
            }
            Source::Bytes => {
                return Err(DeviceError::Reload(
                    "its checkpoint came as bytes, which the network does not keep; load them \
                     onto the device with `from_bytes_on`"
                        .to_owned(),
                ));
            }
            Source::Random(seed) => Backend::new(
                device,
                architecture,
                &NetworkWeights::random(&architecture, *seed),
            )?,
        };
        Ok(Network { backend, ..self })
    }

    /// The device this network runs on.
    pub fn device(&self) -> Device {
        self.backend.device()
    }

    /// Deterministic random weights (and randomized BatchNorm statistics): for benchmarks.
    pub fn random(architecture: Architecture<'static>, seed: u64) -> Result<Self, RunError> {
        architecture
            .validate()
            .map_err(RunError::InvalidArchitecture)?;
        let weights = NetworkWeights::random(&architecture, seed);
        let backend = Backend::new(Device::Cpu, architecture, &weights)?;
        Ok(Self::new(backend, Source::Random(seed), None))
    }

    /// The naming scheme of the checkpoint it was loaded from.
    pub fn scheme(&self) -> Option<Scheme> {
        self.scheme
    }

    /// The architecture this network was built for: stages, widths, resolution, classes.
    pub fn architecture(&self) -> &Architecture<'static> {
        self.backend.architecture()
    }

    /// NCHW f32 images in, logits out (`[batch][classes]`, inside the workspace).
    pub fn forward<'w>(
        &self,
        input: &[f32],
        workspace: &'w mut Workspace,
    ) -> Result<&'w [f32], RunError> {
        let batch = self.check(input.len(), workspace, false)?;
        self.backend.run(input, batch, workspace, false, None)?;
        Ok(workspace.host(Buffer::Logits, batch * self.architecture().num_classes))
    }

    /// Like `forward`, and also keeps the stem's and every stage's output.
    pub fn forward_features<'w>(
        &'w self,
        input: &[f32],
        workspace: &'w mut Workspace,
    ) -> Result<(&'w [f32], FeatureMaps<'w>), RunError> {
        let batch = self.check(input.len(), workspace, true)?;
        self.backend.run(input, batch, workspace, true, None)?;
        let architecture = self.architecture();
        let features = FeatureMaps {
            buffer: workspace.host(Buffer::Kept, batch * self.layout.floats(Buffer::Kept)),
            architecture,
            batch,
        };
        Ok((
            workspace.host(Buffer::Logits, batch * architecture.num_classes),
            features,
        ))
    }

    /// Runs like `forward` and records the time of every step of the plan into `profile`. On a
    /// GPU each step is launched and waited for on its own (no graph), so its time includes
    /// the launch.
    pub fn profile(
        &self,
        input: &[f32],
        workspace: &mut Workspace,
        profile: &mut Profile,
    ) -> Result<(), RunError> {
        let batch = self.check(input.len(), workspace, false)?;
        self.backend
            .run(input, batch, workspace, false, Some(profile))
    }

    /// Images on the network's GPU in, logits out (`[batch][classes]`, in the workspace's
    /// device memory, valid until its next pass): nothing crosses to the host. The pass waits
    /// for the work queued on the input's stream.
    #[cfg(feature = "cuda")]
    #[cfg_attr(docsrs, doc(cfg(feature = "cuda")))]
    pub fn forward_on_device<'w>(
        &self,
        input: &cudarc::driver::CudaSlice<f32>,
        workspace: &'w mut Workspace,
    ) -> Result<cudarc::driver::CudaView<'w, f32>, RunError> {
        let batch = self.check(input.len(), workspace, false)?;
        match &self.backend {
            Backend::Cuda(cuda) => Ok(cuda.run_on_device(input, batch, workspace)?),
            Backend::Cpu(_) => Err(DeviceError::Unsupported(
                "this network is on the CPU: move it with `to_device` first".to_owned(),
            )
            .into()),
        }
    }

    /// Copies host floats (images, say) to the network's GPU, for `forward_on_device`.
    #[cfg(feature = "cuda")]
    #[cfg_attr(docsrs, doc(cfg(feature = "cuda")))]
    pub fn upload(&self, data: &[f32]) -> Result<cudarc::driver::CudaSlice<f32>, RunError> {
        match &self.backend {
            Backend::Cuda(cuda) => Ok(cuda.upload(data)?),
            Backend::Cpu(_) => Err(DeviceError::Unsupported(
                "this network is on the CPU: move it with `to_device` first".to_owned(),
            )
            .into()),
        }
    }

    /// The batch in `floats` input floats, checked against the network and the workspace.
    fn check(
        &self,
        floats: usize,
        workspace: &Workspace,
        features: bool,
    ) -> Result<usize, RunError> {
        let architecture = self.architecture();
        let size = architecture.resolution;
        let per_image = INPUT_CHANNELS * size * size;
        if !floats.is_multiple_of(per_image) {
            return Err(RunError::InputLength {
                name: architecture.name,
                floats,
                channels: INPUT_CHANNELS,
                size,
                per_image,
            });
        }
        let batch = floats / per_image;
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
        if matches!(self.backend, Backend::Cpu(_)) && workspace.options.device != Device::Cpu {
            return Err(RunError::WorkspaceDevice {
                device: workspace.options.device,
            });
        }
        Ok(batch)
    }
}
