//! `regnet classify`: image files in, the top-k ImageNet classes out.

use std::fs::FileType;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use indicatif::{ProgressBar, ProgressStyle};
use regnet::runtime::{Network, Workspace};
use serde::Serialize;

use crate::execute::{device, network, options};
use crate::zoo::Chosen;
use regnet::runtime::images;

use crate::DeviceChoice;

/// The 1000 ImageNet class names in index order (torchvision's list).
pub const IMAGENET_CLASSES: &str = include_str!("imagenet_classes.txt");

/// File extensions taken from a directory (files named on the command line are always tried).
const EXTENSIONS: [&str; 5] = ["jpg", "jpeg", "png", "webp", "jfif"];

pub struct Classify<'a> {
    pub model: &'a Chosen,
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
///
/// Inside a walked directory, a symbolic link to a file is followed but one to a directory is
/// not, and is noted on stderr: a link back up the tree made the walk report every image many
/// times over. A directory named on the command line is walked even when it is a link.
fn files(inputs: &[PathBuf]) -> (Vec<PathBuf>, bool) {
    fn walk(dir: &Path, found: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            // Reported when the directory itself is "classified" below.
            found.push(dir.to_owned());
            return;
        };
        let mut entries: Vec<(PathBuf, Option<FileType>)> = entries
            .filter_map(|entry| entry.ok().map(|e| (e.path(), e.file_type().ok())))
            .collect();
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        for (path, kind) in entries {
            // The entry's own type: a link is a link here, not what it points to.
            if kind.is_some_and(|kind| kind.is_dir()) {
                walk(&path, found);
            } else if kind.is_some_and(|kind| kind.is_symlink()) && path.is_dir() {
                crate::report(&format!(
                    "note: {}: a symbolic link to a directory, not followed (name it on the \
                     command line to classify what is in it)",
                    shown(&path)
                ));
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

/// `path` as printed, in the table, the errors and the JSON lines alike: control characters
/// (terminal escape codes among them) and the invisible ones that reorder text escaped as Rust
/// escapes them (`\n`, `\u{1b}`), bytes that are not UTF-8 as `\xNN`, and a backslash that is not
/// the path separator doubled, so that no file name can write to the terminal or pass for
/// another.
fn shown(path: &Path) -> String {
    let mut shown = String::new();
    for chunk in path.as_os_str().as_encoded_bytes().utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '\\' if std::path::MAIN_SEPARATOR != '\\' => shown.push_str("\\\\"),
                '\u{061c}'
                | '\u{200e}'
                | '\u{200f}'
                | '\u{202a}'..='\u{202e}'
                | '\u{2066}'..='\u{2069}' => {
                    shown.extend(c.escape_unicode());
                }
                c if c.is_control() => shown.extend(c.escape_debug()),
                c => shown.push(c),
            }
        }
        for byte in chunk.invalid() {
            shown.push_str(&format!("\\x{byte:02x}"));
        }
    }
    shown
}

/// Probabilities (softmax, in f64) of the `top` largest logits, best first.
fn top_k(logits: &[f32], top: usize) -> Vec<(usize, f64)> {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let exps: Vec<f64> = logits.iter().map(|&l| f64::from(l - max).exp()).collect();
    let total: f64 = exps.iter().sum();
    regnet::runtime::top_classes(logits, top)
        .into_iter()
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
    match prepare(args, paths.len()) {
        Ok((network, mut workspace)) => {
            run(out, args, &paths, any_directory, &network, &mut workspace).map(Ok)
        }
        Err(message) => Ok(Err(message)),
    }
}

/// The network and a workspace for as many images at once as a batch will hold: `--batch`, or
/// fewer when there are fewer images (a workspace takes megabytes per image).
fn prepare(args: &Classify<'_>, images: usize) -> Result<(Network, Workspace), String> {
    if args.batch == 0 || args.top == 0 {
        return Err("--batch and --top must be at least 1".into());
    }
    let model = args.model;
    let architecture = model.architecture;
    let device = device(args.device)?;
    let network = network(model, Some(args.weights), device)?;
    let workspace = Workspace::with_options(
        &architecture,
        args.batch.min(images),
        options(args.threads, None, false, device),
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
            match images::read(path) {
                Ok(image) => {
                    batch.extend(images::preprocess(&image, size, args.bgr));
                    read.push(path);
                }
                Err(error) => {
                    // The line names the path already.
                    let reason = match error {
                        images::ImageError::Read { source, .. } => source.to_string(),
                        error => error.to_string(),
                    };
                    outcome.failed += 1;
                    bar.suspend(|| {
                        crate::report(&format!("error: {}: {reason}; skipped", shown(path)));
                    });
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
                bar.suspend(|| crate::report(&format!("error: the batch failed: {reason}")));
                continue;
            }
        };
        for (path, logits) in read.iter().zip(logits.chunks_exact(classes)) {
            let top = top_k(logits, args.top);
            bar.suspend(|| -> io::Result<()> {
                if args.jsonl {
                    let line = Line {
                        path: shown(path),
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
                    writeln!(out, "{}", shown(path))?;
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
    fn shown_escapes_names_that_could_drive_the_terminal_or_mislead() {
        assert_eq!(shown(Path::new("dir/a photo.jpg")), "dir/a photo.jpg");
        assert_eq!(
            shown(Path::new("a\u{1b}[31m\tb\n\u{9b}2J.png")),
            r"a\u{1b}[31m\tb\n\u{9b}2J.png"
        );
        // A right-to-left override would make this name look like "evilexe.png".
        assert_eq!(
            shown(Path::new("evil\u{202e}gnp.exe")),
            r"evil\u{202e}gnp.exe"
        );
        // A literal backslash cannot pass for an escape.
        #[cfg(unix)]
        assert_eq!(shown(Path::new(r"a\x1b.png")), r"a\\x1b.png");
        // Accents, precomposed or combining, are printed as they are.
        assert_eq!(
            shown(Path::new("café cafe\u{301}.png")),
            "café cafe\u{301}.png"
        );
    }

    #[cfg(unix)]
    #[test]
    fn shown_writes_bytes_that_are_not_utf8_as_hex() {
        use std::os::unix::ffi::OsStrExt;
        let name = std::ffi::OsStr::from_bytes(b"caf\xe9 \xff\xfe.png");
        assert_eq!(shown(Path::new(name)), r"caf\xe9 \xff\xfe.png");
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
