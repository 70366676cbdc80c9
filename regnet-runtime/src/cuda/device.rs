//! A network's weights on a GPU, and the per-workspace device buffers and captured graphs its
//! forward passes replay.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use cudarc::driver::sys::{CUdevice_attribute, CUgraphInstantiate_flags, CUstreamCaptureMode};
use cudarc::driver::{
    CudaContext, CudaFunction, CudaGraph, CudaSlice, CudaStream, CudaView, LaunchConfig,
    PushKernelArg,
};
use cudarc::nvrtc::Ptx;
use regnet_spec::Architecture;

use super::source::{self, Kernel, Tile};
use super::{Precision, compile, instances, require_driver};
use crate::device::DeviceError;
use crate::plan::{Buffer, Op, Plan, Step};
use crate::profile::Profile;
use crate::weights::{Linear, NetworkWeights, StepWeights};
use crate::workspace::{Workspace, WorkspaceLayout};

/// Tells networks apart, so a workspace never replays a graph captured for another one's
/// weights.
static NEXT_NETWORK: AtomicU64 = AtomicU64::new(0);

/// A network's weights in the layouts `kernels.cu` reads, its compiled kernels, and the plan
/// of its forward pass.
pub struct CudaNetwork {
    id: u64,
    ordinal: usize,
    architecture: Architecture<'static>,
    context: Arc<CudaContext>,
    functions: HashMap<Kernel, CudaFunction>,
    precision: Precision,
    multiprocessors: usize,
    weights: CudaSlice<f32>,
    /// The plan (with the feature copies), each step with its tensors' ranges in `weights`.
    steps: Vec<(Step, Vec<Range<usize>>)>,
}

/// `rows`×`columns` row-major → `columns`×`rows`.
fn transpose(matrix: &[f32], rows: usize, columns: usize) -> Vec<f32> {
    (0..columns * rows)
        .map(|i| matrix[(i % rows) * columns + i / rows])
        .collect()
}

/// A layer's weights transposed so a warp's threads (consecutive output channels) read
/// consecutive floats: PyTorch's `[outputs][rest]` becomes `[rest][outputs]`.
fn outputs_last(layer: &Linear) -> [Vec<f32>; 2] {
    let outputs = layer.bias.len();
    [
        transpose(&layer.weight, outputs, layer.weight.len() / outputs),
        layer.bias.clone(),
    ]
}

/// The device tensors of one step, in the order its kernel takes them.
fn tensors(step: &Step, weights: &NetworkWeights) -> Vec<Vec<f32>> {
    match weights.of(step) {
        None => Vec::new(),
        Some(StepWeights::Convolution(conv)) => outputs_last(&conv.fold()).to_vec(),
        Some(StepWeights::SqueezeExcite(se)) => {
            let [w2, b2] = outputs_last(&se.gate);
            vec![se.hidden.weight.clone(), se.hidden.bias.clone(), w2, b2]
        }
        Some(StepWeights::Classifier(linear)) => outputs_last(&linear).to_vec(),
    }
}

impl CudaNetwork {
    /// Compiles (or finds in the cache) the network's kernels for device `ordinal` and uploads
    /// its folded weights. `weights` must match `architecture`, as the loader guarantees.
    pub fn new(
        architecture: Architecture<'static>,
        weights: &NetworkWeights,
        ordinal: usize,
        precision: Precision,
    ) -> Result<Self, DeviceError> {
        require_driver()?;
        compile::require_nvrtc()?;
        let context =
            CudaContext::new(ordinal).map_err(|e| DeviceError::driver("cuCtxCreate", e))?;
        // SAFETY: event tracking orders a buffer's uses across streams; here every stream is
        // ordered by hand instead: the weights are uploaded and synchronized before any pass,
        // each workspace's buffers are used on that workspace's stream only, which every pass
        // synchronizes before it returns (failed ones too), and device inputs are joined from
        // their stream. (Its events would also break graph capture.)
        unsafe { context.disable_event_tracking() };
        let (major, minor) = context
            .compute_capability()
            .map_err(|e| DeviceError::driver("cuDeviceGetAttribute", e))?;
        let arch = u32::try_from(major * 10 + minor).unwrap_or(0);
        if precision == Precision::Tf32 && arch < 80 {
            return Err(DeviceError::Unsupported(format!(
                "TF32 tensor cores need sm_80 or newer; device {ordinal} is sm_{arch}"
            )));
        }
        let plan = Plan::new(&architecture);
        let kernels = instances::kernels(&plan, precision);
        source::fits_shared_memory(&kernels).map_err(DeviceError::Unsupported)?;
        let modules = source::modules(&kernels);
        let sources: Vec<&str> = modules.iter().map(|(_, source)| source.as_str()).collect();
        let cubins = compile::in_parallel(&sources, |source| compile::cached(source, arch))?;
        let mut functions = HashMap::new();
        for ((kernels, source), cubin) in modules.iter().zip(cubins) {
            let module = match context.load_module(Ptx::from_binary(cubin)) {
                Ok(module) => module,
                // A damaged cache entry: compile again and replace it.
                Err(_) => context
                    .load_module(Ptx::from_binary(compile::refresh(source, arch)?))
                    .map_err(|e| DeviceError::driver("cuModuleLoadData", e))?,
            };
            for kernel in kernels {
                let function = module
                    .load_function(&kernel.name())
                    .map_err(|e| DeviceError::driver("cuModuleGetFunction", e))?;
                functions.insert(*kernel, function);
            }
        }
        let mut host = Vec::new();
        let steps = plan
            .steps()
            .iter()
            .map(|&step| {
                let ranges = tensors(&step, weights)
                    .into_iter()
                    .map(|tensor| {
                        let start = host.len();
                        host.extend(tensor);
                        start..host.len()
                    })
                    .collect();
                (step, ranges)
            })
            .collect();
        let stream = context.default_stream();
        let weights = stream
            .clone_htod(&host)
            .map_err(|e| DeviceError::driver("cuMemcpyHtoD", e))?;
        stream
            .synchronize()
            .map_err(|e| DeviceError::driver("cuStreamSynchronize", e))?;
        let multiprocessors = context
            .attribute(CUdevice_attribute::CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT)
            .map_err(|e| DeviceError::driver("cuDeviceGetAttribute", e))?;
        Ok(CudaNetwork {
            id: NEXT_NETWORK.fetch_add(1, Ordering::Relaxed),
            ordinal,
            architecture,
            context,
            functions,
            precision,
            multiprocessors: usize::try_from(multiprocessors).unwrap_or(1).max(1),
            weights,
            steps,
        })
    }

    /// The architecture whose forward pass this network runs.
    pub fn architecture(&self) -> &Architecture<'static> {
        &self.architecture
    }

    /// The CUDA device (its ordinal) that holds the weights and runs the kernels.
    pub fn ordinal(&self) -> usize {
        self.ordinal
    }

    /// The arithmetic of the 1×1 convolutions, fixed when the kernels were compiled.
    pub fn precision(&self) -> Precision {
        self.precision
    }

    /// A copy of `data` in this device's memory, ready when this returns.
    pub fn upload(&self, data: &[f32]) -> Result<CudaSlice<f32>, DeviceError> {
        let stream = self.context.default_stream();
        let slice = stream
            .clone_htod(data)
            .map_err(|e| DeviceError::driver("cuMemcpyHtoD", e))?;
        stream
            .synchronize()
            .map_err(|e| DeviceError::driver("cuStreamSynchronize", e))?;
        Ok(slice)
    }

    /// Runs `batch` NCHW images from the host (checked by the caller) and copies the logits,
    /// and with `features` the feature maps, into the workspace's host buffers.
    pub fn run(
        &self,
        input: &[f32],
        batch: usize,
        workspace: &mut Workspace,
        features: bool,
    ) -> Result<(), DeviceError> {
        let Workspace {
            device,
            layout,
            capacity,
            options,
            buffers: host,
            ..
        } = workspace;
        let [host_logits, host_features] = host
            .get_disjoint_mut([Buffer::Logits.index(), Buffer::Kept.index()])
            .expect("two different roles");
        let classes = self.architecture.num_classes;
        self.pass(device, layout, *capacity, options.features, |device| {
            device.upload_images(input)?;
            self.replay(device, batch, features)?;
            let stream = &device.stream;
            let logits = device.buffers.view(Buffer::Logits).slice(..batch * classes);
            stream
                .memcpy_dtoh(&logits, &mut host_logits[..batch * classes])
                .map_err(|e| DeviceError::driver("cuMemcpyDtoHAsync", e))?;
            if features {
                let floats = batch * layout.floats(Buffer::Kept);
                let maps = device.buffers.view(Buffer::Kept).slice(..floats);
                stream
                    .memcpy_dtoh(&maps, &mut host_features[..floats])
                    .map_err(|e| DeviceError::driver("cuMemcpyDtoHAsync", e))?;
            }
            Ok(())
        })
    }

    /// Runs `batch` NCHW images from the host step by step, waiting for each, and records
    /// every step's time (its launch included) into `profile`: no graph, so that each step can
    /// be timed on its own.
    pub fn profile(
        &self,
        input: &[f32],
        batch: usize,
        workspace: &mut Workspace,
        profile: &mut Profile,
    ) -> Result<(), DeviceError> {
        self.pass_on(workspace, |device| {
            device.upload_images(input)?;
            let stream = &device.stream;
            let synchronize = || {
                stream
                    .synchronize()
                    .map_err(|e| DeviceError::driver("cuStreamSynchronize", e))
            };
            synchronize()?;
            let mut profile = Some(profile);
            for (step, ranges) in &self.steps {
                if !step.runs(false) {
                    continue;
                }
                Profile::time(&mut profile, (step, step.flops), batch, || {
                    self.launch(stream, &device.buffers, step, ranges, batch)?;
                    synchronize()
                })?;
            }
            Ok(())
        })
    }

    /// Like `run` with the images already on this device (after the work queued on their
    /// stream); returns the logits there, valid until the workspace's next pass.
    pub fn run_on_device<'w>(
        &self,
        input: &CudaSlice<f32>,
        batch: usize,
        workspace: &'w mut Workspace,
    ) -> Result<CudaView<'w, f32>, DeviceError> {
        if input.ordinal() != self.ordinal {
            return Err(DeviceError::Unsupported(format!(
                "the input is on CUDA device {}, the network on device {}",
                input.ordinal(),
                self.ordinal
            )));
        }
        self.pass_on(workspace, |device| {
            // The caller's uploads or kernels that produce the input finish first.
            device
                .stream
                .join(input.stream())
                .map_err(|e| DeviceError::driver("cuStreamWaitEvent", e))?;
            device
                .stream
                .memcpy_dtod(
                    input,
                    &mut device.buffers.slice_mut(Buffer::Images, input.len()),
                )
                .map_err(|e| DeviceError::driver("cuMemcpyDtoDAsync", e))?;
            self.replay(device, batch, false)
        })?;
        let device = workspace
            .device
            .as_ref()
            .expect("a successful pass keeps its state");
        Ok(device
            .buffers
            .view(Buffer::Logits)
            .slice(..batch * self.architecture.num_classes))
    }

    /// `pass` on the workspace's device state, for passes that leave their results there.
    fn pass_on(
        &self,
        workspace: &mut Workspace,
        work: impl FnOnce(&mut DeviceWorkspace) -> Result<(), DeviceError>,
    ) -> Result<(), DeviceError> {
        let Workspace {
            device,
            layout,
            capacity,
            options,
            ..
        } = workspace;
        self.pass(device, layout, *capacity, options.features, work)
    }

    /// Runs `work` on the workspace's device state and waits for its stream, also when `work`
    /// failed (nothing of a failed pass may still run when the network is dropped). After a
    /// failure the state is dropped, so a capture left open cannot poison the next pass.
    fn pass(
        &self,
        slot: &mut Option<DeviceWorkspace>,
        layout: &WorkspaceLayout,
        capacity: usize,
        features: bool,
        work: impl FnOnce(&mut DeviceWorkspace) -> Result<(), DeviceError>,
    ) -> Result<(), DeviceError> {
        let device = self.bind(slot, layout, capacity, features)?;
        let result = work(device);
        let synchronized = device
            .stream
            .synchronize()
            .map_err(|e| DeviceError::driver("cuStreamSynchronize", e));
        let result = result.and(synchronized);
        if result.is_err() {
            *slot = None;
        }
        result
    }

    /// The workspace's device state for this network: made on first use (device buffers for
    /// the workspace's capacity and a stream of its own), kept while the workspace serves this
    /// network, and made again if it moves to another.
    fn bind<'w>(
        &self,
        slot: &'w mut Option<DeviceWorkspace>,
        layout: &WorkspaceLayout,
        capacity: usize,
        features: bool,
    ) -> Result<&'w mut DeviceWorkspace, DeviceError> {
        if slot
            .as_ref()
            .is_some_and(|device| device.network != self.id)
        {
            // The old graphs and buffers go first: both sets need not fit at once.
            *slot = None;
        }
        match slot {
            Some(device) => Ok(device),
            None => Ok(slot.insert(DeviceWorkspace::new(self, layout, capacity, features)?)),
        }
    }

    /// Launches the captured graph of this batch size, capturing it on first use.
    fn replay(
        &self,
        device: &mut DeviceWorkspace,
        batch: usize,
        features: bool,
    ) -> Result<(), DeviceError> {
        let key = (batch, features);
        if !device.graphs.contains_key(&key) {
            let stream = &device.stream;
            stream
                .begin_capture(CUstreamCaptureMode::CU_STREAM_CAPTURE_MODE_THREAD_LOCAL)
                .map_err(|e| DeviceError::driver("cuStreamBeginCapture", e))?;
            let launched = self.launch_all(stream, &device.buffers, batch, features);
            // The capture ends even when a launch failed, leaving the stream usable.
            let graph = stream
                .end_capture(CUgraphInstantiate_flags(0))
                .map_err(|e| DeviceError::driver("cuStreamEndCapture", e));
            launched?;
            let graph = graph?.ok_or_else(|| DeviceError::Driver {
                call: "cuStreamEndCapture",
                message: "the capture recorded no graph".to_owned(),
            })?;
            device.graphs.insert(key, Replay(graph));
        }
        device.graphs[&key]
            .0
            .launch()
            .map_err(|e| DeviceError::driver("cuGraphLaunch", e))
    }

    fn launch_all(
        &self,
        stream: &Arc<CudaStream>,
        buffers: &DeviceBuffers,
        batch: usize,
        features: bool,
    ) -> Result<(), DeviceError> {
        for (step, ranges) in &self.steps {
            if !step.runs(features) {
                continue;
            }
            self.launch(stream, buffers, step, ranges, batch)?;
        }
        Ok(())
    }

    /// The 1×1 convolution's tile for `rows` output rows: the wide one when it still gives
    /// every multiprocessor two blocks, else the narrow one.
    fn tile(&self, rows: usize, columns: usize) -> Tile {
        let [narrow, wide] = source::tiles(self.precision);
        let (tile_rows, tile_columns) = wide.shape();
        let blocks = rows.div_ceil(tile_rows) * columns.div_ceil(tile_columns);
        if blocks >= 2 * self.multiprocessors {
            wide
        } else {
            narrow
        }
    }

    fn launch(
        &self,
        stream: &Arc<CudaStream>,
        buffers: &DeviceBuffers,
        step: &Step,
        ranges: &[Range<usize>],
        batch: usize,
    ) -> Result<(), DeviceError> {
        let batch_arg = i32::try_from(batch).map_err(|_| {
            DeviceError::Unsupported(format!(
                "a batch of {batch} images is too large for one pass"
            ))
        })?;
        let tensors: Vec<CudaView<'_, f32>> = ranges
            .iter()
            .map(|r| self.weights.slice(r.clone()))
            .collect();
        let input = buffers.view(step.input);
        let output = match step.op {
            // A kept map starts after the batch's floats of the maps before it.
            Op::ToNchw { offset, .. } => buffers.view(step.output).slice(offset * batch..),
            _ => buffers.view(step.output),
        };
        let threads = source::THREADS;
        // Grid-stride kernels: enough blocks to fill the GPU several times over, no more.
        let elements = |count: usize| {
            let blocks = count
                .div_ceil(threads as usize)
                .min(self.multiprocessors * 32);
            LaunchConfig {
                grid_dim: (u32::try_from(blocks.max(1)).unwrap_or(u32::MAX), 1, 1),
                block_dim: (threads, 1, 1),
                shared_mem_bytes: 0,
            }
        };
        let (kernel, config) = match step.op {
            Op::Stem {
                channels,
                output_size,
                ..
            }
            | Op::Grouped {
                channels,
                output_size,
                ..
            } => (
                Kernel::new(step.op, Tile::Wide),
                elements(batch * channels * output_size * output_size),
            ),
            Op::Pool { channels, .. } => {
                (Kernel::new(step.op, Tile::Wide), elements(batch * channels))
            }
            Op::ToNchw {
                channels, pixels, ..
            } => (
                Kernel::new(step.op, Tile::Wide),
                elements(batch * channels * pixels),
            ),
            Op::Excite { .. } => (
                Kernel::new(step.op, Tile::Wide),
                LaunchConfig {
                    grid_dim: (batch_arg as u32, 1, 1),
                    block_dim: (threads, 1, 1),
                    shared_mem_bytes: 0,
                },
            ),
            Op::Pointwise { outputs, rows, .. } => {
                let rows = batch * rows.output_size * rows.output_size;
                let tile = self.tile(rows, outputs);
                let (tile_rows, tile_columns) = tile.shape();
                // Row tiles on x (up to 2³¹ − 1 blocks; the kernel reads them from blockIdx.x),
                // the few column tiles on y.
                let row_tiles = u32::try_from(rows.div_ceil(tile_rows)).map_err(|_| {
                    DeviceError::Unsupported(format!(
                        "a batch of {batch} images is too large for one pass; split it"
                    ))
                })?;
                let column_tiles =
                    u32::try_from(outputs.div_ceil(tile_columns)).unwrap_or(u32::MAX);
                (
                    Kernel::new(step.op, tile),
                    LaunchConfig {
                        grid_dim: (row_tiles, column_tiles, 1),
                        block_dim: (threads, 1, 1),
                        shared_mem_bytes: 0,
                    },
                )
            }
        };
        let function = &self.functions[&kernel];
        let mut launch = stream.launch_builder(function);
        launch.arg(&input);
        match step.op {
            Op::Pointwise { rows, .. } => {
                let fused = step.fused;
                // Unused pointers (no gate, no residual) still need a valid address.
                let gate = buffers.view(fused.gate.unwrap_or(step.input));
                let residual = buffers.view(fused.residual.unwrap_or(step.input));
                launch.arg(&gate).arg(&tensors[0]).arg(&tensors[1]);
                let flags =
                    source::epilogue(fused.gate.is_some(), fused.residual.is_some(), fused.relu);
                let [in_size, out_size, stride] =
                    [rows.input_size, rows.output_size, rows.stride].map(|n| n as i32);
                launch
                    .arg(&residual)
                    .arg(&output)
                    .arg(&batch_arg)
                    .arg(&flags);
                launch.arg(&in_size).arg(&out_size).arg(&stride);
                self.launch_with(launch, config)
            }
            _ => {
                for tensor in &tensors {
                    launch.arg(tensor);
                }
                launch.arg(&output);
                // Every kernel but the excitation (one block per image) takes the batch.
                if !matches!(step.op, Op::Excite { .. }) {
                    launch.arg(&batch_arg);
                }
                self.launch_with(launch, config)
            }
        }
    }

    fn launch_with(
        &self,
        mut launch: cudarc::driver::LaunchArgs<'_>,
        config: LaunchConfig,
    ) -> Result<(), DeviceError> {
        // SAFETY: the arguments match the wrapper's C parameters (source.rs writes both from
        // one signature per kernel kind); every buffer holds the batch's floats (sized from the
        // workspace layout for the workspace's capacity, which the caller checked the batch
        // against); a step's output is never one of its inputs (the plan alternates buffers);
        // and the weights stay alive and unchanged while the network exists.
        unsafe { launch.launch(config) }
            .map(|_| ())
            .map_err(|e| DeviceError::driver("cuLaunchKernel", e))
    }
}

/// A captured graph. `CudaGraph` holds raw driver handles, so it is not `Send` by default.
struct Replay(CudaGraph);

// SAFETY: CUDA driver handles may be used from any thread; cudarc binds the graph's context to
// the calling thread before every launch, and a workspace (its only owner) is used by one
// thread at a time (`&mut` access).
unsafe impl Send for Replay {}

// SAFETY: nothing reads or launches a graph through a shared reference: graphs are reached only
// through `&mut Workspace` (the field is private to the crate), so sharing `&Replay` between
// threads gives no access at all.
unsafe impl Sync for Replay {}

/// One workspace's device buffers for `capacity` images, by role, sized by the workspace
/// layout.
struct DeviceBuffers([CudaSlice<f32>; Buffer::COUNT]);

impl DeviceBuffers {
    fn view(&self, buffer: Buffer) -> CudaView<'_, f32> {
        self.0[buffer.index()].slice(..)
    }

    fn slice_mut(&mut self, buffer: Buffer, floats: usize) -> cudarc::driver::CudaViewMut<'_, f32> {
        self.0[buffer.index()].slice_mut(..floats)
    }
}

/// A workspace's state on a GPU: buffers, its own stream, and the graphs captured so far per
/// (batch size, features).
pub struct DeviceWorkspace {
    network: u64,
    stream: Arc<CudaStream>,
    buffers: DeviceBuffers,
    graphs: HashMap<(usize, bool), Replay>,
}

impl DeviceWorkspace {
    /// Queues the copy of host images into the images buffer.
    fn upload_images(&mut self, images: &[f32]) -> Result<(), DeviceError> {
        self.stream
            .memcpy_htod(
                images,
                &mut self.buffers.slice_mut(Buffer::Images, images.len()),
            )
            .map_err(|e| DeviceError::driver("cuMemcpyHtoDAsync", e))
    }

    fn new(
        network: &CudaNetwork,
        layout: &WorkspaceLayout,
        capacity: usize,
        features: bool,
    ) -> Result<Self, DeviceError> {
        let stream = network
            .context
            .new_stream()
            .map_err(|e| DeviceError::driver("cuStreamCreate", e))?;
        let alloc = |buffer: Buffer| {
            // The hidden layer of SE stays in shared memory, and features only where kept.
            let used = match buffer {
                Buffer::Hidden => false,
                Buffer::Kept => features,
                _ => true,
            };
            let floats = if used { layout.floats(buffer) } else { 0 };
            stream
                .alloc_zeros::<f32>((floats * capacity).max(1))
                .map_err(|e| DeviceError::driver("cuMemAlloc", e))
        };
        let mut slots = Vec::with_capacity(Buffer::COUNT);
        for buffer in Buffer::ALL {
            slots.push(alloc(buffer)?);
        }
        let buffers = DeviceBuffers(
            slots
                .try_into()
                .unwrap_or_else(|_| unreachable!("one buffer per role")),
        );
        Ok(DeviceWorkspace {
            network: network.id,
            stream,
            buffers,
            graphs: HashMap::new(),
        })
    }
}
