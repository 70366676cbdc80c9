//! `regnet run`, `bench` and `demo` as a user runs them, including every kind of bad input.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use regnet::runtime::weights::decode_f32;
use safetensors::{Dtype, SafeTensors, tensor::TensorView};
use serde_json::Value;

fn regnet(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_regnet"))
        .args(args)
        .output()
        .expect("the regnet binary runs")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// A temp directory removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Self {
        let dir =
            std::env::temp_dir().join(format!("regnet-run-test-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    fn file(&self, name: &str) -> String {
        self.0.join(name).to_str().unwrap().to_owned()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn write_f32(path: &str, name: &str, shape: &[usize], values: &[f32]) {
    let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    let view = TensorView::new(Dtype::F32, shape.to_vec(), &bytes).unwrap();
    safetensors::serialize_to_file([(name.to_owned(), view)], None, Path::new(path)).unwrap();
}

fn read_f32(path: &str, name: &str) -> (Vec<f32>, Vec<usize>) {
    let bytes = std::fs::read(path).unwrap();
    let tensors = SafeTensors::deserialize(&bytes).unwrap();
    let view = tensors.tensor(name).unwrap();
    assert_eq!(view.dtype(), Dtype::F32);
    let data = decode_f32(view.dtype(), view.data()).unwrap();
    (data, view.shape().to_vec())
}

/// `regnet run MODEL --weights W --input IN --output OUT --key KEY`.
fn run_model(model: &str, weights: &str, input: &str, output: &str, key: &str) -> Output {
    regnet(&[
        "run",
        model,
        "--weights",
        weights,
        "--input",
        input,
        "--output",
        output,
        "--key",
        key,
    ])
}

fn assert_fails_with(output: &Output, needle: &str) {
    assert_eq!(output.status.code(), Some(2), "{}", stderr(output));
    let message = stderr(output);
    assert!(message.starts_with("error: "), "{message}");
    assert!(
        message.contains(needle),
        "expected `{needle}` in: {message}"
    );
    assert!(!message.contains("panicked"), "{message}");
}

/// The shared regnet_y_400mf fixture, or `None` (saying so) when `../shared` is absent.
fn shared_regnet_y_400mf() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/fixtures/regnet_y_400mf");
    if dir.is_dir() {
        return Some(dir);
    }
    // Written past the test harness's capture so a skip shows in every run's output.
    let _ = writeln!(
        std::io::stderr(),
        "SKIPPED: {} not found; the shared fixtures are beside the repository in CI",
        dir.display()
    );
    None
}

#[test]
fn run_matches_pytorch_on_the_shared_fixture() {
    let Some(dir) = shared_regnet_y_400mf() else {
        return;
    };
    let scratch = Scratch::new("fixture");
    let out = scratch.file("out.safetensors");
    let output = regnet(&[
        "run",
        "regnety_400mf",
        "--weights",
        dir.join("model.safetensors").to_str().unwrap(),
        "--input",
        dir.join("input.safetensors").to_str().unwrap(),
        "--output",
        &out,
        "--threads",
        "2",
        "--features",
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    let expected = dir.join("expected.safetensors");
    for (name, tolerance) in [
        ("stem", 1e-4),
        ("s1", 1e-4),
        ("s2", 1e-4),
        ("s3", 1e-4),
        ("s4", 1e-4),
        ("logits", 1e-5),
    ] {
        let (got, got_shape) = read_f32(&out, name);
        let (want, want_shape) = read_f32(expected.to_str().unwrap(), name);
        assert_eq!(got_shape, want_shape, "{name}");
        let difference = got
            .iter()
            .zip(&want)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        assert!(difference <= tolerance, "{name}: {difference}");
    }
}

#[test]
fn bench_prints_one_json_line() {
    let output = regnet(&[
        "bench",
        "regnetx_200mf",
        "--batch",
        "2",
        "--threads",
        "1",
        "--iters",
        "2",
        "--json",
        "--isa",
        "scalar",
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    let text = String::from_utf8(output.stdout).unwrap();
    assert_eq!(text.lines().count(), 1, "{text}");
    let result: Value = serde_json::from_str(text.trim_end()).unwrap();
    assert_eq!(result["model"], "regnetx_200mf");
    assert_eq!(result["batch"], 2);
    assert_eq!(result["threads"], 1);
    assert_eq!(result["isa"], "Scalar");
    // pycls's count for RegNetX-200MF (zoo.json).
    assert_eq!(result["params"], 2_684_792);
    assert!(result["workspace_bytes"].as_u64().is_some_and(|b| b > 0));
    for key in ["median_ms", "min_ms", "p99_ms", "images_per_s"] {
        assert!(
            result[key].as_f64().is_some_and(|v| v > 0.0),
            "{key}: {text}"
        );
    }
    let keys: Vec<&str> = text
        .split('"')
        .skip(1)
        .step_by(2)
        .filter(|k| !k.contains("regnet") && *k != "Scalar")
        .collect();
    assert_eq!(
        keys,
        [
            "model",
            "batch",
            "threads",
            "isa",
            "median_ms",
            "min_ms",
            "p99_ms",
            "images_per_s",
            "workspace_bytes",
            "params"
        ]
    );
}

#[test]
fn demo_prints_stages_top5_and_time() {
    let output = regnet(&["demo", "regnety_200mf", "--threads", "1"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(text.contains("RegNetY-200MF"), "{text}");
    assert!(text.contains("199,519,076"), "{text}");
    assert!(text.contains("top-5"), "{text}");
    assert!(text.contains("forward pass: median"), "{text}");
}

#[test]
fn bad_models_weights_and_inputs_exit_2() {
    let scratch = Scratch::new("bad");
    let input = scratch.file("input.safetensors");
    write_f32(
        &input,
        "input",
        &[1, 3, 224, 224],
        &vec![0.0; 3 * 224 * 224],
    );
    let garbage = scratch.file("garbage.safetensors");
    std::fs::write(&garbage, b"not a checkpoint at all").unwrap();
    let out = scratch.file("out.safetensors");
    let run = |model: &str, weights: &str, input: &str, key: &str| {
        run_model(model, weights, input, &out, key)
    };
    assert_fails_with(
        &run("regnety_9000gf", &garbage, &input, "input"),
        "no model `regnety_9000gf`",
    );
    assert_fails_with(
        &run("regnety_200mf", "no/such.safetensors", &input, "input"),
        "no/such.safetensors",
    );
    assert_fails_with(
        &run("regnety_200mf", &garbage, &input, "input"),
        "not a safetensors",
    );
    // A pycls-named checkpoint with one misshapen tensor and nothing else: the counts and the
    // hint come first, then a few keys of each kind, not all 273 missing ones; one `error:`.
    let weights = scratch.file("weights.safetensors");
    write_f32(&weights, "s1.b1.f.a.weight", &[8, 32, 1, 1], &[0.0; 8 * 32]);
    let output = run("regnety_200mf", &weights, &input, "input");
    assert_fails_with(&output, "s1.b1.f.a.weight");
    let message = stderr(&output);
    let lines: Vec<&str> = message.lines().collect();
    assert!(
        lines[0].ends_with("273 missing, 0 unexpected, 1 with the wrong shape"),
        "{message}"
    );
    assert!(lines[1].starts_with("hint: "), "{message}");
    assert!(lines.len() <= 10, "{message}");
    assert_eq!(message.matches("error:").count(), 1, "{message}");
    assert!(message.contains("... and 268 more"), "{message}");
    assert_fails_with(
        &regnet(&["bench", "regnety_200mf", "--batch", "0"]),
        "at least 1",
    );
    assert_fails_with(
        &regnet(&["bench", "regnetx_200mf", "--batch", "4611686018427387905"]),
        "does not fit in memory",
    );
    assert_fails_with(
        &regnet(&["bench", "nope"]),
        "give a spec file's path (ending in .yaml) or one of the built-in models, the specs' \
         file stems: anynetx_e_400mf,",
    );
}

/// `bench specs/my.yaml` said "no model", `inspect regnety_400mf` "cannot read the spec".
#[test]
fn every_command_takes_a_built_in_name_or_a_spec_path() {
    let spec = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/fixtures/tv_y/spec.yaml"
    );
    let output = regnet(&["bench", spec, "--iters", "1", "--threads", "1", "--json"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(text.contains("\"model\":\"spec\""), "{text}");
    let output = regnet(&["demo", spec, "--threads", "1"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(
        text.starts_with("TinyY-TV (spec), random weights"),
        "{text}"
    );
    for command in ["inspect", "graph"] {
        let by_name = regnet(&[command, "regnety_400mf"]);
        assert!(by_name.status.success(), "{}", stderr(&by_name));
        let by_path = regnet(&[
            command,
            concat!(env!("CARGO_MANIFEST_DIR"), "/../specs/regnety_400mf.yaml"),
        ]);
        assert_eq!(by_name.stdout, by_path.stdout, "{command}");
        assert!(String::from_utf8_lossy(&by_name.stdout).contains("RegNetY-400MF"));
    }
    // A spec that does not compile is its located errors, whichever command reads it.
    let scratch = Scratch::new("bad-spec");
    let bad = scratch.file("bad.yaml");
    std::fs::write(&bad, "d: 0\nw0: 24\nwa: 36.44\nwm: 2.49\ng: 8\n").unwrap();
    for command in ["bench", "inspect"] {
        let output = regnet(&[command, &bad]);
        assert_eq!(output.status.code(), Some(2), "{command}");
        assert!(
            stderr(&output).contains(&format!("error: {bad}:1:1: field `d`")),
            "{command}: {}",
            stderr(&output)
        );
    }
}

#[test]
fn bad_inputs_with_good_weights_exit_2() {
    let Some(dir) = shared_regnet_y_400mf() else {
        return;
    };
    let weights = dir.join("model.safetensors");
    let scratch = Scratch::new("inputs");
    let small = scratch.file("small.safetensors");
    write_f32(&small, "input", &[1, 3, 32, 32], &vec![0.0; 3 * 32 * 32]);
    let out = scratch.file("out.safetensors");
    let run = |input: &str, key: &str| {
        run_model("regnety_400mf", weights.to_str().unwrap(), input, &out, key)
    };
    assert_fails_with(&run(&small, "input"), "[N, 3, 224, 224]");
    assert_fails_with(&run(&small, "images"), "has no tensor `images`");
}

/// `convert` writes the state dict of a PyTorch checkpoint as safetensors; `run` reads both the
/// converted file and the PyTorch one, to the same logits.
#[test]
fn convert_and_run_read_pytorch_checkpoints() {
    let fixtures = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures");
    let scratch = Scratch::new("convert");
    let converted = scratch.file("converted.safetensors");
    let output = regnet(&[
        "convert",
        &format!("{fixtures}/pycls_y/model.pyth"),
        &converted,
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(
        text.starts_with("wrote 160 tensors (pycls key names)"),
        "{text}"
    );
    let spec = format!("{fixtures}/pycls_y/spec.yaml");
    let input = format!("{fixtures}/pycls_y/input.safetensors");
    let mut logits = Vec::new();
    for weights in [
        converted.clone(),
        format!("{fixtures}/pycls_y/model.pyth"),
        format!("{fixtures}/pycls_y/model.safetensors"),
    ] {
        let out = scratch.file("out.safetensors");
        let output = run_model(&spec, &weights, &input, &out, "input");
        assert!(output.status.success(), "{weights}: {}", stderr(&output));
        logits.push(read_f32(&out, "logits").0);
    }
    assert_eq!(logits[0], logits[2]);
    assert_eq!(logits[1], logits[2]);
    assert_fails_with(
        &regnet(&["convert", &spec, &scratch.file("x.safetensors")]),
        "cannot read it as a PyTorch checkpoint: it starts like neither a zip archive nor a \
         torch.save pickle",
    );
}
