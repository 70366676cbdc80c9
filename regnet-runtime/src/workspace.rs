//! Everything a forward pass writes, allocated once: after `Workspace::new`, a forward pass makes
//! no heap allocation. One buffer per role of the plan ([`Buffer`]), each sized per image by a
//! `const fn` from the plan's steps, so for a generated network the sizes are compile-time
//! constants.

use regnet_spec::Architecture;

use crate::device::Device;
use crate::error::RunError;
use crate::kernels::aligned::AlignedBuffer;
use crate::kernels::parallel::Team;
use crate::kernels::{Isa, Kernels};
use crate::plan::{self, BLOCK_STEPS, Buffer, Step};

/// Floats per image of each buffer role ([`Buffer`]) a forward pass uses: each as large as the
/// largest reach of the plan's steps into it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WorkspaceLayout {
    floats: [usize; Buffer::COUNT],
}

impl WorkspaceLayout {
    /// The per-image sizes for `architecture`, from the steps of its plan. A `const fn`, so a
    /// generated network's layout is a compile-time constant. Every block after a stage's first
    /// has the same shapes, so each stage's first and second blocks stand for all of them.
    pub const fn of(architecture: &Architecture<'_>) -> Self {
        let mut layout = WorkspaceLayout {
            floats: [0; Buffer::COUNT],
        };
        layout.reach(&plan::stem(architecture));
        layout.reach(&plan::keep(architecture, 0, Buffer::Activation(0)));
        let mut stage = 1;
        while stage <= architecture.stages.len() {
            layout.reach_block(&architecture.block(stage, 1));
            if architecture.stages[stage - 1].depth > 1 {
                layout.reach_block(&architecture.block(stage, 2));
            }
            layout.reach(&plan::keep(architecture, stage, Buffer::Activation(0)));
            stage += 1;
        }
        let head = plan::head(architecture, Buffer::Activation(0));
        layout.reach(&head[0]);
        layout.reach(&head[1]);
        // Which of the two activation buffers a block reads depends on its position: both are
        // as large as the larger.
        let (a, b) = (Buffer::Activation(0).index(), Buffer::Activation(1).index());
        let larger = if layout.floats[a] > layout.floats[b] {
            layout.floats[a]
        } else {
            layout.floats[b]
        };
        layout.floats[a] = larger;
        layout.floats[b] = larger;
        layout
    }

    const fn reach_block(&mut self, block: &regnet_spec::Block) {
        let steps = plan::block(block, 0, Buffer::Activation(0), Buffer::Activation(1));
        let mut i = 0;
        while i < BLOCK_STEPS {
            if let Some(step) = &steps[i] {
                self.reach(step);
            }
            i += 1;
        }
    }

    const fn reach(&mut self, step: &Step) {
        let reaches = step.reaches();
        let mut i = 0;
        while i < reaches.len() {
            if let Some((buffer, floats)) = reaches[i] {
                let slot = &mut self.floats[buffer.index()];
                if floats > *slot {
                    *slot = floats;
                }
            }
            i += 1;
        }
    }

    /// Floats per image of `buffer`.
    pub const fn floats(&self, buffer: Buffer) -> usize {
        self.floats[buffer.index()]
    }

    /// The roles a workspace keeps in host memory: every one for the CPU, only the results
    /// (logits, and features when kept) for a GPU, whose buffers live on the device.
    pub fn host_buffers(options: &Options) -> impl Iterator<Item = Buffer> + '_ {
        Buffer::ALL.into_iter().filter(|&buffer| match buffer {
            Buffer::Kept => options.features,
            Buffer::Logits => true,
            _ => options.device == Device::Cpu,
        })
    }
}

/// The optimization level cargo compiled the runtime (and so its kernels) at: `"0"` in a debug
/// build that does not optimize it, where a forward pass is about 90× slower than in release.
pub const OPT_LEVEL: &str = env!("REGNET_RUNTIME_OPT_LEVEL");

/// Says once per process, on stderr, that the kernels were built unoptimized and how to fix it:
/// a debug build of an application compiles its dependencies at opt-level 0 too.
fn warn_if_unoptimized() {
    static WARNED: std::sync::Once = std::sync::Once::new();
    if OPT_LEVEL == "0" {
        WARNED.call_once(|| eprintln!("{UNOPTIMIZED}"));
    }
}

/// What [`warn_if_unoptimized`] says.
const UNOPTIMIZED: &str = "regnet: the runtime's kernels were built without optimization \
    (opt-level 0, a debug build), which makes forward passes about 90× slower; optimize them \
    even in debug builds by adding to your Cargo.toml:\n\n[profile.dev.package.regnet-runtime]\n\
    opt-level = 3\n";

/// The most threads a workspace starts: more than any machine this runs on has cores, few
/// enough that a mistyped count does not start thousands of threads.
pub const MAX_THREADS: usize = 256;

/// Which threads run a pass's kernels.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Pool {
    /// The workspace's own team: `Options::threads - 1` helper threads started once with the
    /// workspace, which spin briefly between steps (a step after a short serial stretch starts
    /// sooner than on a pool whose idle threads sleep).
    #[default]
    Own,
    /// The application's rayon pool: the one the pass is called in
    /// (`pool.install(|| model.forward(..))`), or rayon's global pool outside any. The pass
    /// splits its work for that pool's threads (`Options::threads` is not used) and the
    /// workspace starts no threads.
    Rayon,
}

/// How a forward pass runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Options {
    /// Threads working on each layer (default: the available cores; at most `MAX_THREADS`),
    /// with the workspace's own pool.
    pub threads: usize,
    /// Whose threads run the kernels (default: the workspace's own).
    pub pool: Pool,
    /// The kernels' instruction set (default: the best this CPU has).
    pub isa: Isa,
    /// Keep room for the stem's and every stage's output (`forward_features`).
    pub features: bool,
    /// The device of the networks this workspace serves (default: the CPU). A workspace for a
    /// GPU keeps only the results in host memory; one for the CPU also serves a GPU network,
    /// with host buffers it does not use.
    pub device: Device,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            pool: Pool::Own,
            isa: Isa::detect(),
            features: false,
            device: Device::Cpu,
        }
    }
}

/// The buffers and threads of forward passes of up to `capacity` images. Each thread running
/// the (shared, `Sync`) network brings its own workspace.
pub struct Workspace {
    pub(crate) layout: WorkspaceLayout,
    pub(crate) capacity: usize,
    pub(crate) options: Options,
    /// The kernel table, chosen once from `options.isa`.
    pub(crate) kernels: Kernels,
    /// The threads of each pass's kernels besides the caller's (none for one thread).
    pub(crate) team: Option<Team>,
    /// Host memory per buffer role, `capacity` images each; empty for the roles the options'
    /// device keeps elsewhere (`WorkspaceLayout::host_buffers`).
    pub(crate) buffers: [AlignedBuffer; Buffer::COUNT],
    /// Device buffers, stream and captured graphs, made by the first pass of a network on a
    /// GPU (the only allocations after `new`, once per batch size for the graphs).
    #[cfg(feature = "cuda")]
    pub(crate) device: Option<crate::cuda::DeviceWorkspace>,
}

impl std::fmt::Debug for Workspace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Workspace")
            .field("capacity", &self.capacity)
            .field("options", &self.options)
            .field("host_bytes", &self.host_bytes())
            .finish_non_exhaustive()
    }
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
        warn_if_unoptimized();
        let layout = WorkspaceLayout::of(architecture);
        let too_large = || RunError::WorkspaceTooLarge { capacity };
        let per_image = WorkspaceLayout::host_buffers(&options)
            .try_fold(0usize, |sum, buffer| sum.checked_add(layout.floats(buffer)))
            .ok_or_else(too_large)?;
        let total = per_image.checked_mul(capacity).ok_or_else(too_large)?;
        if total
            .checked_mul(size_of::<f32>())
            .is_none_or(|bytes| bytes > isize::MAX as usize)
        {
            return Err(too_large());
        }
        let mut buffers: [AlignedBuffer; Buffer::COUNT] = Default::default();
        for buffer in WorkspaceLayout::host_buffers(&options) {
            buffers[buffer.index()] = AlignedBuffer::try_zeroed(layout.floats(buffer) * capacity)
                .ok_or_else(too_large)?;
        }
        // One persistent team per workspace: threads start once, not per layer or per pass. If
        // the system refuses threads, the workspace runs on the caller's thread.
        let threads = options.threads.clamp(1, MAX_THREADS);
        let team = (threads > 1 && options.pool == Pool::Own)
            .then(|| Team::new(threads))
            .flatten();
        let kernels = Kernels::new(options.isa);
        let options = Options {
            threads: match options.pool {
                Pool::Own => team.as_ref().map_or(1, Team::threads),
                Pool::Rayon => threads,
            },
            isa: kernels.isa(),
            ..options
        };
        Ok(Workspace {
            layout,
            capacity,
            options,
            kernels,
            team,
            buffers,
            #[cfg(feature = "cuda")]
            device: None,
        })
    }

    /// The largest batch this workspace runs.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// The options in effect: `threads` is the number the team actually has (1 without a team;
    /// with `Pool::Rayon`, the number asked for, unused) and `isa` what this CPU supports of the
    /// requested instruction set.
    pub fn options(&self) -> Options {
        self.options
    }

    /// The per-image buffer sizes this workspace was made with, from its architecture.
    pub fn layout(&self) -> WorkspaceLayout {
        self.layout
    }

    /// The kernel table its passes run, chosen from `options().isa` when it was made.
    pub fn kernels(&self) -> Kernels {
        self.kernels
    }

    /// Bytes of host memory its buffers take.
    pub fn host_bytes(&self) -> usize {
        self.buffers
            .iter()
            .map(|b| b.len() * size_of::<f32>())
            .sum()
    }

    /// The first `floats` of a host buffer: the results a pass left there.
    pub(crate) fn host(&self, buffer: Buffer, floats: usize) -> &[f32] {
        &self.buffers[buffer.index()][..floats]
    }
}

#[cfg(test)]
mod tests {
    use super::{OPT_LEVEL, UNOPTIMIZED};

    /// The workspace's `[profile.dev.package.regnet-runtime]` sets opt-level 3 even for test
    /// builds: the build script must see that per-package level, not the dev profile's 0.
    #[test]
    fn the_runtime_knows_the_optimization_level_it_was_built_at() {
        assert_eq!(OPT_LEVEL, "3");
        assert!(UNOPTIMIZED.contains("[profile.dev.package.regnet-runtime]\nopt-level = 3"));
    }
}
