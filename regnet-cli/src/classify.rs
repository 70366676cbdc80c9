//! `regnet classify`: image files in, the top-k ImageNet classes out.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use indicatif::{ProgressBar, ProgressStyle};
use regnet::runtime::{Network, Workspace};
use serde::Serialize;

use crate::execute::{model, options, place};
use crate::{DeviceChoice, preprocess};

/// The 1000 ImageNet class names in index order (torchvision's list).
const IMAGENET_CLASSES: &str = include_str!("imagenet_classes.txt");

/// File extensions taken from a directory (files named on the command line are always tried).
const EXTENSIONS: [&str; 5] = ["jpg", "jpeg", "png", "webp", "jfif"];

pub struct Classify<'a> {
    pub model: &'a str,
    pub weights: &'a Path,
    pub inputs: &'a [PathBuf],
    pub top: usize,
    pub batch: usize,
    pub bgr: bool,
    pub jsonl: bool,
    pub threads: Option<usize>,
    pub device: (DeviceChoice, bool),
}

/// How many images were classified, and how many could not be read.
pub struct Outcome {
    pub classified: usize,
    pub failed: usize,
}

#[derive(Serialize)]
struct Guess<'a> {
    index: usize,
    class: &'a str,
    probability: f64,
}

#[derive(Serialize)]
struct Line<'a> {
    path: String,
    top: Vec<Guess<'a>>,
}

/// Every file to classify: files as given, directories walked recursively (sorted, images by
/// extension). Also says whether a directory was given (which gets a progress bar).
fn files(inputs: &[PathBuf]) -> (Vec<PathBuf>, bool) {
    fn walk(dir: &Path, found: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            // Reported when the directory itself is "classified" below.
            found.push(dir.to_owned());
            return;
        };
        let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
        paths.sort();
        for path in paths {
            if path.is_dir() {
                walk(&path, found);
            } else if path
                .extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
            {
                found.push(path);
            }
        }
    }
    let mut found = Vec::new();
    let mut any_directory = false;
    for input in inputs {
        if input.is_dir() {
            any_directory = true;
            walk(input, &mut found);
        } else {
            found.push(input.clone());
        }
    }
    (found, any_directory)
}

/// Probabilities (softmax, in f64) of the `top` largest logits, best first.
fn top_k(logits: &[f32], top: usize) -> Vec<(usize, f64)> {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let exps: Vec<f64> = logits.iter().map(|&l| f64::from(l - max).exp()).collect();
    let total: f64 = exps.iter().sum();
    let mut order: Vec<usize> = (0..logits.len()).collect();
    order.sort_by(|&a, &b| logits[b].total_cmp(&logits[a]).then(a.cmp(&b)));
    order
        .into_iter()
        .take(top)
        .map(|i| (i, exps[i] / total))
        .collect()
}

pub fn classify(out: &mut impl Write, args: &Classify<'_>) -> io::Result<Result<Outcome, String>> {
    let (paths, any_directory) = files(args.inputs);
    // Said before the weights load: an empty directory is a mistake, not a successful run.
    if paths.is_empty() {
        return Ok(Err(format!(
            "no images ({}) in the directories given",
            EXTENSIONS.join(", ")
        )));
    }
    match prepare(args) {
        Ok((network, mut workspace)) => {
            run(out, args, &paths, any_directory, &network, &mut workspace).map(Ok)
        }
        Err(message) => Ok(Err(message)),
    }
}

fn prepare(args: &Classify<'_>) -> Result<(Network, Workspace), String> {
    if args.batch == 0 || args.top == 0 {
        return Err("--batch and --top must be at least 1".into());
    }
    let model = model(args.model)?;
    let architecture = model.architecture;
    let network = Network::load(architecture, args.weights, model.compat_alternative)
        .map_err(|e| e.to_string())?;
    let network = place(network, args.device)?;
    let workspace = Workspace::with_options(
        &architecture,
        args.batch,
        options(args.threads, None, false),
    )
    .map_err(|e| e.to_string())?;
    Ok((network, workspace))
}

fn run(
    out: &mut impl Write,
    args: &Classify<'_>,
    paths: &[PathBuf],
    any_directory: bool,
    network: &Network,
    workspace: &mut Workspace,
) -> io::Result<Outcome> {
    let architecture = network.architecture();
    let (size, classes) = (architecture.resolution, architecture.num_classes);
    let names: Vec<&str> = IMAGENET_CLASSES.lines().collect();
    let name = |index: usize| {
        if classes == names.len() {
            names[index]
        } else {
            "(not an ImageNet class)"
        }
    };
    let bar = if any_directory {
        let bar = ProgressBar::new(paths.len() as u64);
        if let Ok(style) = ProgressStyle::with_template("{bar:40} {pos}/{len} images, {eta} left") {
            bar.set_style(style);
        }
        bar
    } else {
        ProgressBar::hidden()
    };
    let mut outcome = Outcome {
        classified: 0,
        failed: 0,
    };
    for chunk in paths.chunks(args.batch) {
        let mut batch = Vec::with_capacity(chunk.len() * 3 * size * size);
        let mut read = Vec::with_capacity(chunk.len());
        for path in chunk {
            match preprocess::read(path) {
                Ok(image) => {
                    batch.extend(preprocess::preprocess(&image, size, args.bgr));
                    read.push(path);
                }
                Err(reason) => {
                    outcome.failed += 1;
                    bar.suspend(|| eprintln!("error: {}: {reason}; skipped", path.display()));
                }
            }
            bar.inc(1);
        }
        if read.is_empty() {
            continue;
        }
        let logits = match network.forward(&batch, workspace) {
            Ok(logits) => logits,
            Err(reason) => {
                outcome.failed += read.len();
                bar.suspend(|| eprintln!("error: the batch failed: {reason}"));
                continue;
            }
        };
        for (path, logits) in read.iter().zip(logits.chunks_exact(classes)) {
            let top = top_k(logits, args.top);
            bar.suspend(|| -> io::Result<()> {
                if args.jsonl {
                    let line = Line {
                        path: path.display().to_string(),
                        top: top
                            .iter()
                            .map(|&(index, probability)| Guess {
                                index,
                                class: name(index),
                                probability,
                            })
                            .collect(),
                    };
                    serde_json::to_writer(&mut *out, &line).map_err(io::Error::from)?;
                    writeln!(out)
                } else {
                    writeln!(out, "{}", path.display())?;
                    for (rank, (index, probability)) in top.iter().enumerate() {
                        writeln!(
                            out,
                            "  {:>2}. {:>6.2}%  {} ({index})",
                            rank + 1,
                            probability * 100.0,
                            name(*index)
                        )?;
                    }
                    Ok(())
                }
            })?;
            outcome.classified += 1;
        }
    }
    bar.finish_and_clear();
    Ok(outcome)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn there_are_1000_class_names() {
        let names: Vec<&str> = IMAGENET_CLASSES.lines().collect();
        assert_eq!(names.len(), 1000);
        assert_eq!(names[0], "tench");
        assert_eq!(names[999], "toilet tissue");
    }

    #[test]
    fn top_k_is_sorted_softmax() {
        let top = top_k(&[1.0, 3.0, 2.0, 3.0], 3);
        let indices: Vec<usize> = top.iter().map(|t| t.0).collect();
        assert_eq!(indices, [1, 3, 2], "ties keep index order");
        let e = [1f64.exp(), 3f64.exp(), 2f64.exp(), 3f64.exp()];
        let total: f64 = e.iter().sum();
        assert!((top[0].1 - e[1] / total).abs() < 1e-12);
        assert!((top[2].1 - e[2] / total).abs() < 1e-12);
    }
}
