//! `regnet classify` as a user runs it, on the committed images (`tests/images`) and the shared
//! regnet_y_400mf checkpoint: the printed top-5 and probabilities equal the softmax of `regnet
//! run`'s logits on torchvision's own preprocessing of the same (lossless) images; bad images
//! are reported and skipped. (The fixture's random weights give every image nearly the same
//! ranking, so the probabilities, which differ by ~1e-5 between images, are what tell the
//! images apart.)

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use regnet::runtime::weights::decode_f32;
use safetensors::{Dtype, SafeTensors, tensor::TensorView};
use serde_json::Value;

fn regnet(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_regnet"))
        .args(args)
        .output()
        .expect("the regnet binary runs")
}

fn images() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/images")
}

fn weights() -> Option<PathBuf> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/fixtures/regnet_y_400mf/model.safetensors");
    if path.is_file() {
        Some(path)
    } else {
        eprintln!(
            "SKIPPED: {} not found (the shared fixtures)",
            path.display()
        );
        None
    }
}

/// A scratch directory removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Self {
        let dir =
            std::env::temp_dir().join(format!("regnet-classify-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Each image's top-5 (index, softmax probability) from `regnet run` on torchvision's
/// preprocessing.
fn reference_top5(weights: &Path, names: &[&str], scratch: &Scratch) -> Vec<Vec<(u64, f64)>> {
    let bytes = std::fs::read(images().join("expected.safetensors")).unwrap();
    let expected = SafeTensors::deserialize(&bytes).unwrap();
    let batch: Vec<u8> = names
        .iter()
        .flat_map(|name| expected.tensor(name).unwrap().data().to_vec())
        .collect();
    let input = scratch.0.join("input.safetensors");
    let view = TensorView::new(Dtype::F32, vec![names.len(), 3, 224, 224], &batch).unwrap();
    safetensors::serialize_to_file([("input".to_owned(), view)], None, &input).unwrap();
    let output = scratch.0.join("logits.safetensors");
    let run = regnet(&[
        "run",
        "regnety_400mf",
        "--weights",
        weights.to_str().unwrap(),
        "--input",
        input.to_str().unwrap(),
        "--output",
        output.to_str().unwrap(),
    ]);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let bytes = std::fs::read(&output).unwrap();
    let tensors = SafeTensors::deserialize(&bytes).unwrap();
    let view = tensors.tensor("logits").unwrap();
    let logits = decode_f32(view.dtype(), view.data()).unwrap();
    logits
        .chunks_exact(1000)
        .map(|row| {
            let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let total: f64 = row.iter().map(|&l| f64::from(l - max).exp()).sum();
            let mut order: Vec<u64> = (0..1000).collect();
            order.sort_by(|&a, &b| row[b as usize].total_cmp(&row[a as usize]));
            order
                .into_iter()
                .take(5)
                .map(|i| (i, f64::from(row[i as usize] - max).exp() / total))
                .collect()
        })
        .collect()
}

#[test]
fn classify_agrees_with_torchvision_preprocessing_and_reports_bad_images() {
    let Some(weights) = weights() else { return };
    let scratch = Scratch::new("dir");
    let lossless = [
        "gray.png",
        "landscape.png",
        "portrait_upscaled.png",
        "square.webp",
    ];
    for name in lossless.iter().chain(&["photo.jpg"]) {
        std::fs::copy(images().join(name), scratch.0.join(name)).unwrap();
    }
    std::fs::write(scratch.0.join("broken.png"), b"not an image").unwrap();
    let output = regnet(&[
        "classify",
        "regnety_400mf",
        "--weights",
        weights.to_str().unwrap(),
        scratch.0.to_str().unwrap(),
        "--jsonl",
        "--batch",
        "2",
    ]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("broken.png"), "{stderr}");
    assert!(
        stderr.contains("1 of 6 images could not be classified"),
        "{stderr}"
    );
    let lines: Vec<Value> = String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(lines.len(), 5, "every readable image, one line each");
    let top5 = |line: &Value| -> Vec<(u64, f64)> {
        line["top"]
            .as_array()
            .unwrap()
            .iter()
            .map(|g| {
                (
                    g["index"].as_u64().unwrap(),
                    g["probability"].as_f64().unwrap(),
                )
            })
            .collect()
    };
    let reference = reference_top5(&weights, &lossless, &Scratch::new("run"));
    for (name, want) in lossless.iter().zip(&reference) {
        let line = lines
            .iter()
            .find(|l| l["path"].as_str().unwrap().ends_with(name))
            .unwrap();
        let got = top5(line);
        for ((index, probability), (want_index, want_probability)) in got.iter().zip(want) {
            assert_eq!(index, want_index, "{name}");
            assert!(
                (probability - want_probability).abs() <= 1e-9,
                "{name}: {got:?} {want:?}"
            );
        }
        let probabilities: Vec<f64> = line["top"]
            .as_array()
            .unwrap()
            .iter()
            .map(|g| g["probability"].as_f64().unwrap())
            .collect();
        assert!(
            probabilities.windows(2).all(|w| w[0] >= w[1]),
            "{probabilities:?}"
        );
        assert!(probabilities.iter().sum::<f64>() <= 1.0 + 1e-9);
        assert!(
            line["top"][0]["class"]
                .as_str()
                .is_some_and(|c| !c.is_empty())
        );
    }
}

#[test]
fn classify_prints_a_table_and_needs_images() {
    let Some(weights) = weights() else { return };
    let image = images().join("landscape.png");
    let output = regnet(&[
        "classify",
        "regnety_400mf",
        "--weights",
        weights.to_str().unwrap(),
        image.to_str().unwrap(),
        "--top",
        "3",
    ]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8(output.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 4, "{text}");
    assert!(lines[0].ends_with("landscape.png"));
    assert!(
        lines[1].trim_start().starts_with("1. ") && lines[1].contains('%'),
        "{text}"
    );
    let missing = regnet(&[
        "classify",
        "regnety_400mf",
        "--weights",
        weights.to_str().unwrap(),
    ]);
    assert_eq!(missing.status.code(), Some(2));
}

/// A directory without images used to "succeed" silently with nothing printed.
#[test]
fn a_directory_without_images_is_an_error() {
    let scratch = Scratch::new("no-images");
    std::fs::write(scratch.0.join("notes.txt"), "not an image").unwrap();
    // No checkpoint is read: the inputs are checked first.
    let output = regnet(&[
        "classify",
        "regnety_400mf",
        "--weights",
        "unused.safetensors",
        scratch.0.to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("no images (jpg, jpeg, png, webp, jfif)"),
        "{stderr}"
    );
}

/// `regnet classify` with the checkpoint, `args` after the model and weights, failing the test
/// if it runs longer than a minute (a FIFO used to block it forever).
fn classify_within_a_minute(weights: &Path, args: &[&OsStr]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_regnet"))
        .args(["classify", "regnety_400mf", "--weights"])
        .arg(weights)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the regnet binary runs");
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > Duration::from_secs(60) {
            child.kill().unwrap();
            panic!("classify {args:?} still runs after a minute");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}

fn jsonl_paths(output: &Output) -> Vec<String> {
    String::from_utf8(output.stdout.clone())
        .unwrap()
        .lines()
        .map(|line| {
            let line: Value = serde_json::from_str(line).unwrap();
            line["path"].as_str().unwrap().to_owned()
        })
        .collect()
}

/// A truncated JPEG was classified (zune-jpeg paints the missing part gray), and a truncated
/// lossless WebP too; torchvision refuses both. A decompression bomb's error gave no size.
#[test]
fn damaged_images_are_reported_and_skipped() {
    let Some(weights) = weights() else { return };
    let scratch = Scratch::new("damaged");
    let photo = std::fs::read(images().join("photo.jpg")).unwrap();
    std::fs::write(scratch.0.join("half.jpg"), &photo[..photo.len() / 2]).unwrap();
    std::fs::write(scratch.0.join("no_end.jpg"), &photo[..photo.len() - 2]).unwrap();
    let webp = std::fs::read(images().join("square.webp")).unwrap();
    std::fs::write(scratch.0.join("short.webp"), &webp[..webp.len() - 1]).unwrap();
    let mut bomb = photo.clone();
    let frame = bomb.windows(2).position(|w| w == [0xFF, 0xC0]).unwrap();
    bomb[frame + 5..frame + 9].copy_from_slice(&[0xFF; 4]);
    std::fs::write(scratch.0.join("bomb.jpg"), &bomb).unwrap();
    std::fs::copy(images().join("photo.jpg"), scratch.0.join("whole.jpg")).unwrap();
    let output = classify_within_a_minute(&weights, &[scratch.0.as_os_str(), "--jsonl".as_ref()]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    let paths = jsonl_paths(&output);
    assert!(
        paths.len() == 1 && paths[0].ends_with("whole.jpg"),
        "{paths:?}"
    );
    for line in [
        "half.jpg: the JPEG data end before their end-of-image marker: the file is truncated",
        "no_end.jpg: the JPEG data end before their end-of-image marker: the file is truncated",
        "short.webp: the WebP data are 206487 bytes; their header says 206488: the file is \
         truncated",
        "bomb.jpg: the image is 65535×65535 pixels, which take 12288 MiB decoded, more than the \
         512 MiB allowed; scale it down first; skipped",
        "error: 4 of 5 images could not be classified",
    ] {
        assert!(stderr.contains(line), "{line}\n{stderr}");
    }
}

/// A FIFO in a walked directory, or named, blocked `classify` forever in its read.
#[cfg(unix)]
#[test]
fn a_fifo_is_reported_and_skipped_instead_of_hanging() {
    let Some(weights) = weights() else { return };
    let scratch = Scratch::new("fifo");
    let fifo = scratch.0.join("pipe.jpg");
    let made = Command::new("mkfifo").arg(&fifo).status();
    if !made.is_ok_and(|status| status.success()) {
        eprintln!("SKIPPED: mkfifo is not available");
        return;
    }
    std::fs::copy(
        images().join("landscape.png"),
        scratch.0.join("landscape.png"),
    )
    .unwrap();
    for input in [&scratch.0, &fifo] {
        let output = classify_within_a_minute(&weights, &[input.as_os_str()]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{stderr}");
        assert!(
            stderr.contains("pipe.jpg: it is a FIFO (named pipe), not a regular file; skipped"),
            "{stderr}"
        );
    }
}

/// A link back up the tree (`b/up -> ..`) made the walk report the one image 41 times.
#[cfg(unix)]
#[test]
fn links_to_directories_are_not_followed() {
    let Some(weights) = weights() else { return };
    let scratch = Scratch::new("links");
    let inner = scratch.0.join("b");
    std::fs::create_dir(&inner).unwrap();
    std::fs::copy(
        images().join("landscape.png"),
        scratch.0.join("landscape.png"),
    )
    .unwrap();
    std::os::unix::fs::symlink("..", inner.join("up")).unwrap();
    // A link to a file is followed.
    std::os::unix::fs::symlink("../landscape.png", inner.join("linked.png")).unwrap();
    let output = classify_within_a_minute(&weights, &[scratch.0.as_os_str(), "--jsonl".as_ref()]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let paths = jsonl_paths(&output);
    assert_eq!(paths.len(), 2, "{paths:?}");
    assert!(paths[0].ends_with("b/linked.png") && paths[1].ends_with("landscape.png"));
    assert!(
        stderr.contains("b/up: a symbolic link to a directory, not followed"),
        "{stderr}"
    );
}

/// `--batch 1000` on one image made a workspace for 1,000 images (7.4 GB); here the address
/// space is limited to 2 GiB, which one image's workspace fits with room to spare.
#[cfg(unix)]
#[test]
fn the_workspace_holds_no_more_images_than_there_are() {
    let Some(weights) = weights() else { return };
    let output = Command::new("sh")
        .arg("-c")
        .arg(r#"ulimit -v 2097152 && exec "$0" "$@""#)
        .arg(env!("CARGO_BIN_EXE_regnet"))
        .args([
            "classify",
            "regnety_400mf",
            "--threads",
            "1",
            "--batch",
            "1000",
        ])
        .arg("--weights")
        .arg(&weights)
        .arg(images().join("landscape.png"))
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// File names were printed raw (escape codes reached the terminal) or lossily (two names could
/// print the same).
#[cfg(unix)]
#[test]
fn file_names_are_printed_escaped() {
    use std::os::unix::ffi::OsStrExt;

    let Some(weights) = weights() else { return };
    let scratch = Scratch::new("names");
    let painted = scratch.0.join("\x1b[31mred\n.png");
    let latin1 = scratch.0.join(OsStr::from_bytes(b"caf\xe9\\.png"));
    std::fs::copy(images().join("landscape.png"), &painted).unwrap();
    std::fs::copy(images().join("landscape.png"), &latin1).unwrap();
    std::fs::write(scratch.0.join("\x1b[2Jbroken.png"), b"not an image").unwrap();
    let table = classify_within_a_minute(&weights, &[scratch.0.as_os_str()]);
    let jsonl = classify_within_a_minute(&weights, &[scratch.0.as_os_str(), "--jsonl".as_ref()]);
    let stdout = String::from_utf8(table.stdout.clone()).unwrap();
    let stderr = String::from_utf8(table.stderr.clone()).unwrap();
    assert_eq!(table.status.code(), Some(1), "{stderr}");
    assert!(
        !stdout.contains('\x1b') && !stderr.contains('\x1b'),
        "{stdout}{stderr}"
    );
    let names: Vec<&str> = stdout
        .lines()
        .filter(|line| !line.starts_with(' '))
        .map(|line| line.rsplit('/').next().unwrap())
        .collect();
    assert_eq!(
        names,
        [r"\u{1b}[31mred\n.png", r"caf\xe9\\.png"],
        "{stdout}"
    );
    assert!(stderr.contains(r"/\u{1b}[2Jbroken.png: "), "{stderr}");
    let paths = jsonl_paths(&jsonl);
    let names: Vec<&str> = paths
        .iter()
        .map(|p| p.rsplit('/').next().unwrap())
        .collect();
    assert_eq!(names, [r"\u{1b}[31mred\n.png", r"caf\xe9\\.png"]);
}
