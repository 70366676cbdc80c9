//! The `regnet` command: run, benchmark and inspect RegNets.

mod classify;
mod execute;
mod graph_json;
mod inspect;
mod output;
mod plot;
mod sample;
mod serve;
mod tensors;
mod zoo;

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::builder::RangedU64ValueParser;
use clap::{Parser, Subcommand, ValueEnum};
use regnet::runtime::workspace::MAX_THREADS;
use regnet_spec::SpecError;
use regnet_spec::sample::{AnyNetSpace, Space};

#[derive(Parser)]
#[command(
    name = "regnet",
    version,
    about = "Run, benchmark and inspect RegNets compiled from design-space specs"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// `--isa` values.
#[derive(Clone, Copy, ValueEnum)]
enum IsaChoice {
    Scalar,
    Avx2,
    Avx512,
    Neon,
}

impl From<IsaChoice> for regnet::runtime::Isa {
    fn from(choice: IsaChoice) -> Self {
        match choice {
            IsaChoice::Scalar => regnet::runtime::Isa::Scalar,
            IsaChoice::Avx2 => regnet::runtime::Isa::Avx2Fma,
            IsaChoice::Avx512 => regnet::runtime::Isa::Avx512,
            IsaChoice::Neon => regnet::runtime::Isa::Neon,
        }
    }
}

/// The design spaces `regnet sample` draws from.
#[derive(Clone, Copy, ValueEnum)]
enum SpaceChoice {
    /// AnyNetX_A: every stage's depth, width, bottleneck ratio and group width independent.
    #[value(name = "anynetx-a", alias = "anynetx_a")]
    AnynetxA,
    /// AnyNetX_B: A with one bottleneck ratio for all stages.
    #[value(name = "anynetx-b", alias = "anynetx_b")]
    AnynetxB,
    /// AnyNetX_C: B with one group width for all stages.
    #[value(name = "anynetx-c", alias = "anynetx_c")]
    AnynetxC,
    /// AnyNetX_D: C with widths that never decrease.
    #[value(name = "anynetx-d", alias = "anynetx_d")]
    AnynetxD,
    /// AnyNetX_E: D with depths that never decrease.
    #[value(name = "anynetx-e", alias = "anynetx_e")]
    AnynetxE,
    /// RegNet without squeeze-excitation.
    Regnetx,
    /// RegNet with squeeze-excitation.
    Regnety,
}

impl From<SpaceChoice> for Space {
    fn from(choice: SpaceChoice) -> Self {
        match choice {
            SpaceChoice::AnynetxA => Space::AnyNetX(AnyNetSpace::A),
            SpaceChoice::AnynetxB => Space::AnyNetX(AnyNetSpace::B),
            SpaceChoice::AnynetxC => Space::AnyNetX(AnyNetSpace::C),
            SpaceChoice::AnynetxD => Space::AnyNetX(AnyNetSpace::D),
            SpaceChoice::AnynetxE => Space::AnyNetX(AnyNetSpace::E),
            SpaceChoice::Regnetx => Space::RegNetX,
            SpaceChoice::Regnety => Space::RegNetY,
        }
    }
}

/// `--device` values: `cpu`, `cuda` or `cuda:N`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum DeviceChoice {
    #[default]
    Cpu,
    Cuda(usize),
}

fn parse_device(text: &str) -> Result<DeviceChoice, String> {
    match text.split_once(':') {
        None if text == "cpu" => Ok(DeviceChoice::Cpu),
        None if text == "cuda" => Ok(DeviceChoice::Cuda(0)),
        Some(("cuda", ordinal)) => ordinal
            .parse()
            .map(DeviceChoice::Cuda)
            .map_err(|_| format!("`{ordinal}` is not a GPU number (cuda:0, cuda:1, ...)")),
        _ => Err("expected cpu, cuda or cuda:N".to_owned()),
    }
}

/// `--threads` of the commands that run a network.
#[derive(clap::Args, Clone, Copy)]
struct Threads {
    /// Threads per layer [default: the available cores]; at most 256.
    #[arg(
        long = "threads",
        value_name = "N",
        value_parser = RangedU64ValueParser::<usize>::new().range(1..=MAX_THREADS as u64)
    )]
    count: Option<usize>,
}

/// Where `run` and `bench` execute.
#[derive(clap::Args, Clone, Copy)]
struct Placement {
    /// cpu, cuda or cuda:N (CUDA needs a build with `--features cuda`).
    #[arg(long, value_parser = parse_device, default_value = "cpu")]
    device: DeviceChoice,
    /// On CUDA, run the large 1×1 convolutions on TF32 tensor cores.
    #[arg(long)]
    tf32: bool,
}

#[derive(Subcommand)]
enum Command {
    /// Run one model end to end on built-in random weights: stage table, top-5, time.
    Demo {
        /// A built-in model (a spec's file stem, e.g. regnety_1.6gf) or a spec file.
        #[arg(default_value = "regnety_1.6gf")]
        model: PathBuf,
        #[command(flatten)]
        threads: Threads,
    },
    /// Run a model on a batch of images from a safetensors file.
    Run {
        /// A built-in model (a spec's file stem, e.g. regnety_1.6gf) or a spec file.
        model: PathBuf,
        /// The checkpoint (safetensors; torchvision, timm or pycls names).
        #[arg(long)]
        weights: PathBuf,
        /// Safetensors file holding the NCHW f32 batch.
        #[arg(long)]
        input: PathBuf,
        /// Where to write `logits` (and `stem`, `s1`.. with --features).
        #[arg(long)]
        output: PathBuf,
        /// The input tensor's name.
        #[arg(long, default_value = "input")]
        key: String,
        #[command(flatten)]
        threads: Threads,
        /// Also write the stem's and every stage's output.
        #[arg(long)]
        features: bool,
        #[command(flatten)]
        placement: Placement,
    },
    /// Time forward passes on random weights and inputs.
    Bench {
        /// A built-in model (a spec's file stem, e.g. regnety_1.6gf) or a spec file.
        model: PathBuf,
        #[arg(long, default_value_t = 1)]
        batch: usize,
        #[command(flatten)]
        threads: Threads,
        #[arg(long, default_value_t = 20)]
        iters: usize,
        /// Print one JSON line.
        #[arg(long)]
        json: bool,
        /// Print each step's time and GFLOP/s against the measured FMA peak instead.
        #[arg(long, conflicts_with = "json")]
        profile: bool,
        /// Time with this checkpoint instead of random weights (and report its load time).
        #[arg(long)]
        weights: Option<PathBuf>,
        /// The kernels' instruction set [default: the best this CPU has]; one the CPU lacks
        /// falls back to the best it has below that.
        #[arg(long, value_enum)]
        isa: Option<IsaChoice>,
        #[command(flatten)]
        placement: Placement,
    },
    /// Classify images (JPEG, PNG, WebP; directories walked) into the 1000 ImageNet classes.
    Classify {
        /// A built-in model (a spec's file stem, e.g. regnety_1.6gf) or a spec file.
        model: PathBuf,
        /// The checkpoint (safetensors; torchvision, timm or pycls names).
        #[arg(long)]
        weights: PathBuf,
        /// Image files and directories, walked for .jpg, .jpeg, .png, .webp and .jfif files; in a
        /// walked directory, symbolic links to files are followed, those to directories are not.
        #[arg(required = true)]
        inputs: Vec<PathBuf>,
        /// How many classes to print per image.
        #[arg(long, default_value_t = 5)]
        top: usize,
        /// Images per forward pass.
        #[arg(long, default_value_t = 8)]
        batch: usize,
        /// Feed channels as B, G, R (pycls's original checkpoints were trained on BGR input).
        #[arg(long)]
        bgr: bool,
        /// One JSON object per image and line instead of the table. Paths, there as in the
        /// table, have control characters escaped (\n, \u{1b}), bytes that are not UTF-8
        /// written as \xNN and backslashes doubled.
        #[arg(long)]
        jsonl: bool,
        #[command(flatten)]
        threads: Threads,
        #[command(flatten)]
        placement: Placement,
    },
    /// Serve models over the Open Inference Protocol (KServe v2, Triton's): HTTP and gRPC,
    /// with dynamic batching, until SIGTERM or Ctrl-C.
    Serve {
        /// One model to serve (a built-in model or a spec file), named as given here.
        model: Option<PathBuf>,
        /// That model's checkpoint [default: random weights, for trying the server out].
        #[arg(long, requires = "model")]
        weights: Option<PathBuf>,
        /// A model to serve, under NAME: a built-in model or spec file, and its checkpoint
        /// (random weights without one). Repeatable.
        #[arg(long = "model", value_name = "NAME=MODEL[:WEIGHTS]", value_parser = serve::parse_named)]
        models: Vec<serve::Named>,
        /// The HTTP/REST endpoint's address.
        #[arg(long, default_value = "127.0.0.1:8000")]
        http: std::net::SocketAddr,
        /// The gRPC endpoint's address.
        #[arg(long, default_value = "127.0.0.1:8001")]
        grpc: std::net::SocketAddr,
        /// The most images one batch combines.
        #[arg(long, default_value_t = 8, value_parser = RangedU64ValueParser::<usize>::new().range(1..=256))]
        max_batch: usize,
        /// How long a batch waits for as many images as the previous batch had (us, ms, s);
        /// requests already waiting always join. A lone client's requests run at once.
        #[arg(long, default_value = "2ms", value_parser = serve::parse_duration)]
        max_delay: std::time::Duration,
        /// Requests waiting per model, besides the batch running, beyond which one is refused
        /// at once (HTTP 503, gRPC UNAVAILABLE).
        #[arg(long, default_value_t = 64, value_parser = RangedU64ValueParser::<usize>::new().range(1..=1_000_000))]
        max_queue: usize,
        /// The largest request body (bytes, KiB, MiB, GiB).
        #[arg(long, default_value = "64MiB", value_parser = serve::parse_size)]
        max_body: usize,
        #[command(flatten)]
        threads: Threads,
        /// Log one JSON object per line (for log collectors) instead of text.
        #[arg(long)]
        log_json: bool,
    },
    /// Draw the per-block widths of a spec: continuous, quantized, and the stages (SVG or PNG).
    Plot {
        /// A built-in model (a spec's file stem) or a spec file [default: regnety_1.6gf].
        #[arg(default_value = "regnety_1.6gf")]
        model: PathBuf,
        /// The picture to write: .svg or .png.
        #[arg(short, long)]
        output: PathBuf,
    },
    /// Sample the paper's design spaces (AnyNetX_A–E, RegNetX, RegNetY): spec files and a
    /// table of their complexity.
    Sample {
        /// The design space.
        #[arg(value_enum)]
        space: SpaceChoice,
        /// How many samples to keep; at most 100000.
        #[arg(
            long,
            default_value_t = 10,
            value_parser = RangedU64ValueParser::<usize>::new().range(1..=sample::MAX_COUNT as u64)
        )]
        count: usize,
        /// The random seed (the same seed gives the same samples).
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Keep networks with multiply-adds in this range, e.g. 380M..420M.
        #[arg(long, value_parser = sample::parse_flops)]
        flops: Option<(u64, u64)>,
        /// Keep networks with this many stages.
        #[arg(long)]
        stages: Option<usize>,
        /// Give up after this many draws; at most 10000000.
        #[arg(
            long,
            default_value_t = 1_000_000,
            value_parser = RangedU64ValueParser::<usize>::new().range(1..=sample::MAX_ATTEMPTS as u64)
        )]
        attempts: usize,
        /// Write each sample's spec (NAME.yaml), samples.csv and samples.json here.
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
    /// Print the stage table and complexity of a spec.
    Inspect {
        /// A built-in model (a spec's file stem) or a spec file [default: regnety_1.6gf].
        #[arg(default_value = "regnety_1.6gf")]
        model: PathBuf,
        /// Print one JSON object instead of the table.
        #[arg(long)]
        json: bool,
    },
    /// Convert a PyTorch checkpoint (.pth, .pt, pycls's .pyth) to safetensors, without Python.
    /// (`run`, `bench` and `classify` also read PyTorch checkpoints directly.)
    Convert {
        /// The PyTorch checkpoint: torch.save's zip or legacy layout.
        input: PathBuf,
        /// The safetensors file to write.
        output: PathBuf,
    },
    /// Print the operation graph of a spec.
    Graph {
        /// A built-in model (a spec's file stem) or a spec file [default: regnety_1.6gf].
        #[arg(default_value = "regnety_1.6gf")]
        model: PathBuf,
        /// How to write the graph.
        #[arg(long, value_enum, default_value_t = Format::Dot)]
        format: Format,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    /// Graphviz DOT.
    Dot,
    /// One JSON object with nodes and edges.
    Json,
    /// The graph drawn as SVG by Graphviz (`dot` must be installed).
    Svg,
}

/// Why a command failed; each kind has its own exit code.
enum Failure {
    /// The user's input is wrong: exit 2, like clap's usage errors.
    Spec(SpecError),
    /// A model, weight file or input is wrong: exit 2.
    Input(String),
    /// Stdout failed for a reason other than a closed pipe.
    Output(io::Error),
    /// Some inputs (images) could not be read; the rest were processed: exit 1.
    Partial(String),
}

impl From<io::Error> for Failure {
    fn from(error: io::Error) -> Self {
        Failure::Output(error)
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let stdout = io::stdout();
    let mut out = stdout.lock();
    let result = run(cli.command, &mut out).and_then(|()| out.flush().map_err(Failure::from));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        // A reader that stops early (`regnet graph x | head`) is not an error.
        Err(Failure::Output(error)) if error.kind() == io::ErrorKind::BrokenPipe => {
            ExitCode::SUCCESS
        }
        Err(Failure::Output(error)) => {
            report(&format!("error: cannot write the output: {error}"));
            ExitCode::from(1)
        }
        Err(Failure::Partial(message)) => {
            report(&format!("error: {message}"));
            ExitCode::from(1)
        }
        // One error, maybe over several lines (a checkpoint mismatch's keys): one prefix.
        Err(Failure::Input(message)) => {
            report(&format!("error: {message}"));
            ExitCode::from(2)
        }
        Err(Failure::Spec(error)) => {
            for line in error.lines() {
                report(&format!("error: {line}"));
            }
            ExitCode::from(2)
        }
    }
}

fn run(command: Command, out: &mut impl Write) -> Result<(), Failure> {
    match command {
        Command::Demo { model, threads } => {
            execute::demo(out, &choose(&model)?, threads.count)?.map_err(Failure::Input)?
        }
        Command::Run {
            model,
            weights,
            input,
            output,
            key,
            threads,
            features,
            placement,
        } => execute::run(&execute::Run {
            model: &choose(&model)?,
            weights: &weights,
            input: &input,
            output: &output,
            key: &key,
            threads: threads.count,
            features,
            device: (placement.device, placement.tf32),
        })
        .map_err(Failure::Input)?,
        Command::Bench {
            model,
            batch,
            threads,
            iters,
            profile: true,
            isa,
            placement,
            ..
        } if placement.device == DeviceChoice::Cpu => execute::profile(
            out,
            &choose(&model)?,
            batch,
            threads.count,
            isa.map(Into::into),
            iters,
        )?
        .map_err(Failure::Input)?,
        Command::Bench {
            model,
            batch,
            threads,
            iters,
            json,
            profile,
            weights,
            isa,
            placement,
        } => {
            if profile {
                return Err(Failure::Input(
                    "--profile times the CPU kernels' steps; drop --device".to_owned(),
                ));
            }
            let (result, load) = execute::bench(&execute::Bench {
                model: &choose(&model)?,
                batch,
                threads: threads.count,
                isa: isa.map(Into::into),
                iters,
                weights: weights.as_deref(),
                device: (placement.device, placement.tf32),
            })
            .map_err(Failure::Input)?;
            if json {
                serde_json::to_writer(&mut *out, &result).map_err(io::Error::from)?;
                writeln!(out)?;
            } else {
                writeln!(
                    out,
                    "{} batch {} threads {} ({}): median {:.2} ms, min {:.2} ms, {:.1} images/s \
                     (weights ready in {:.1} ms)",
                    result.model,
                    result.batch,
                    result.threads,
                    result.isa,
                    result.median_ms,
                    result.min_ms,
                    result.images_per_s,
                    load.as_secs_f64() * 1e3
                )?;
            }
        }
        Command::Classify {
            model,
            weights,
            inputs,
            top,
            batch,
            bgr,
            jsonl,
            threads,
            placement,
        } => {
            let outcome = classify::classify(
                out,
                &classify::Classify {
                    model: &choose(&model)?,
                    weights: &weights,
                    inputs: &inputs,
                    top,
                    batch,
                    bgr,
                    jsonl,
                    threads: threads.count,
                    device: (placement.device, placement.tf32),
                },
            )?
            .map_err(Failure::Input)?;
            if outcome.failed > 0 {
                return Err(Failure::Partial(format!(
                    "{} of {} images could not be classified",
                    outcome.failed,
                    outcome.failed + outcome.classified
                )));
            }
        }
        Command::Serve {
            model,
            weights,
            mut models,
            http,
            grpc,
            max_batch,
            max_delay,
            max_queue,
            max_body,
            threads,
            log_json,
        } => {
            if let Some(model) = model {
                models.insert(
                    0,
                    serve::Named {
                        name: None,
                        model,
                        weights,
                    },
                );
            }
            if models.is_empty() {
                return Err(Failure::Input(
                    "no model to serve; name one (`regnet serve regnety_400mf`) or give \
                     --model NAME=MODEL[:WEIGHTS]"
                        .to_owned(),
                ));
            }
            let serve = serve::Serve {
                models,
                config: regnet_serve::Config {
                    http,
                    grpc,
                    max_batch,
                    max_delay,
                    max_queue,
                    max_body,
                    options: execute::options(
                        threads.count,
                        None,
                        false,
                        regnet::runtime::Device::Cpu,
                    ),
                },
                log_json,
            };
            serve::serve(serve, zoo::choose).map_err(|failure| match failure {
                serve::ServeFailure::Model(unchosen) => unchosen_failure(unchosen),
                serve::ServeFailure::Server(message) => Failure::Input(message),
            })?;
        }
        Command::Plot { model, output } => {
            let model = choose(&model)?;
            plot::plot(model.compiled, model.architecture.name, &output).map_err(Failure::Input)?;
        }
        Command::Sample {
            space,
            count,
            seed,
            flops,
            stages,
            attempts,
            output,
        } => sample::run(
            out,
            &sample::Request {
                space: space.into(),
                count,
                seed,
                filter: regnet_spec::sample::Filter { flops, stages },
                attempts,
                output: output.as_deref(),
            },
        )?
        .map_err(Failure::Input)?,
        Command::Inspect { model, json } => {
            let model = choose(&model)?;
            let name = model.architecture.name;
            if json {
                inspect::write_json(out, model.compiled, name)?;
            } else {
                inspect::write_table(out, model.compiled, name)?;
            }
        }
        Command::Convert { input, output } => {
            let converted = convert(&input).map_err(Failure::Input)?;
            output::write(&output, &converted.bytes).map_err(Failure::Input)?;
            writeln!(
                out,
                "wrote {} tensors ({} key names) to {}",
                converted.tensors,
                converted.scheme,
                output.display()
            )?;
        }
        Command::Graph { model, format } => {
            let model = choose(&model)?;
            let name = model.architecture.name;
            let graph = regnet_spec::graph::build(&model.architecture);
            match format {
                Format::Dot => {
                    out.write_all(regnet_spec::graph::to_dot(&graph, name).as_bytes())?
                }
                Format::Json => graph_json::write(out, &graph, name)?,
                Format::Svg => {
                    let svg = render_svg(&regnet_spec::graph::to_dot(&graph, name))
                        .map_err(Failure::Input)?;
                    out.write_all(&svg)?
                }
            }
        }
    }
    Ok(())
}

/// Draws DOT as SVG with Graphviz's `dot`, or says how to get it.
fn render_svg(dot: &str) -> Result<Vec<u8>, String> {
    use std::process::{Command, Stdio};
    let mut child = Command::new("dot")
        .arg("-Tsvg")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|error| match error.kind() {
            io::ErrorKind::NotFound => "Graphviz's `dot` is not installed (e.g. `apt install \
                                        graphviz`); `--format dot` prints the graph for any \
                                        Graphviz viewer"
                .to_owned(),
            _ => format!("cannot run Graphviz's `dot`: {error}"),
        })?;
    // Feed stdin from a thread: `dot` may fill its stdout pipe before reading all its input.
    let mut stdin = child.stdin.take().expect("stdin was piped");
    let input = dot.to_owned();
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let output = child
        .wait_with_output()
        .map_err(|e| format!("Graphviz's `dot` failed: {e}"))?;
    let written = writer
        .join()
        .map_err(|_| "writing to `dot` panicked".to_owned())?;
    if !output.status.success() {
        return Err(format!(
            "Graphviz's `dot` failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    written.map_err(|e| format!("cannot write to Graphviz's `dot`: {e}"))?;
    Ok(output.stdout)
}

/// The model a command names (see [`zoo::choose`]), or why it names none.
fn choose(argument: &Path) -> Result<zoo::Chosen, Failure> {
    zoo::choose(argument).map_err(unchosen_failure)
}

fn unchosen_failure(unchosen: zoo::Unchosen) -> Failure {
    match unchosen {
        zoo::Unchosen::Spec(error) => Failure::Spec(error),
        zoo::Unchosen::Unknown(message) => Failure::Input(message),
    }
}

/// The largest checkpoint `convert` reads: beyond the largest RegNet's (RegNetY-128GF, 2.6 GB
/// in F32), below what a mistaken multi-terabyte file would take.
const MAX_CHECKPOINT_BYTES: u64 = 16 << 30;

struct Converted {
    bytes: Vec<u8>,
    tensors: usize,
    scheme: String,
}

/// A PyTorch checkpoint's state dict as safetensors, with its tensor count and naming scheme.
fn convert(input: &Path) -> Result<Converted, String> {
    let bytes = regnet_spec::files::read_regular(input, MAX_CHECKPOINT_BYTES, "a checkpoint")
        .map_err(|error| format!("cannot read {}: {error}", input.display()))?;
    let converted = regnet::runtime::weights::pytorch_to_safetensors(&bytes, input)
        .map_err(|error| error.to_string())?;
    let tensors =
        safetensors::SafeTensors::deserialize(&converted).map_err(|error| error.to_string())?;
    let names = tensors.names();
    let scheme = regnet::runtime::Scheme::detect(names.iter().copied())
        .map_or_else(|| "unknown".to_owned(), |scheme| scheme.to_string());
    Ok(Converted {
        tensors: names.len(),
        scheme,
        bytes: converted,
    })
}

/// Writes one line to stderr; `eprintln!` would panic if stderr is a closed pipe.
fn report(line: &str) {
    let _ = writeln!(io::stderr().lock(), "{line}");
}
