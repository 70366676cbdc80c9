//! Everything a forward pass writes, allocated once: after `Workspace::new`, a forward pass makes
//! no heap allocation. Sizes per image are computed by a `const fn` from the architecture, so for
//! a generated network they are compile-time constants.

use regnet_spec::{Architecture, INPUT_CHANNELS, strided};

use crate::error::RunError;
use crate::kernels::Isa;
use crate::kernels::aligned::AlignedBuffer;

/// Floats per image of each buffer a forward pass uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WorkspaceLayout {
    /// The input images with a zero border (NCHW).
    pub image: usize,
    /// Each of the two buffers that block inputs and outputs alternate between (NHWC).
    pub activation: usize,
    /// The 1×1 projection of the shortcut.
    pub shortcut: usize,
    /// The bottleneck after the first 1×1 convolution, with a zero border for the 3×3.
    pub bottleneck_padded: usize,
    /// The bottleneck after the 3×3.
    pub bottleneck: usize,
    /// Squeeze-and-excitation vectors (pooled, hidden, gate), and the head's pooled features.
    pub vector: usize,
    /// The classifier's outputs (one per class).
    pub logits: usize,
    /// The stem's and every stage's output in NCHW (only with features).
    pub features: usize,
}

const fn max(a: usize, b: usize) -> usize {
    if a > b { a } else { b }
}

impl WorkspaceLayout {
    /// The per-image sizes for `architecture`: each buffer as large as the largest layer that
    /// uses it needs. A `const fn`, so a generated network's layout is a compile-time constant.
    pub const fn of(architecture: &Architecture<'_>) -> Self {
        let r = architecture.resolution;
        let stem = architecture.stem_size();
        let mut layout = WorkspaceLayout {
            image: INPUT_CHANNELS * (r + 2) * (r + 2),
            activation: architecture.stem_width * stem * stem,
            shortcut: 0,
            bottleneck_padded: 0,
            bottleneck: 0,
            vector: 0,
            logits: architecture.num_classes,
            features: architecture.stem_width * stem * stem,
        };
        let mut s = 0;
        let mut last_width = architecture.stem_width;
        while s < architecture.stages.len() {
            let stage = &architecture.stages[s];
            let (h_in, h_out, w_b) = (stage.in_size, stage.out_size, stage.bottleneck_width);
            // The first block reads at h_in; later blocks at h_out, never larger.
            layout.activation = max(layout.activation, stage.width * h_out * h_out);
            layout.shortcut = max(layout.shortcut, stage.width * h_out * h_out);
            layout.bottleneck_padded = max(layout.bottleneck_padded, w_b * (h_in + 2) * (h_in + 2));
            layout.bottleneck = max(
                layout.bottleneck,
                w_b * strided(h_in, stage.stride) * strided(h_in, stage.stride),
            );
            // SE: pooled means and gates per image, and the hidden layer.
            let se = max(
                match stage.se_width {
                    Some(w) => w,
                    None => 0,
                },
                match stage.se_width_rest {
                    Some(w) => w,
                    None => 0,
                },
            );
            layout.vector = max(layout.vector, 2 * w_b + se);
            layout.features += stage.width * h_out * h_out;
            last_width = stage.width;
            s += 1;
        }
        layout.vector = max(layout.vector, last_width);
        layout
    }

    /// Floats per image of all buffers but `features` (which only workspaces with
    /// [`Options::features`] allocate), counting both activation buffers.
    pub const fn floats_without_features(&self) -> usize {
        self.image
            + 2 * self.activation
            + self.shortcut
            + self.bottleneck_padded
            + self.bottleneck
            + self.vector
            + self.logits
    }
}

/// The most threads a workspace starts: more than any machine this runs on has cores, few
/// enough that a mistyped count does not start thousands of threads.
pub const MAX_THREADS: usize = 256;

/// How a forward pass runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Options {
    /// Threads working on each layer (default: the available cores; at most `MAX_THREADS`).
    pub threads: usize,
    /// The kernels' instruction set (default: the best this CPU has).
    pub isa: Isa,
    /// Keep room for the stem's and every stage's output (`forward_features`).
    pub features: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            isa: Isa::detect(),
            features: false,
        }
    }
}

/// The buffers and threads of forward passes of up to `capacity` images. Each thread running
/// the (shared, `Sync`) network brings its own workspace.
pub struct Workspace {
    pub(crate) layout: WorkspaceLayout,
    pub(crate) capacity: usize,
    pub(crate) options: Options,
    pub(crate) pool: Option<rayon::ThreadPool>,
    pub(crate) image: AlignedBuffer,
    pub(crate) activations: [AlignedBuffer; 2],
    pub(crate) shortcut: AlignedBuffer,
    pub(crate) bottleneck_padded: AlignedBuffer,
    pub(crate) bottleneck: AlignedBuffer,
    pub(crate) vectors: AlignedBuffer,
    pub(crate) logits: AlignedBuffer,
    pub(crate) features: AlignedBuffer,
    /// Device buffers, stream and captured graphs, made by the first pass of a network on a
    /// GPU (the only allocations after `new`, once per batch size for the graphs).
    #[cfg(feature = "cuda")]
    pub(crate) device: Option<crate::cuda::DeviceWorkspace>,
}

impl Workspace {
    /// A workspace for batches of up to `capacity` images with default options.
    pub fn new(architecture: &Architecture<'_>, capacity: usize) -> Result<Self, RunError> {
        Self::with_options(architecture, capacity, Options::default())
    }

    /// A workspace with the given options. Fails, without allocating, when the buffers for
    /// `capacity` images cannot be had; thread counts are clamped to 1..=`MAX_THREADS`.
    pub fn with_options(
        architecture: &Architecture<'_>,
        capacity: usize,
        options: Options,
    ) -> Result<Self, RunError> {
        let layout = WorkspaceLayout::of(architecture);
        let too_large = || RunError::WorkspaceTooLarge { capacity };
        let per_image =
            layout.floats_without_features() + if options.features { layout.features } else { 0 };
        let total = per_image.checked_mul(capacity).ok_or_else(too_large)?;
        if total
            .checked_mul(size_of::<f32>())
            .is_none_or(|bytes| bytes > isize::MAX as usize)
        {
            return Err(too_large());
        }
        let buffer =
            |floats: usize| AlignedBuffer::try_zeroed(floats * capacity).ok_or_else(too_large);
        // One persistent pool per workspace: threads start once, not per layer or per pass. If
        // the system refuses threads, the workspace runs on the caller's thread.
        let threads = options.threads.clamp(1, MAX_THREADS);
        let pool = (threads > 1)
            .then(|| {
                rayon::ThreadPoolBuilder::new()
                    .num_threads(threads)
                    .thread_name(|i| format!("regnet-{i}"))
                    .build()
                    .ok()
            })
            .flatten();
        let options = Options {
            threads: pool
                .as_ref()
                .map_or(1, rayon::ThreadPool::current_num_threads),
            isa: Isa::supported(options.isa),
            features: options.features,
        };
        Ok(Workspace {
            layout,
            capacity,
            options,
            pool,
            image: buffer(layout.image)?,
            activations: [buffer(layout.activation)?, buffer(layout.activation)?],
            shortcut: buffer(layout.shortcut)?,
            bottleneck_padded: buffer(layout.bottleneck_padded)?,
            bottleneck: buffer(layout.bottleneck)?,
            vectors: buffer(layout.vector)?,
            logits: buffer(layout.logits)?,
            features: if options.features {
                buffer(layout.features)?
            } else {
                AlignedBuffer::default()
            },
            #[cfg(feature = "cuda")]
            device: None,
        })
    }

    /// The largest batch this workspace runs.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// The options in effect: `threads` is the number the pool actually started (1 without a
    /// pool) and `isa` what this CPU supports of the requested instruction set.
    pub fn options(&self) -> Options {
        self.options
    }

    /// The per-image buffer sizes this workspace was made with, from its architecture.
    pub fn layout(&self) -> WorkspaceLayout {
        self.layout
    }
}
