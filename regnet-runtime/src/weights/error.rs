//! Why a checkpoint could not be loaded, worded so the reader knows what to do next.

use std::fmt::Write as _;
use std::path::Path;

use super::Scheme;

/// A checkpoint that cannot become [`super::NetworkWeights`] for the requested network.
///
/// Paths are `Box<Path>` rather than `PathBuf` to keep the error under the 128 bytes at which
/// Clippy's `result_large_err` would flag every function that returns it.
#[derive(thiserror::Error, Debug)]
#[non_exhaustive]
pub enum LoadError {
    /// The weights were read but the device could not take them (`Network::load_on`).
    #[error(transparent)]
    Device(#[from] crate::device::DeviceError),
    /// The architecture fails its own consistency checks, so no checkpoint can fit it.
    #[error("the network's architecture is inconsistent ({reason}); build it from a spec")]
    InvalidArchitecture {
        /// What `Architecture::validate` found wrong.
        reason: String,
    },

    /// The file could not be opened or read.
    #[error("cannot read {}: {source}", .path.display())]
    Io {
        /// The checkpoint's path.
        path: Box<Path>,
        /// The operating system's error.
        source: std::io::Error,
    },

    /// The file shrank or was rewritten while it was being read, so what was read is not one
    /// consistent checkpoint.
    #[error(
        "{} changed while it was being read (it had {length} bytes when opened, and has since \
         been truncated or rewritten); load it again once whatever is writing it (a copy, a \
         download, a training run saving) has finished",
        .path.display()
    )]
    Changed {
        /// The checkpoint's path.
        path: Box<Path>,
        /// Its length in bytes when it was opened.
        length: u64,
    },

    /// The file is neither valid safetensors nor a PyTorch checkpoint.
    #[error(
        "{} is not a safetensors file or a PyTorch checkpoint: {reason}",
        .path.display()
    )]
    NotSafetensors {
        /// The checkpoint's path.
        path: Box<Path>,
        /// The safetensors parser's complaint.
        reason: String,
    },

    /// A PyTorch checkpoint (torch.save's `.pth`, `.pt`, pycls's `.pyth`) that cannot be read.
    #[error(
        "{}: cannot read it as a PyTorch checkpoint: {reason}. Save the state dict again \
         (torch.save(model.state_dict(), path)) or convert it with `python3 tools/convert.py`",
        .path.display()
    )]
    PyTorch {
        /// The checkpoint's path.
        path: Box<Path>,
        /// What is wrong with it.
        reason: String,
    },

    /// The tensor names match none of the torchvision, timm and pycls naming schemes.
    #[error(
        "{}: cannot tell which library saved this checkpoint: {}. Recognized are torchvision \
         (`trunk_output.block1.block1-0.f.a.0.weight`), timm (`s1.b1.conv1.conv.weight`) and \
         pycls (`s1.b1.f.a.weight`) state dicts; if the keys carry an extra prefix such as \
         `module.` or `model.`, strip it when converting",
        .path.display(),
        contents(*.tensors, .sample)
    )]
    UnknownScheme {
        /// The checkpoint's path.
        path: Box<Path>,
        /// How many tensors the file holds.
        tensors: usize,
        /// A few of its keys, to show what it does hold.
        sample: Vec<String>,
    },

    /// The checkpoint's tensors are not exactly those this network expects (names and shapes).
    /// Its message gives the counts and the hint first, then the first few keys of each kind;
    /// [`LoadError::full_report`] lists every one.
    #[error("{}", mismatch_message(self, Some(LISTED_KEYS)))]
    Mismatch {
        /// The checkpoint's path.
        path: Box<Path>,
        /// The naming scheme the keys were read in.
        scheme: Scheme,
        /// Expected tensors the file lacks, with the shape they should have.
        missing: Vec<(String, Vec<usize>)>,
        /// Tensors in the file this network has no place for.
        unexpected: Vec<String>,
        /// (key, expected shape, shape in the file).
        wrong_shape: Vec<(String, Vec<usize>, Vec<usize>)>,
        /// What the checkpoint's own shapes say about the network it was saved from.
        hint: Option<String>,
    },

    /// A tensor's element type is not one the loader converts to f32.
    #[error(
        "{}: tensor `{key}` is stored as {dtype}; only F32, F16 and BF16 tensors are accepted \
         (convert the checkpoint to one of those)",
        .path.display()
    )]
    UnsupportedDtype {
        /// The checkpoint's path.
        path: Box<Path>,
        /// The tensor's name in the file.
        key: String,
        /// The element type it is stored as, as safetensors names it (`F64`, `I64`, ...).
        dtype: String,
    },

    /// A BatchNorm running variance is negative, NaN or infinite: no trained network has one,
    /// and folding it would turn its channel into NaN (or a constant).
    #[error(
        "{}: tensor `{key}` is a BatchNorm running variance but holds {value} at index \
         {index}{}; a variance must be finite and non-negative, so the checkpoint is corrupt \
         (export it again from the trained model)",
        .path.display(),
        more_values(*.others)
    )]
    InvalidVariance {
        /// The checkpoint's path.
        path: Box<Path>,
        /// The variance tensor's name in the file.
        key: String,
        /// The position of the first bad entry.
        index: usize,
        /// That entry.
        value: f32,
        /// How many more entries of the tensor are bad.
        others: usize,
    },
}

/// How many keys of each kind (missing, unexpected, wrong shape) a mismatch's message lists.
pub const LISTED_KEYS: usize = 5;

impl LoadError {
    /// The message, with every key of a [`LoadError::Mismatch`] listed rather than the first
    /// [`LISTED_KEYS`] of each kind.
    pub fn full_report(&self) -> String {
        match self {
            LoadError::Mismatch { .. } => mismatch_message(self, None),
            other => other.to_string(),
        }
    }
}

fn more_values(others: usize) -> String {
    match others {
        0 => String::new(),
        1 => " and 1 more invalid value".to_owned(),
        n => format!(" and {n} more invalid values"),
    }
}

fn contents(tensors: usize, sample: &[String]) -> String {
    if tensors == 0 {
        return "it holds no tensors".to_owned();
    }
    let keys: Vec<String> = sample.iter().map(|k| format!("`{k}`")).collect();
    let more = if tensors > sample.len() { ", ..." } else { "" };
    format!(
        "its tensor names ({}{more}; {tensors} in all) are not those of one known RegNet state \
         dict",
        keys.join(", ")
    )
}

/// The mismatch's counts, its hint, then up to `limit` keys of each kind (all without one).
fn mismatch_message(error: &LoadError, limit: Option<usize>) -> String {
    let LoadError::Mismatch {
        path,
        scheme,
        missing,
        unexpected,
        wrong_shape,
        hint,
    } = error
    else {
        return String::new();
    };
    let mut text = format!(
        "{} does not fit this network (read with {scheme} key names): {} missing, {} \
         unexpected, {} with the wrong shape",
        path.display(),
        missing.len(),
        unexpected.len(),
        wrong_shape.len(),
    );
    let hint = hint.as_deref().unwrap_or(
        "the spec must describe the network the checkpoint was trained as (its widths, depths, \
         group width, `se` and `num_classes`)",
    );
    let _ = write!(text, "\nhint: {hint}");
    let limit = limit.unwrap_or(usize::MAX);
    let mut left_out = 0;
    let mut list = |lines: Vec<String>| {
        left_out += lines.len().saturating_sub(limit);
        for line in lines.into_iter().take(limit) {
            let _ = write!(text, "\n  {line}");
        }
    };
    list(
        missing
            .iter()
            .map(|(key, shape)| format!("missing: {key} {shape:?}"))
            .collect(),
    );
    list(
        unexpected
            .iter()
            .map(|key| format!("unexpected: {key}"))
            .collect(),
    );
    list(
        wrong_shape
            .iter()
            .map(|(key, expected, found)| {
                format!("wrong shape: {key}: expected {expected:?}, found {found:?}")
            })
            .collect(),
    );
    if left_out > 0 {
        let _ = write!(
            text,
            "\n  ... and {left_out} more (the first {limit} of each kind are shown; \
             `LoadError::full_report` lists them all)"
        );
    }
    text
}
