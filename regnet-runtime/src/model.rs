//! The statically shaped model every `regnet!` network is: one generic type over an
//! architecture known at compile time, so that all generated models share one API and code
//! generic over models is plain generic Rust.

use std::fmt;
use std::io::Read;
use std::marker::PhantomData;
use std::path::Path;

#[cfg(feature = "graph")]
use regnet_spec::graph;
use regnet_spec::{Architecture, INPUT_CHANNELS, Stage};

use crate::Image;
use crate::device::{Device, DeviceError};
use crate::error::RunError;
use crate::network::{FeatureMaps, Network};
use crate::weights::LoadError;
use crate::workspace::{Options, Workspace, WorkspaceLayout};

/// An architecture known at compile time: `regnet!` emits one marker type implementing this per
/// spec, and [`Model`] reads everything it knows about its network from it.
pub trait StaticArchitecture: 'static {
    /// Stages, widths, resolution and classes, as the spec compiled them.
    const ARCHITECTURE: Architecture<'static>;
    /// Multiply-adds of one forward pass, counted as pycls counts them.
    const FLOPS: u64;
    /// Parameters (weights and biases, BatchNorm folded or not: pycls's count).
    const PARAMS: u64;
    /// Activations (output elements of every convolution and the classifier).
    const ACTS: u64;
    /// The other width-rounding rule's name and stage widths, when they differ: a checkpoint
    /// made with that rule is recognized in the load error.
    const COMPAT_ALTERNATIVE: Option<(&'static str, &'static [usize])>;
}

/// A network of architecture `A` with its weights: `RESOLUTION`×`RESOLUTION` RGB images in,
/// `CLASSES` logits out, every shape a compile-time constant. `regnet!` names one per spec
/// (`pub type RegNetY400MF = Model<RegNetY400MFArchitecture, 224, 1000>`); code generic over
/// models takes `Model<A, R, C>`. `Send + Sync`: share it between threads, each with its own
/// [`Workspace`].
pub struct Model<A: StaticArchitecture, const RESOLUTION: usize, const CLASSES: usize> {
    network: Network,
    architecture: PhantomData<fn() -> A>,
}

impl<A: StaticArchitecture, const RESOLUTION: usize, const CLASSES: usize>
    Model<A, RESOLUTION, CLASSES>
{
    /// Stops the build of a `Model` whose shape parameters are not its architecture's.
    const SHAPES_AGREE: () = assert!(
        A::ARCHITECTURE.resolution == RESOLUTION && A::ARCHITECTURE.num_classes == CLASSES,
        "Model<A, RESOLUTION, CLASSES>: RESOLUTION and CLASSES must be A's resolution and classes"
    );

    /// The network's name, as its spec gives it (`RegNetY-400MF`).
    pub const NAME: &'static str = A::ARCHITECTURE.name;
    /// Channels, height and width of one input image (NCHW without the batch).
    pub const INPUT_SHAPE: [usize; 3] = [INPUT_CHANNELS, RESOLUTION, RESOLUTION];
    /// Outputs of the classifier.
    pub const NUM_CLASSES: usize = CLASSES;
    /// Multiply-adds of one forward pass, counted as pycls counts them.
    pub const FLOPS: u64 = A::FLOPS;
    /// Parameters, as pycls counts them.
    pub const PARAMS: u64 = A::PARAMS;
    /// Activations (output elements of every convolution and the classifier).
    pub const ACTS: u64 = A::ACTS;
    /// The stages s1..sN in forward order.
    pub const STAGES: &'static [Stage] = A::ARCHITECTURE.stages;
    /// The whole architecture.
    pub const ARCHITECTURE: Architecture<'static> = A::ARCHITECTURE;
    /// The other width-rounding rule's name and stage widths, when they differ.
    pub const COMPAT_ALTERNATIVE: Option<(&'static str, &'static [usize])> = A::COMPAT_ALTERNATIVE;
    /// Floats per image of each workspace buffer.
    pub const WORKSPACE: WorkspaceLayout = WorkspaceLayout::of(&A::ARCHITECTURE);

    fn new(network: Network) -> Self {
        let () = Self::SHAPES_AGREE;
        Model {
            network,
            architecture: PhantomData,
        }
    }

    /// Loads a safetensors checkpoint in torchvision's, timm's or pycls's naming.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, LoadError> {
        Self::load_on(path, Device::Cpu)
    }

    /// Loads a checkpoint as [`Model::load`] does, straight onto `device` (with the runtime's
    /// `cuda` feature, a GPU: `Device::Cuda(0)`): the file is read once.
    pub fn load_on(path: impl AsRef<Path>, device: Device) -> Result<Self, LoadError> {
        Network::load_on(
            device,
            A::ARCHITECTURE,
            path.as_ref(),
            A::COMPAT_ALTERNATIVE,
        )
        .map(Self::new)
    }

    /// Loads a safetensors checkpoint already in memory (`include_bytes!`, a download, wasm),
    /// as [`Model::load`] reads a file.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, LoadError> {
        Self::from_bytes_on(bytes, Device::Cpu)
    }

    /// Loads a checkpoint in memory as [`Model::from_bytes`] does, straight onto `device`.
    /// The bytes are not kept, so [`Model::to_device`] cannot read them again: load onto the
    /// device that runs the model.
    pub fn from_bytes_on(bytes: &[u8], device: Device) -> Result<Self, LoadError> {
        Network::from_bytes_on(device, A::ARCHITECTURE, bytes, A::COMPAT_ALTERNATIVE).map(Self::new)
    }

    /// Reads a safetensors checkpoint to its end from `reader` (a socket, an archive entry)
    /// and loads it as [`Model::from_bytes`] does.
    pub fn from_reader(mut reader: impl Read) -> Result<Self, LoadError> {
        let mut bytes = Vec::new();
        reader
            .read_to_end(&mut bytes)
            .map_err(|source| LoadError::Io {
                path: Path::new(crate::weights::IN_MEMORY).into(),
                source,
            })?;
        Self::from_bytes(&bytes)
    }

    /// Deterministic random weights and BatchNorm statistics, for benchmarks and demos;
    /// whatever the runtime refuses is an error, like every constructor's.
    pub fn random(seed: u64) -> Result<Self, RunError> {
        Network::random(A::ARCHITECTURE, seed).map(Self::new)
    }

    /// Buffers and threads for batches of up to `capacity` images (default options: all
    /// cores, the best instruction set); an error if they do not fit in memory.
    pub fn workspace(capacity: usize) -> Result<Workspace, RunError> {
        Workspace::new(&A::ARCHITECTURE, capacity)
    }

    /// A workspace for batches of up to `capacity` images, with `options` (threads,
    /// instruction set, room for features, device).
    pub fn workspace_with(capacity: usize, options: Options) -> Result<Workspace, RunError> {
        Workspace::with_options(&A::ARCHITECTURE, capacity, options)
    }

    /// Logits of a batch of images; no heap allocation.
    pub fn forward<'w>(
        &self,
        images: &[Image<RESOLUTION, RESOLUTION>],
        workspace: &'w mut Workspace,
    ) -> Result<&'w [[f32; CLASSES]], RunError> {
        let input = images.as_flattened().as_flattened().as_flattened();
        let logits = self.network.forward(input, workspace)?;
        Ok(logits.as_chunks::<CLASSES>().0)
    }

    /// Logits (`[batch][classes]`) of NCHW f32 images given as one slice, whose length is
    /// checked.
    pub fn forward_slice<'w>(
        &self,
        input: &[f32],
        workspace: &'w mut Workspace,
    ) -> Result<&'w [f32], RunError> {
        self.network.forward(input, workspace)
    }

    /// Logits and the stem's and every stage's output (NCHW), as a backbone.
    pub fn forward_features<'w>(
        &'w self,
        input: &[f32],
        workspace: &'w mut Workspace,
    ) -> Result<(&'w [f32], FeatureMaps<'w>), RunError> {
        self.network.forward_features(input, workspace)
    }

    /// The backend-independent network, for other backends, tools and collections of models
    /// of different architectures.
    pub fn network(&self) -> &Network {
        &self.network
    }

    /// The same model on another device (with the runtime's `cuda` feature, a GPU:
    /// `Device::Cuda(0)`); its weights are read again from their checkpoint file or seed
    /// (`load_on` reads a checkpoint only once).
    pub fn to_device(self, device: Device) -> Result<Self, DeviceError> {
        self.network.to_device(device).map(Self::new)
    }

    /// The operation graph: one node per convolution, BN, ReLU, SE, residual add, pool and
    /// linear layer, each with its input and output shape.
    #[cfg(feature = "graph")]
    #[cfg_attr(docsrs, doc(cfg(feature = "graph")))]
    pub fn graph() -> graph::Graph {
        graph::build(&A::ARCHITECTURE)
    }
}

impl<A: StaticArchitecture, const RESOLUTION: usize, const CLASSES: usize> fmt::Debug
    for Model<A, RESOLUTION, CLASSES>
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Model")
            .field("name", &Self::NAME)
            .field("network", &self.network)
            .finish()
    }
}
