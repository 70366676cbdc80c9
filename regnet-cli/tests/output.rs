//! The files the command writes (`run --output`, `plot -o`, `sample -o`) and the files it
//! reads (`run --input`), given paths that are not plain new files: devices, FIFOs, symlinks,
//! directories, existing files, and runs that are interrupted.

#![cfg(unix)]

use std::io::{BufRead, BufReader, Write as _};
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use safetensors::{Dtype, SafeTensors, tensor::TensorView};

const REGNET: &str = env!("CARGO_BIN_EXE_regnet");

fn regnet(args: &[&str]) -> Output {
    Command::new(REGNET)
        .args(args)
        .output()
        .expect("the regnet binary runs")
}

/// Runs regnet, failing the test instead of hanging it if it takes more than `limit`.
fn regnet_within(args: &[&str], limit: Duration) -> Output {
    let child = Command::new(REGNET)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the regnet binary runs");
    finish_within(child, limit, &args.join(" "))
}

fn finish_within(mut child: Child, limit: Duration, what: &str) -> Output {
    let start = Instant::now();
    while child
        .try_wait()
        .expect("the child can be waited for")
        .is_none()
    {
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("`{what}` did not finish in {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child
        .wait_with_output()
        .expect("the child's output is read")
}

/// Runs regnet under `umask`.
fn regnet_with_umask(umask: &str, args: &[&str]) -> Output {
    Command::new("sh")
        .arg("-c")
        .arg(format!("umask {umask} && exec \"$0\" \"$@\""))
        .arg(REGNET)
        .args(args)
        .output()
        .expect("sh runs")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn assert_success(output: &Output) {
    assert!(
        output.status.success(),
        "{:?}: {}",
        output.status,
        stderr(output)
    );
}

/// Asserts exit 2 with `first_line` as the first line of stderr.
fn assert_refused(output: &Output, first_line: &str) {
    let message = stderr(output);
    assert_eq!(output.status.code(), Some(2), "{message}");
    assert_eq!(message.lines().next(), Some(first_line), "{message}");
}

/// A temp directory removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Self {
        let dir =
            std::env::temp_dir().join(format!("regnet-output-test-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    fn file(&self, name: &str) -> String {
        self.path(name).to_str().unwrap().to_owned()
    }

    /// The names in the directory starting with a dot: temporary files.
    fn hidden(&self) -> Vec<String> {
        std::fs::read_dir(&self.0)
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|name| name.starts_with('.'))
            .collect()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Makes a FIFO, or says why the test is skipped.
fn mkfifo(path: &Path) -> bool {
    let made = Command::new("mkfifo").arg(path).status();
    if !made.is_ok_and(|status| status.success()) {
        skip("mkfifo is not available");
        return false;
    }
    true
}

fn skip(why: &str) {
    // Written past the test harness's capture so a skip shows in every run's output.
    let _ = writeln!(std::io::stderr(), "SKIPPED: {why}");
}

/// The shared pycls RegNetX-200MF fixture (`model.safetensors`, `input.safetensors` with a
/// batch of 2), or `None`, saying so, when `../shared` is absent.
fn fixture() -> Option<PathBuf> {
    let dir =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/fixtures/pycls_regnetx_200mf");
    if dir.is_dir() {
        return Some(dir);
    }
    skip(&format!(
        "{} not found; the shared fixtures are beside the repository in CI",
        dir.display()
    ));
    None
}

/// `regnet run regnetx_200mf` on the fixture's weights: `--input INPUT --output OUTPUT` and
/// `extra`.
fn run_args(fixture: &Path, input: &str, output: &str, extra: &[&str]) -> Vec<String> {
    let weights = fixture.join("model.safetensors");
    let mut args: Vec<String> = [
        "run",
        "regnetx_200mf",
        "--weights",
        weights.to_str().unwrap(),
        "--input",
        input,
        "--output",
        output,
    ]
    .map(str::to_owned)
    .into();
    args.extend(extra.iter().map(|arg| arg.to_string()));
    args
}

fn fixture_input(fixture: &Path) -> String {
    fixture
        .join("input.safetensors")
        .to_str()
        .unwrap()
        .to_owned()
}

/// `regnet run` of the fixture's own input batch into `output`.
fn run_fixture_into(fixture: &Path, output: &str) -> Output {
    let args = run_args(fixture, &fixture_input(fixture), output, &[]);
    regnet(&strs(&args))
}

fn strs(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}

/// The shape of `logits` in safetensors bytes.
fn logits_shape(bytes: &[u8]) -> Vec<usize> {
    let tensors = SafeTensors::deserialize(bytes).expect("the output is safetensors");
    tensors.tensor("logits").unwrap().shape().to_vec()
}

#[test]
fn run_writes_a_device_in_place_instead_of_replacing_it() {
    let Some(fixture) = fixture() else { return };
    let scratch = Scratch::new("device");
    // A second /dev/null (character device 1, 3), so a regression cannot break the real one.
    let null = scratch.path("null");
    let made = Command::new("mknod")
        .arg(&null)
        .args(["c", "1", "3"])
        .status();
    if !made.is_ok_and(|status| status.success()) {
        skip("mknod needs root");
        return;
    }
    assert_success(&run_fixture_into(&fixture, null.to_str().unwrap()));
    let after = std::fs::symlink_metadata(&null).unwrap();
    assert!(after.file_type().is_char_device(), "{after:?}");
    assert_eq!(after.rdev(), std::fs::metadata("/dev/null").unwrap().rdev());
    assert!(scratch.hidden().is_empty(), "{:?}", scratch.hidden());
}

#[test]
fn run_writes_to_dev_stdout() {
    let Some(fixture) = fixture() else { return };
    let output = run_fixture_into(&fixture, "/dev/stdout");
    assert_success(&output);
    assert_eq!(logits_shape(&output.stdout), [2, 1000]);
}

#[test]
fn run_writes_into_a_fifo_instead_of_replacing_it() {
    let Some(fixture) = fixture() else { return };
    let scratch = Scratch::new("fifo");
    let fifo = scratch.path("out.safetensors");
    if !mkfifo(&fifo) {
        return;
    }
    let reader = Command::new("cat")
        .arg(&fifo)
        .stdout(Stdio::piped())
        .spawn()
        .expect("cat runs");
    let run = run_fixture_into(&fixture, fifo.to_str().unwrap());
    // If regnet never opened the FIFO, cat waits for a writer forever: the limit ends it.
    let read = finish_within(reader, Duration::from_secs(10), "cat of the FIFO");
    assert_success(&run);
    assert!(
        std::fs::symlink_metadata(&fifo)
            .unwrap()
            .file_type()
            .is_fifo()
    );
    assert_eq!(logits_shape(&read.stdout), [2, 1000]);
}

#[test]
fn run_writes_through_a_symlink_and_keeps_the_link() {
    let Some(fixture) = fixture() else { return };
    let scratch = Scratch::new("symlink");
    let target = scratch.path("target.safetensors");
    std::fs::write(&target, b"old").unwrap();
    let link = scratch.path("link.safetensors");
    // Relative, as `ln -s target.safetensors link.safetensors` makes it.
    std::os::unix::fs::symlink("target.safetensors", &link).unwrap();
    assert_success(&run_fixture_into(&fixture, link.to_str().unwrap()));
    assert!(std::fs::symlink_metadata(&link).unwrap().is_symlink());
    assert_eq!(
        std::fs::read_link(&link).unwrap(),
        Path::new("target.safetensors")
    );
    assert_eq!(logits_shape(&std::fs::read(&target).unwrap()), [2, 1000]);
    assert!(scratch.hidden().is_empty(), "{:?}", scratch.hidden());
}

#[test]
fn plot_writes_through_a_dangling_symlink() {
    let scratch = Scratch::new("dangling");
    let link = scratch.path("link.svg");
    std::os::unix::fs::symlink("drawn.svg", &link).unwrap();
    assert_success(&regnet(&["plot", "-o", link.to_str().unwrap()]));
    assert!(std::fs::symlink_metadata(&link).unwrap().is_symlink());
    let drawn = std::fs::read_to_string(scratch.path("drawn.svg")).unwrap();
    assert!(drawn.contains("<svg"), "not SVG");
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

#[test]
fn run_output_mode_follows_the_umask_and_a_replaced_file_keeps_its_mode() {
    let Some(fixture) = fixture() else { return };
    let scratch = Scratch::new("mode");
    let input = fixture_input(&fixture);
    for (umask, expected) in [("022", 0o644), ("077", 0o600)] {
        let out = scratch.file(&format!("new-{umask}.safetensors"));
        let args = run_args(&fixture, &input, &out, &[]);
        assert_success(&regnet_with_umask(umask, &strs(&args)));
        assert_eq!(mode(Path::new(&out)), expected, "umask {umask}");
    }
    let existing = scratch.path("existing.safetensors");
    std::fs::write(&existing, b"old").unwrap();
    std::fs::set_permissions(&existing, std::fs::Permissions::from_mode(0o640)).unwrap();
    let args = run_args(&fixture, &input, existing.to_str().unwrap(), &[]);
    assert_success(&regnet_with_umask("077", &strs(&args)));
    assert_eq!(mode(&existing), 0o640);
    assert_eq!(logits_shape(&std::fs::read(&existing).unwrap()), [2, 1000]);
}

#[test]
fn plot_and_sample_outputs_follow_the_umask() {
    let scratch = Scratch::new("mode-plot");
    let svg = scratch.path("widths.svg");
    assert_success(&regnet_with_umask(
        "027",
        &["plot", "-o", svg.to_str().unwrap()],
    ));
    assert_eq!(mode(&svg), 0o640);
    let samples = scratch.path("samples");
    assert_success(&regnet_with_umask(
        "027",
        &[
            "sample",
            "regnetx",
            "--count",
            "1",
            "-o",
            samples.to_str().unwrap(),
        ],
    ));
    for name in ["sample_0000.yaml", "samples.csv", "samples.json"] {
        assert_eq!(mode(&samples.join(name)), 0o640, "{name}");
    }
}

/// Writes a batch of `batch` zero images as `input` (F32, [batch, 3, 224, 224]).
fn write_zero_batch(path: &Path, batch: usize) {
    let bytes = vec![0u8; batch * 3 * 224 * 224 * 4];
    let view = TensorView::new(Dtype::F32, vec![batch, 3, 224, 224], &bytes).unwrap();
    safetensors::serialize_to_file([("input", view)], None, path).unwrap();
}

fn signal(pid: u32, name: &str) {
    let sent = Command::new("kill")
        .args([&format!("-{name}"), &pid.to_string()])
        .status()
        .expect("kill runs");
    assert!(sent.success(), "kill -{name} {pid}");
}

#[test]
fn an_interrupted_run_leaves_no_temporary_file() {
    let Some(fixture) = fixture() else { return };
    let scratch = Scratch::new("interrupt");
    let input = scratch.path("batch.safetensors");
    // With --features, 48 images make about 110 MB of output: its write takes a while.
    write_zero_batch(&input, 48);
    let out = scratch.path("out");
    std::fs::create_dir(&out).unwrap();
    let output = out.join("features.safetensors");
    let args = run_args(
        &fixture,
        input.to_str().unwrap(),
        output.to_str().unwrap(),
        &["--features"],
    );
    let mut child = Command::new(REGNET)
        .args(&args)
        .stderr(Stdio::piped())
        .spawn()
        .expect("the regnet binary runs");
    let pid = child.id();
    let listing = || -> Vec<String> {
        std::fs::read_dir(&out)
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .collect()
    };
    // Caught while the output is being written: stopped, so the temporary file stays put.
    let start = Instant::now();
    let caught = loop {
        if listing().iter().any(|name| name.starts_with('.')) {
            signal(pid, "STOP");
            break listing().iter().any(|name| name.starts_with('.'));
        }
        if child.try_wait().unwrap().is_some() || start.elapsed() > Duration::from_secs(120) {
            break false;
        }
        std::thread::sleep(Duration::from_millis(1));
    };
    if !caught {
        let _ = child.kill();
        let status = child.wait().unwrap();
        panic!("no temporary file was seen while the output was written ({status:?})");
    }
    signal(pid, "INT");
    signal(pid, "CONT");
    let output = finish_within(child, Duration::from_secs(30), "the interrupted run");
    assert_eq!(output.status.signal(), Some(2), "{}", stderr(&output));
    let left: Vec<String> = listing();
    assert!(left.iter().all(|name| !name.starts_with('.')), "{left:?}");
    // Almost always absent; complete if the signal came just as the file was renamed.
    if left.contains(&"features.safetensors".to_owned()) {
        let bytes = std::fs::read(out.join("features.safetensors")).unwrap();
        assert_eq!(logits_shape(&bytes), [48, 1000]);
    }
}

#[test]
fn outputs_that_are_directories_are_refused_naming_them() {
    let scratch = Scratch::new("directory");
    let dir = scratch.path("widths.svg");
    std::fs::create_dir(&dir).unwrap();
    let dir = dir.to_str().unwrap();
    let expected =
        format!("error: cannot write {dir}: it is a directory; give the path of a file to write");
    assert_refused(&regnet(&["plot", "-o", dir]), &expected);
    let plain = scratch.0.to_str().unwrap();
    assert_refused(
        &regnet(&["plot", "-o", plain]),
        &format!(
            "error: cannot write {plain}: it is a directory; give the path of a file to write"
        ),
    );
    // Refused before the weights are read and the batch runs.
    let run = regnet(&[
        "run",
        "regnetx_200mf",
        "--weights",
        "unread.safetensors",
        "--input",
        "unread.safetensors",
        "--output",
        dir,
    ]);
    assert_refused(&run, &expected);
    let file = scratch.file("samples");
    std::fs::write(&file, b"").unwrap();
    assert_refused(
        &regnet(&["sample", "regnetx", "--count", "1", "-o", &file]),
        &format!(
            "error: cannot create {file}: it is a file; -o names the directory for the samples' \
             files"
        ),
    );
    let missing = scratch.file("no/such/dir/out.safetensors");
    let run = regnet(&[
        "run",
        "regnetx_200mf",
        "--weights",
        "unread.safetensors",
        "--input",
        "unread.safetensors",
        "--output",
        &missing,
    ]);
    assert_refused(
        &run,
        &format!(
            "error: cannot write {missing}: the directory {} does not exist",
            scratch.file("no/such/dir")
        ),
    );
}

/// `regnet run` on the fixture's weights with `input` as `--input`.
fn run_input(fixture: &Path, input: &str, output: &str) -> Output {
    let args = run_args(fixture, input, output, &[]);
    regnet_within(&strs(&args), Duration::from_secs(30))
}

#[test]
fn run_refuses_inputs_that_are_not_regular_files_without_hanging() {
    let Some(fixture) = fixture() else { return };
    let scratch = Scratch::new("inputs");
    let out = scratch.file("out.safetensors");
    assert_refused(
        &run_input(&fixture, "/dev/zero", &out),
        "error: cannot read /dev/zero: it is a character device, not a regular file",
    );
    let fifo = scratch.path("input.safetensors");
    if !mkfifo(&fifo) {
        return;
    }
    let fifo = fifo.to_str().unwrap();
    assert_refused(
        &run_input(&fixture, fifo, &out),
        &format!("error: cannot read {fifo}: it is a FIFO (named pipe), not a regular file"),
    );
}

#[test]
fn run_refuses_an_input_over_4_gib_before_reading_it() {
    let Some(fixture) = fixture() else { return };
    let scratch = Scratch::new("huge-input");
    let huge = scratch.path("huge.safetensors");
    // Sparse: no disk space is used.
    std::fs::File::create(&huge)
        .unwrap()
        .set_len((4 << 30) + 1)
        .unwrap();
    let huge = huge.to_str().unwrap();
    assert_refused(
        &run_input(&fixture, huge, &scratch.file("out.safetensors")),
        &format!(
            "error: cannot read {huge}: it is 4294967297 bytes; an input batch is at most \
             4294967296 bytes"
        ),
    );
}

#[test]
fn sample_refuses_a_count_or_attempts_above_the_maximum() {
    let count = regnet_within(
        &["sample", "regnetx", "--count", "1000000000"],
        Duration::from_secs(30),
    );
    assert_refused(
        &count,
        "error: invalid value '1000000000' for '--count <COUNT>': 1000000000 is not in 1..=100000",
    );
    assert_refused(
        &regnet(&["sample", "regnetx", "--count", "0"]),
        "error: invalid value '0' for '--count <COUNT>': 0 is not in 1..=100000",
    );
    assert_refused(
        &regnet(&["sample", "regnetx", "--attempts", "10000001"]),
        "error: invalid value '10000001' for '--attempts <ATTEMPTS>': 10000001 is not in \
         1..=10000000",
    );
}

#[test]
fn sample_prints_each_row_as_it_is_kept() {
    let mut child = Command::new(REGNET)
        .args(["sample", "regnetx", "--count", "100000"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the regnet binary runs");
    let stdout = child.stdout.take().unwrap();
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let lines: Vec<String> = BufReader::new(stdout)
            .lines()
            .take(3)
            .map(Result::unwrap)
            .collect();
        let _ = sender.send(lines);
    });
    // All 100,000 take minutes; the first rows come at once.
    let lines = receiver.recv_timeout(Duration::from_secs(20));
    let _ = child.kill();
    let _ = child.wait();
    let lines = lines.expect("the first rows are printed while sampling goes on");
    assert!(lines[0].starts_with("name "), "{lines:?}");
    assert!(lines[1].starts_with("sample_0000 "), "{lines:?}");
    assert!(lines[2].starts_with("sample_0001 "), "{lines:?}");
}

#[test]
fn threads_0_or_above_256_are_refused_by_every_command() {
    let commands: [&[&str]; 4] = [
        &["demo", "regnetx_200mf"],
        &["bench", "regnetx_200mf"],
        &[
            "run",
            "regnetx_200mf",
            "--weights",
            "w.safetensors",
            "--input",
            "i.safetensors",
            "--output",
            "o.safetensors",
        ],
        &[
            "classify",
            "regnetx_200mf",
            "--weights",
            "w.safetensors",
            "x.jpg",
        ],
    ];
    for command in commands {
        for threads in ["0", "257", "10000"] {
            let output = regnet(&[command, &["--threads", threads]].concat());
            assert_refused(
                &output,
                &format!(
                    "error: invalid value '{threads}' for '--threads <N>': {threads} is not in \
                     1..=256"
                ),
            );
        }
    }
}

#[test]
fn more_threads_than_cores_are_used_with_a_warning() {
    let cores = std::thread::available_parallelism().unwrap().get();
    if cores >= 256 {
        skip("this machine has 256 cores or more");
        return;
    }
    let threads = (cores + 1).to_string();
    let output = regnet(&[
        "bench",
        "regnetx_200mf",
        "--iters",
        "1",
        "--json",
        "--threads",
        &threads,
    ]);
    assert_success(&output);
    assert_eq!(
        stderr(&output).lines().next(),
        Some(
            format!(
                "warning: --threads {threads} is more than the {cores} cores available; the \
                 threads will take turns on them"
            )
            .as_str()
        )
    );
    let result: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(result["threads"].to_string(), threads);
}
