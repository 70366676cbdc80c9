//! Runs the built `regnet` binary as a user would.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use serde_json::Value;

const REGNETY_1_6GF: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../specs/regnety_1.6gf.yaml");
const REGNETX_200MF: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../specs/regnetx_200mf.yaml");

fn regnet(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_regnet"))
        .args(args)
        .output()
        .expect("the regnet binary runs")
}

fn stdout(output: &Output) -> &str {
    assert!(
        output.status.success(),
        "{:?}: {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    std::str::from_utf8(&output.stdout).expect("stdout is UTF-8")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Parses stdout as exactly one JSON object on one line.
fn json(output: &Output) -> Value {
    let text = stdout(output);
    let line = text.strip_suffix('\n').expect("output ends with a newline");
    assert!(!line.contains('\n'), "more than one line: {text}");
    serde_json::from_str(line).expect("stdout is JSON")
}

fn column(stages: &Value, key: &str) -> Vec<Value> {
    stages
        .as_array()
        .expect("stages is an array")
        .iter()
        .map(|stage| stage[key].clone())
        .collect()
}

/// A spec file in the temp directory, removed when dropped.
struct TempSpec(PathBuf);

impl TempSpec {
    fn new(name: &str, contents: &str) -> Self {
        let path = std::env::temp_dir().join(format!(
            "regnet-cli-test-{}-{name}.yaml",
            std::process::id()
        ));
        std::fs::write(&path, contents).expect("the temp spec is written");
        TempSpec(path)
    }

    fn path(&self) -> &str {
        self.0.to_str().expect("the temp path is UTF-8")
    }
}

impl Drop for TempSpec {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[test]
fn inspect_json_matches_pycls() {
    let output = regnet(&["inspect", REGNETY_1_6GF, "--json"]);
    let summary = json(&output);
    assert_eq!(summary["name"], "RegNetY-1.6GF");
    assert_eq!(summary["flops"], 1_612_087_326_u64);
    assert_eq!(summary["params"], 11_202_430_u64);
    assert_eq!(summary["acts"], 8_044_814_u64);
    let stages = &summary["stages"];
    assert_eq!(column(stages, "width"), [48, 120, 336, 888]);
    assert_eq!(column(stages, "depth"), [2, 6, 17, 2]);
    assert_eq!(stages[0]["se_width"], 8);

    let stage_keys = [
        "depth",
        "width",
        "group_width",
        "bottleneck_width",
        "stride",
        "se_width",
    ];
    let mut expected = vec!["name", "stages"];
    for _ in 0..4 {
        expected.extend(stage_keys);
    }
    expected.extend(["flops", "params", "acts"]);
    assert_eq!(keys_in_order(stdout(&output)), expected);
}

/// Every object key in a JSON text, in the order written; `serde_json::Value` sorts them.
fn keys_in_order(text: &str) -> Vec<&str> {
    // Splitting on quotes puts string contents at the odd positions; a key is followed by `:`.
    // None of the strings checked here contains a quote.
    let pieces: Vec<&str> = text.split('"').collect();
    pieces
        .iter()
        .zip(&pieces[1..])
        .skip(1)
        .step_by(2)
        .filter(|(_, after)| after.starts_with(':'))
        .map(|(key, _)| *key)
        .collect()
}

#[test]
fn inspect_json_without_se_has_null_se_width() {
    let summary = json(&regnet(&["inspect", REGNETX_200MF, "--json"]));
    assert_eq!(column(&summary["stages"], "se_width"), vec![Value::Null; 4]);
}

#[test]
fn inspect_table_shows_name_and_exact_flops() {
    let output = regnet(&["inspect", REGNETY_1_6GF]);
    let table = stdout(&output);
    assert!(table.contains("RegNetY-1.6GF"), "{table}");
    assert!(table.contains("1,612,087,326"), "{table}");
    assert!(table.contains("8/12"), "{table}");
}

#[test]
fn graph_json_and_dot_agree() {
    let graph = json(&regnet(&["graph", REGNETY_1_6GF, "--format", "json"]));
    assert_eq!(graph["name"], "RegNetY-1.6GF");
    let nodes = graph["nodes"].as_array().expect("nodes is an array");
    let dot_output = regnet(&["graph", REGNETY_1_6GF]);
    let dot = stdout(&dot_output);
    let dot_nodes = dot
        .lines()
        .filter(|line| line.trim_start().starts_with('n') && line.contains("[label="))
        .count();
    assert_eq!(nodes.len(), dot_nodes);
    let dot_edges = dot.lines().filter(|line| line.contains(" -> ")).count();
    assert_eq!(graph["edges"].as_array().map(Vec::len), Some(dot_edges));

    let first = &nodes[0];
    assert_eq!(first["op"], "input");
    assert_eq!(first["output"], serde_json::json!([3, 224, 224]));
    let last = &nodes[nodes.len() - 1];
    assert_eq!(last["name"], "head.fc");
    assert_eq!(last["output"], serde_json::json!([1000, 1, 1]));
    let stem = &nodes[1];
    assert_eq!(stem["op"], "conv");
    assert_eq!(
        (
            &stem["kernel"],
            &stem["stride"],
            &stem["groups"],
            &stem["bias"]
        ),
        (
            &Value::from(3),
            &Value::from(2),
            &Value::from(1),
            &Value::from(false)
        )
    );
}

#[test]
fn missing_file_exits_2_naming_it() {
    let output = regnet(&["inspect", "no/such/spec.yaml"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(output.stdout.is_empty());
    let message = stderr(&output);
    assert!(message.starts_with("error: "), "{message}");
    assert!(message.contains("no/such/spec.yaml"), "{message}");
}

#[test]
fn bad_spec_exits_2_naming_field_and_position() {
    let spec = TempSpec::new("bad", "w0: 24\nd: 0\nwa: 36.44\nwm: 2.49\ng: 8\n");
    let output = regnet(&["inspect", spec.path(), "--json"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(output.stdout.is_empty());
    let message = stderr(&output);
    assert!(
        message.contains(&format!("error: {}:2:1: field `d`", spec.path())),
        "{message}"
    );
}

#[test]
fn every_spec_problem_gets_its_own_line() {
    let spec = TempSpec::new("two-bad", "d: 0\nw0: 24\nwa: 36.44\nwm: 0.5\ng: 8\n");
    let output = regnet(&["graph", spec.path()]);
    assert_eq!(output.status.code(), Some(2));
    let message = stderr(&output);
    let lines: Vec<&str> = message.lines().collect();
    assert_eq!(lines.len(), 2, "{message}");
    assert!(lines[0].contains(":1:1: field `d`"), "{message}");
    assert!(lines[1].contains(":4:1: field `wm`"), "{message}");
}

#[test]
fn unsupported_format_is_a_usage_error() {
    let output = regnet(&["graph", REGNETY_1_6GF, "--format", "png"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(output.stdout.is_empty());
    assert!(stderr(&output).contains("png"));
}

#[test]
fn closed_stdout_is_not_an_error() {
    // 200 blocks make a DOT file larger than a pipe buffer, so the write fails even if the
    // binary gets to it before the pipe below is closed.
    let spec = TempSpec::new("deep", "d: 200\nw0: 24\nwa: 36.44\nwm: 2.49\ng: 8\n");
    let mut child = Command::new(env!("CARGO_BIN_EXE_regnet"))
        .args(["graph", spec.path()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the regnet binary runs");
    // What `| head` does once it has its lines.
    drop(child.stdout.take());
    let output = child.wait_with_output().expect("regnet exits");
    assert!(output.status.success(), "{:?}", output.status);
    assert_eq!(stderr(&output), "");
}

#[test]
fn a_gpu_that_cannot_be_used_is_an_error_not_a_panic() {
    // Without the `cuda` feature: built without CUDA; with it but no driver: no CUDA driver;
    // with a GPU: no device 99. Each is one `error:` line and exit 2.
    let output = regnet(&[
        "bench",
        "regnetx_200mf",
        "--device",
        "cuda:99",
        "--iters",
        "1",
    ]);
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    let message = stderr(&output);
    assert!(message.starts_with("error: "), "{message}");
    assert!(message.contains("CUDA"), "{message}");
    assert!(!message.contains("panicked"), "{message}");
}

#[test]
fn a_device_that_is_not_cpu_or_cuda_is_a_usage_error() {
    let output = regnet(&["bench", "regnetx_200mf", "--device", "gpu0"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("expected cpu, cuda or cuda:N"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn graph_svg_is_drawn_by_graphviz_or_says_it_is_missing() {
    let output = regnet(&["graph", REGNETX_200MF, "--format", "svg"]);
    let has_dot = Command::new("dot")
        .arg("-V")
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if has_dot {
        let svg = stdout(&output);
        assert!(
            svg.contains("<svg") && svg.trim_end().ends_with("</svg>"),
            "{svg}"
        );
    } else {
        eprintln!("Graphviz is not installed: checking the message");
        assert_eq!(output.status.code(), Some(2));
        assert!(
            stderr(&output).contains("`dot` is not installed"),
            "{}",
            stderr(&output)
        );
    }
}

#[test]
fn plot_writes_svg_and_png_and_refuses_other_formats() {
    let dir = std::env::temp_dir().join(format!("regnet-plot-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let svg = dir.join("widths.svg");
    stdout(&regnet(&[
        "plot",
        REGNETY_1_6GF,
        "-o",
        svg.to_str().unwrap(),
    ]));
    let text = std::fs::read_to_string(&svg).unwrap();
    assert!(text.contains("<svg"), "not SVG");
    assert!(
        text.contains(
            "RegNetY-1.6GF: d=27 w0=48 wa=20.71 wm=2.65 g=24 b=1 SE, 1.612 GF, 11.20 M params"
        ),
        "title with the parameters, flops and params"
    );
    assert!(text.contains("stage widths after the group rule"));
    let png = dir.join("widths.png");
    stdout(&regnet(&[
        "plot",
        REGNETX_200MF,
        "-o",
        png.to_str().unwrap(),
    ]));
    let bytes = std::fs::read(&png).unwrap();
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
    let width = u32::from_be_bytes(bytes[16..20].try_into().unwrap());
    let height = u32::from_be_bytes(bytes[20..24].try_into().unwrap());
    assert_eq!((width, height), (960, 600));
    let other = regnet(&[
        "plot",
        REGNETX_200MF,
        "-o",
        dir.join("w.gif").to_str().unwrap(),
    ]);
    assert_eq!(other.status.code(), Some(2));
    assert!(
        stderr(&other).contains(".svg or .png"),
        "{}",
        stderr(&other)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn sample_writes_specs_that_compile_to_the_tabled_complexity() {
    let dir = std::env::temp_dir().join(format!("regnet-sample-{}", std::process::id()));
    let args = [
        "sample",
        "regnetx",
        "--count",
        "3",
        "--seed",
        "5",
        "--flops",
        "200M..800M",
        "--stages",
        "4",
        "-o",
    ];
    let first = stdout(&regnet(&[&args[..], &[dir.to_str().unwrap()]].concat())).to_owned();
    let again = stdout(&regnet(&[&args[..], &[dir.to_str().unwrap()]].concat())).to_owned();
    assert_eq!(first, again, "the same seed gives the same samples");
    let rows: Vec<Value> =
        serde_json::from_str(&std::fs::read_to_string(dir.join("samples.json")).unwrap()).unwrap();
    assert_eq!(rows.len(), 3);
    let csv = std::fs::read_to_string(dir.join("samples.csv")).unwrap();
    assert_eq!(csv.lines().count(), 4, "{csv}");
    for row in &rows {
        let flops = row["flops"].as_u64().unwrap();
        assert!((200_000_000..=800_000_000).contains(&flops), "{row}");
        assert_eq!(row["stages"], 4);
        assert_eq!(row["se"], false);
        let spec = dir.join(format!("{}.yaml", row["name"].as_str().unwrap()));
        let inspected = json(&regnet(&["inspect", spec.to_str().unwrap(), "--json"]));
        assert_eq!(inspected["flops"], row["flops"], "{}", spec.display());
        assert_eq!(inspected["params"], row["params"]);
    }
    let impossible = regnet(&["sample", "regnety", "--flops", "1..2", "--attempts", "100"]);
    assert_eq!(impossible.status.code(), Some(2));
    assert!(stderr(&impossible).contains("found 0 of 10 samples in 100 draws"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn sample_anynet_writes_per_stage_specs_that_plot_and_inspect() {
    let dir = std::env::temp_dir().join(format!("regnet-anynet-{}", std::process::id()));
    let out = regnet(&[
        "sample",
        "anynetx-e",
        "--count",
        "2",
        "--seed",
        "2",
        "-o",
        dir.to_str().unwrap(),
    ]);
    let table = stdout(&out);
    assert!(
        table.starts_with("name        se    stages depths"),
        "AnyNet rows have no RegNet parameters: {table}"
    );
    let rows: Vec<Value> =
        serde_json::from_str(&std::fs::read_to_string(dir.join("samples.json")).unwrap()).unwrap();
    assert_eq!(rows.len(), 2);
    for row in &rows {
        let widths: Vec<u64> = row["widths"]
            .as_array()
            .unwrap()
            .iter()
            .map(|w| w.as_u64().unwrap())
            .collect();
        assert!(widths.windows(2).all(|w| w[0] <= w[1]), "{row}");
        let spec = dir.join(format!("{}.yaml", row["name"].as_str().unwrap()));
        let yaml = std::fs::read_to_string(&spec).unwrap();
        assert!(yaml.contains("\ndepths: ["), "{yaml}");
        let inspected = json(&regnet(&["inspect", spec.to_str().unwrap(), "--json"]));
        assert_eq!(inspected["flops"], row["flops"], "{}", spec.display());
        let text = regnet(&["inspect", spec.to_str().unwrap()]);
        assert!(stdout(&text).contains(" depths=["), "{}", stdout(&text));
    }
    let svg = dir.join("widths.svg");
    let spec = dir.join("sample_0000.yaml");
    let plotted = regnet(&["plot", spec.to_str().unwrap(), "-o", svg.to_str().unwrap()]);
    assert_eq!(plotted.status.code(), Some(0), "{}", stderr(&plotted));
    let drawn = std::fs::read_to_string(&svg).unwrap();
    assert!(drawn.contains("stage widths as the spec gives them"));
    assert!(!drawn.contains("continuous u_j"));
    let _ = std::fs::remove_dir_all(&dir);
}

/// Runs regnet, failing the test instead of hanging it if it takes more than 30 s.
fn regnet_within_30s(args: &[&str]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_regnet"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the regnet binary runs");
    let start = std::time::Instant::now();
    while child
        .try_wait()
        .expect("regnet can be waited for")
        .is_none()
    {
        if start.elapsed() > std::time::Duration::from_secs(30) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("`regnet {}` did not finish in 30 s", args.join(" "));
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.wait_with_output().expect("regnet's output is read")
}

#[cfg(unix)]
#[test]
fn specs_that_are_not_regular_files_are_refused_without_hanging() {
    let zero = regnet_within_30s(&["inspect", "/dev/zero"]);
    assert_eq!(zero.status.code(), Some(2), "{}", stderr(&zero));
    assert_eq!(
        stderr(&zero).lines().next(),
        Some(
            "error: /dev/zero: cannot read the spec: it is a character device, not a regular file"
        )
    );
    let fifo = std::env::temp_dir().join(format!("regnet-cli-fifo-{}.yaml", std::process::id()));
    let _ = std::fs::remove_file(&fifo);
    let made = Command::new("mkfifo").arg(&fifo).status();
    if !made.is_ok_and(|status| status.success()) {
        let _ = writeln!(std::io::stderr(), "SKIPPED: mkfifo is not available");
        return;
    }
    let path = fifo.to_str().unwrap();
    let output = regnet_within_30s(&["inspect", path]);
    std::fs::remove_file(&fifo).unwrap();
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert_eq!(
        stderr(&output).lines().next(),
        Some(
            format!(
                "error: {path}: cannot read the spec: it is a FIFO (named pipe), not a regular file"
            )
            .as_str()
        )
    );
}
