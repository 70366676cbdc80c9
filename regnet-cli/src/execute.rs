//! `regnet run`, `regnet bench` and `regnet demo`: forward passes of the compiled models.

use std::io::{self, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use regnet::runtime::kernels::peak::fma_peak_gflops;
use regnet::runtime::plan::Part;
use regnet::runtime::spec::{INPUT_CHANNELS, stage_table};
use regnet::runtime::{Device, Isa, Network, Options, Profile, StepTiming, Workspace};
use serde::Serialize;

use crate::DeviceChoice;
use crate::zoo::Chosen;
use crate::{output, tensors};

/// The device chosen on the command line (`tf32`: tensor cores on CUDA).
pub fn device((device, tf32): (DeviceChoice, bool)) -> Result<Device, String> {
    match device {
        DeviceChoice::Cpu if tf32 => Err("--tf32 applies to --device cuda only".to_owned()),
        DeviceChoice::Cpu => Ok(Device::Cpu),
        #[cfg(feature = "cuda")]
        DeviceChoice::Cuda(ordinal) if tf32 => Ok(Device::CudaTf32(ordinal)),
        #[cfg(feature = "cuda")]
        DeviceChoice::Cuda(ordinal) => Ok(Device::Cuda(ordinal)),
        #[cfg(not(feature = "cuda"))]
        DeviceChoice::Cuda(_) => Err(
            "this regnet was built without CUDA; rebuild it with `cargo build --release \
             --features cuda`"
                .to_owned(),
        ),
    }
}

/// The model's network on `device`: the checkpoint read once, straight for that device, or
/// (without one) deterministic random weights.
pub fn network(model: &Chosen, weights: Option<&Path>, device: Device) -> Result<Network, String> {
    match weights {
        Some(path) => Network::load_on(device, model.architecture, path, model.compat_alternative)
            .map_err(|e| e.to_string()),
        None => Network::random(model.architecture, 0)
            .map_err(|e| e.to_string())?
            .to_device(device)
            .map_err(|e| e.to_string()),
    }
}

/// How a result names where it ran: the CPU's instruction set, or the GPU.
fn placement_name(network: &Network, workspace: &Workspace) -> String {
    match network.device() {
        regnet::runtime::Device::Cpu => format!("{:?}", workspace.options().isa),
        #[cfg(feature = "cuda")]
        device => format!("{device:?}"),
    }
}

/// The options of a pass; more threads than cores are honoured, but said to be slower.
pub fn options(
    threads: Option<usize>,
    isa: Option<Isa>,
    features: bool,
    device: Device,
) -> Options {
    let defaults = Options::default();
    if let Some(threads) = threads
        && threads > defaults.threads
    {
        crate::report(&format!(
            "warning: --threads {threads} is more than the {} cores available; the threads will \
             take turns on them",
            defaults.threads
        ));
    }
    Options {
        threads: threads.unwrap_or(defaults.threads),
        isa: isa.unwrap_or(defaults.isa),
        features,
        device,
        ..defaults
    }
}

pub struct Run<'a> {
    pub model: &'a Chosen,
    pub weights: &'a Path,
    pub input: &'a Path,
    pub output: &'a Path,
    pub key: &'a str,
    pub threads: Option<usize>,
    pub features: bool,
    pub device: (DeviceChoice, bool),
}

/// Loads the weights, runs the batch and writes `logits` (and the stage outputs).
pub fn run(args: &Run<'_>) -> Result<(), String> {
    let model = args.model;
    let architecture = model.architecture;
    // A destination that cannot be written is reported before the batch runs, not after.
    output::check(args.output)?;
    let device = device(args.device)?;
    let network = network(model, Some(args.weights), device)?;
    let input = tensors::read(args.input, args.key)?;
    let r = architecture.resolution;
    if input.shape.len() != 4 || input.shape[1..] != [INPUT_CHANNELS, r, r] || input.shape[0] == 0 {
        return Err(format!(
            "input `{}` has shape {:?}; {} takes NCHW images [N, {INPUT_CHANNELS}, {r}, {r}] with N ≥ 1",
            args.key, input.shape, args.model.stem
        ));
    }
    let batch = input.shape[0];
    let mut workspace = Workspace::with_options(
        &architecture,
        batch,
        options(args.threads, None, args.features, device),
    )
    .map_err(|e| e.to_string())?;
    let logits_shape = vec![batch, architecture.num_classes];
    if !args.features {
        let logits = network
            .forward(&input.data, &mut workspace)
            .map_err(|e| e.to_string())?;
        return tensors::write(args.output, &[("logits".into(), logits, logits_shape)]);
    }
    let (logits, features) = network
        .forward_features(&input.data, &mut workspace)
        .map_err(|e| e.to_string())?;
    let (stem, stem_shape) = features.stem();
    let mut outputs = vec![
        ("logits".to_owned(), logits, logits_shape),
        ("stem".to_owned(), stem, stem_shape.to_vec()),
    ];
    for stage in 1..=features.stages() {
        if let Some((data, shape)) = features.stage(stage) {
            outputs.push((format!("s{stage}"), data, shape.to_vec()));
        }
    }
    tensors::write(args.output, &outputs)
}

#[derive(Serialize)]
pub struct BenchResult {
    pub model: String,
    pub batch: usize,
    pub threads: usize,
    /// The instruction set the kernels ran (`Debug` of `Isa`).
    pub isa: String,
    pub median_ms: f64,
    pub min_ms: f64,
    /// The 99th percentile (nearest rank): the machine's own tail, which a server's latency
    /// percentiles are compared with.
    pub p99_ms: f64,
    pub images_per_s: f64,
    /// Host memory of the workspace's buffers for `batch` images.
    pub workspace_bytes: usize,
    /// Learnable parameters (each an f32 in the checkpoint and, packed, in memory).
    pub params: u64,
}

/// A deterministic image batch in [-1, 1): benchmarks and demos need no data.
fn synthetic_input(len: usize) -> Vec<f32> {
    (0..len)
        .map(|i| ((i.wrapping_mul(2_654_435_761) % 2000) as f32 / 1000.0) - 1.0)
        .collect()
}

pub struct Bench<'a> {
    pub model: &'a Chosen,
    pub batch: usize,
    pub threads: Option<usize>,
    pub isa: Option<Isa>,
    pub iters: usize,
    pub weights: Option<&'a Path>,
    pub device: (DeviceChoice, bool),
}

/// Times forward passes (random weights unless a checkpoint is given) after a warm-up; also
/// returns the time the weights took to be ready (read, fold, pack).
pub fn bench(args: &Bench<'_>) -> Result<(BenchResult, Duration), String> {
    let &Bench {
        model,
        batch,
        threads,
        isa,
        iters,
        weights,
        device,
    } = args;
    if batch == 0 || iters == 0 {
        return Err("--batch and --iters must be at least 1".into());
    }
    let architecture = model.architecture;
    let start = Instant::now();
    let device = self::device(device)?;
    let network = network(model, weights, device)?;
    let load = start.elapsed();
    let mut workspace =
        Workspace::with_options(&architecture, batch, options(threads, isa, false, device))
            .map_err(|e| e.to_string())?;
    let input =
        synthetic_input(batch * INPUT_CHANNELS * architecture.resolution * architecture.resolution);
    let times = time(&network, &input, &mut workspace, iters)?;
    let median = times[times.len() / 2].as_secs_f64() * 1e3;
    // Microseconds and hundredths of an image are all the precision a timing carries.
    let round = |value: f64, places: i32| (value * 10f64.powi(places)).round() / 10f64.powi(places);
    let result = BenchResult {
        model: model.stem.clone(),
        batch,
        threads: workspace.options().threads,
        isa: placement_name(&network, &workspace),
        median_ms: round(median, 3),
        min_ms: round(times[0].as_secs_f64() * 1e3, 3),
        p99_ms: round(
            times[(times.len() * 99).div_ceil(100) - 1].as_secs_f64() * 1e3,
            3,
        ),
        images_per_s: round(batch as f64 * 1e3 / median, 2),
        workspace_bytes: workspace.host_bytes(),
        params: architecture.complexity().map_or(0, |c| c.params),
    };
    Ok((result, load))
}

/// Sorted durations of `iters` passes after `iters / 5 + 2` warm-up passes. On a GPU the images
/// are uploaded once and the logits stay there, as in PyTorch timings of a model on the GPU.
fn time(
    network: &Network,
    input: &[f32],
    workspace: &mut Workspace,
    iters: usize,
) -> Result<Vec<Duration>, String> {
    #[cfg(feature = "cuda")]
    if network.device() != regnet::runtime::Device::Cpu {
        let on_device = network.upload(input).map_err(|e| e.to_string())?;
        return time_passes(iters, || {
            network.forward_on_device(&on_device, workspace).map(|_| ())
        });
    }
    time_passes(iters, || network.forward(input, workspace).map(|_| ()))
}

fn time_passes(
    iters: usize,
    mut pass: impl FnMut() -> Result<(), regnet::runtime::RunError>,
) -> Result<Vec<Duration>, String> {
    for _ in 0..iters / 5 + 2 {
        pass().map_err(|e| e.to_string())?;
    }
    let mut times = (0..iters)
        .map(|_| {
            let start = Instant::now();
            pass().map(|()| start.elapsed())
        })
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())?;
    times.sort();
    Ok(times)
}

/// The main job: one model end to end on built-in random weights and a synthetic image.
pub fn demo(
    out: &mut impl Write,
    model: &Chosen,
    threads: Option<usize>,
) -> io::Result<Result<(), String>> {
    let name = &model.stem;
    let architecture = model.architecture;
    let start = Instant::now();
    let network = match Network::random(architecture, 0) {
        Ok(network) => network,
        Err(error) => return Ok(Err(error.to_string())),
    };
    let load = start.elapsed();
    let mut workspace =
        match Workspace::with_options(&architecture, 1, options(threads, None, false, Device::Cpu))
        {
            Ok(workspace) => workspace,
            Err(error) => return Ok(Err(error.to_string())),
        };
    let input = synthetic_input(INPUT_CHANNELS * architecture.resolution * architecture.resolution);
    let times = match time(&network, &input, &mut workspace, 10) {
        Ok(times) => times,
        Err(message) => return Ok(Err(message)),
    };
    let logits = match network.forward(&input, &mut workspace) {
        Ok(logits) => logits,
        Err(error) => return Ok(Err(error.to_string())),
    };
    let complexity = architecture.complexity().unwrap_or_default();
    let r = architecture.resolution;
    writeln!(
        out,
        "{} ({name}), random weights (seed 0), one synthetic {r}×{r} image",
        architecture.name
    )?;
    writeln!(out)?;
    write!(out, "{}", stage_table(&architecture, &complexity))?;
    writeln!(out)?;
    let mut ranked: Vec<(usize, f32)> = logits.iter().copied().enumerate().collect();
    ranked.sort_by(|a, b| b.1.total_cmp(&a.1));
    writeln!(
        out,
        "top-5 (class index: logit; random weights, so the classes mean nothing):"
    )?;
    for (class, logit) in ranked.iter().take(5) {
        writeln!(out, "  {class:>4}: {logit:+.5}")?;
    }
    let median = times[times.len() / 2];
    writeln!(
        out,
        "\nweights ready in {:.1} ms; forward pass: median {:.2} ms, min {:.2} ms over {} runs ({} threads, {:?})",
        load.as_secs_f64() * 1e3,
        median.as_secs_f64() * 1e3,
        times[0].as_secs_f64() * 1e3,
        times.len(),
        workspace.options().threads,
        workspace.options().isa,
    )?;
    Ok(Ok(()))
}

/// Per-step time and GFLOP/s against the machine's measured FMA peak, averaged over `iters`
/// passes: where the time goes and how far each kind of layer is from the peak.
pub fn profile(
    out: &mut impl Write,
    model: &Chosen,
    batch: usize,
    threads: Option<usize>,
    isa: Option<Isa>,
    iters: usize,
) -> io::Result<Result<(), String>> {
    if batch == 0 || iters == 0 {
        return Ok(Err("--batch and --iters must be at least 1".into()));
    }
    let name = &model.stem;
    let architecture = model.architecture;
    let network = match Network::random(architecture, 0) {
        Ok(network) => network,
        Err(error) => return Ok(Err(error.to_string())),
    };
    let mut workspace = match Workspace::with_options(
        &architecture,
        batch,
        options(threads, isa, false, Device::Cpu),
    ) {
        Ok(workspace) => workspace,
        Err(error) => return Ok(Err(error.to_string())),
    };
    let input =
        synthetic_input(batch * INPUT_CHANNELS * architecture.resolution * architecture.resolution);
    let mut passes = Vec::with_capacity(iters);
    for pass in 0..iters + 2 {
        let mut profile = Profile::default();
        if let Err(error) = network.profile(&input, &mut workspace, &mut profile) {
            return Ok(Err(error.to_string()));
        }
        // Two warm-up passes are not counted.
        if pass >= 2 {
            passes.push(profile);
        }
    }
    let options = workspace.options();
    let peak = fma_peak_gflops(
        workspace.kernels(),
        options.threads,
        Duration::from_millis(300),
    );
    let stages = architecture.stages.len();
    let by_stage = median_per_pass(&passes, |timing| (timing.stage, timing.part));
    let by_part = median_per_pass(&passes, |timing| timing.part);
    let (counts, total) = median_per_pass(&passes, |_| ())
        .remove(&())
        .unwrap_or_default();
    writeln!(
        out,
        "{name} batch {batch}, {} threads, {:?}; peak {peak:.1} GFLOP/s (FMA loop); median \
         times of {iters} passes",
        options.threads, options.isa
    )?;
    writeln!(
        out,
        "GFLOP/s: pycls's multiply-adds × 2 per second; of peak: the multiply-adds the kernels \
         ran (Winograd's grouped 3×3 runs 16 of every 36) against the peak"
    )?;
    writeln!(
        out,
        "{:<6} {:<15} {:>9} {:>7} {:>9} {:>8}",
        "stage", "step", "ms", "share", "GFLOP/s", "of peak"
    )?;
    let row = |out: &mut _, label: &str, step: Part, (counts, seconds): (Counts, f64)| {
        write_row(
            out,
            label,
            &format!("{step:?}"),
            counts,
            seconds,
            total,
            peak,
        )
    };
    for (&(stage, step), &timing) in &by_stage {
        let label = match stage {
            0 => "stem".to_owned(),
            s if s > stages => "head".to_owned(),
            s => format!("s{s}"),
        };
        row(out, &label, step, timing)?;
    }
    writeln!(out)?;
    for (&step, &timing) in &by_part {
        row(out, "all", step, timing)?;
    }
    write_row(out, "total", "", counts, total, total, peak)?;
    Ok(Ok(()))
}

/// Multiply-adds of one pass: as pycls counts them, and as the kernels ran them.
#[derive(Clone, Copy, Default)]
struct Counts {
    flops: u64,
    multiply_adds: u64,
}

/// Per key, the multiply-adds of one pass and the median over `passes` of the seconds each pass
/// spent on the key's steps (a median, not a mean: on a shared machine a pass a neighbour
/// slowed down would otherwise count).
fn median_per_pass<K: Ord + Copy>(
    passes: &[Profile],
    key: impl Fn(&StepTiming) -> K,
) -> std::collections::BTreeMap<K, (Counts, f64)> {
    let mut per_pass: std::collections::BTreeMap<K, (Counts, Vec<f64>)> = Default::default();
    for (pass, profile) in passes.iter().enumerate() {
        for timing in &profile.steps {
            let (counts, seconds) = per_pass.entry(key(timing)).or_default();
            if pass == 0 {
                counts.flops += timing.flops;
                counts.multiply_adds += timing.multiply_adds;
            }
            seconds.resize(passes.len(), 0.0);
            seconds[pass] += timing.seconds;
        }
    }
    per_pass
        .into_iter()
        .map(|(key, (counts, mut seconds))| {
            seconds.sort_by(f64::total_cmp);
            (key, (counts, seconds[seconds.len() / 2]))
        })
        .collect()
}

/// One row of the profile: a step's time, its share of the pass, its rate of pycls's
/// multiply-adds, and the rate of those it ran against `peak`.
fn write_row(
    out: &mut impl Write,
    label: &str,
    step: &str,
    counts: Counts,
    seconds: f64,
    total: f64,
    peak: f64,
) -> io::Result<()> {
    let gflops = |multiply_adds: u64| 2.0 * multiply_adds as f64 / seconds / 1e9;
    writeln!(
        out,
        "{label:<6} {step:<15} {:>9.3} {:>6.1}% {:>9.1} {:>7.0}%",
        seconds * 1e3,
        100.0 * seconds / total,
        gflops(counts.flops),
        100.0 * gflops(counts.multiply_adds) / peak
    )
}
