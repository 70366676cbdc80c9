//! `regnet classify` as a user runs it, on the committed images (`tests/images`) and the shared
//! regnet_y_400mf checkpoint: the printed top-5 and probabilities equal the softmax of `regnet
//! run`'s logits on torchvision's own preprocessing of the same (lossless) images; bad images
//! are reported and skipped. (The fixture's random weights give every image nearly the same
//! ranking, so the probabilities, which differ by ~1e-5 between images, are what tell the
//! images apart.)

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

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
    let logits: Vec<f32> = tensors
        .tensor("logits")
        .unwrap()
        .data()
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
        .collect();
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
