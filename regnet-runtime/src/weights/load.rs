//! Loading safetensors checkpoints of any of the three naming schemes into [`NetworkWeights`].
//!
//! Every byte of the file is untrusted: the header and offsets are validated before any tensor is
//! touched, every expected key and shape is checked before any data is converted, and problems
//! come back as [`LoadError`]s that list everything wrong at once.

use std::collections::HashSet;
use std::fs::File;
use std::io;
use std::path::Path;

use memmap2::Mmap;
use regnet_spec::Architecture;
use safetensors::tensor::{Metadata, TensorView};
use safetensors::{Dtype, SafeTensorError, SafeTensors};

use super::naming::{
    Conv, assemble, block_conv_key, block_se_key, expected_tensors, head_weight_key, is_ignored,
};
use super::{LoadError, NetworkWeights, Scheme};

/// How many of a file's keys an [`LoadError::UnknownScheme`] shows.
const SAMPLE_KEYS: usize = 5;

/// Loads the safetensors checkpoint at `path` as the weights of `architecture`, detecting which
/// library's key names it uses.
///
/// `alternative` is the stage widths the same design-space parameters give under the other
/// width-rounding rule (`("torchvision", &[32, 64, 160, 400])` for pycls's RegNetX-400MF); when a
/// checkpoint has those widths, the error says to use the spec with that `compat:` instead.
pub fn load(
    path: &Path,
    architecture: &Architecture,
    alternative: Option<(&str, &[usize])>,
) -> Result<(NetworkWeights, Scheme), LoadError> {
    let io_error = |source| LoadError::Io {
        path: path.into(),
        source,
    };
    // Checked before opening: opening a FIFO would block, and mapping a directory fails with an
    // unhelpful "no such device".
    let kind = std::fs::metadata(path).map_err(io_error)?.file_type();
    if !kind.is_file() {
        let what = if kind.is_dir() {
            "it is a directory"
        } else {
            "it is not a regular file"
        };
        return Err(io_error(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{what}; give the path of a .safetensors file"),
        )));
    }
    let file = File::open(path).map_err(io_error)?;
    let map = map_read_only(&file).map_err(io_error)?;
    load_bytes(&map, path, architecture, alternative)
}

/// Maps a checkpoint into memory instead of reading it, so a large file costs no copy beyond the
/// conversion into owned `Vec<f32>`s.
fn map_read_only(file: &File) -> io::Result<Mmap> {
    // SAFETY: `Mmap::map` is unsafe because the mapped bytes may change (or, if the file is
    // truncated, fault) when another process modifies the file while it is mapped. We open the
    // file read-only and never write through the map; the map lives only until `load` returns,
    // and everything kept from it is first validated as untrusted input and then copied into
    // owned `Vec<f32>`s, so nothing relies on the file staying unchanged after that copy.
    // Rewriting a checkpoint while it is being loaded is the caller's race, as for any
    // memory-mapped reader.
    unsafe { Mmap::map(file) }
}

/// [`load`] for a checkpoint already in memory; `path` is only used to name it in errors.
pub fn load_bytes(
    bytes: &[u8],
    path: &Path,
    architecture: &Architecture,
    alternative: Option<(&str, &[usize])>,
) -> Result<(NetworkWeights, Scheme), LoadError> {
    let not_safetensors = |reason| LoadError::NotSafetensors {
        path: path.into(),
        reason,
    };
    check_data_length(bytes).map_err(not_safetensors)?;
    let tensors = SafeTensors::deserialize(bytes)
        .map_err(|error| not_safetensors(describe(&error, bytes)))?;

    let mut names: Vec<&str> = tensors
        .names()
        .into_iter()
        .filter(|key| !is_ignored(key))
        .collect();
    // The header is a hash map: sort so errors list keys in a stable order.
    names.sort_unstable();
    let scheme = Scheme::detect(names.iter().copied()).ok_or_else(|| LoadError::UnknownScheme {
        path: path.into(),
        tensors: names.len(),
        sample: names
            .iter()
            .take(SAMPLE_KEYS)
            .map(ToString::to_string)
            .collect(),
    })?;

    let expected = expected_tensors(architecture, scheme);
    let mut missing = Vec::new();
    let mut wrong_shape = Vec::new();
    for (key, shape) in &expected {
        match tensors.tensor(key) {
            Ok(view) if view.shape() == shape.as_slice() => {}
            Ok(view) => wrong_shape.push((key.clone(), shape.clone(), view.shape().to_vec())),
            Err(_) => missing.push((key.clone(), shape.clone())),
        }
    }
    let known: HashSet<&str> = expected.iter().map(|(key, _)| key.as_str()).collect();
    let unexpected: Vec<String> = names
        .iter()
        .filter(|key| !known.contains(*key))
        .map(ToString::to_string)
        .collect();
    if !(missing.is_empty() && unexpected.is_empty() && wrong_shape.is_empty()) {
        return Err(LoadError::Mismatch {
            path: path.into(),
            scheme,
            missing,
            unexpected,
            wrong_shape,
            hint: hint(&tensors, scheme, architecture, alternative),
        });
    }

    let weights = assemble(architecture, scheme, |slot| {
        let view = tensors.tensor(&slot.key).map_err(|_| LoadError::Mismatch {
            // Unreachable after the checks above; an error keeps it from ever being a panic.
            path: path.into(),
            scheme,
            missing: vec![(slot.key.clone(), slot.shape.clone())],
            unexpected: Vec::new(),
            wrong_shape: Vec::new(),
            hint: None,
        })?;
        to_f32(&view).ok_or_else(|| LoadError::UnsupportedDtype {
            path: path.into(),
            key: slot.key,
            dtype: view.dtype().to_string(),
        })
    })?;
    Ok((weights, scheme))
}

/// Converts F32, F16 and BF16 (little-endian, as safetensors stores them) to f32; `None` for any
/// other dtype. The bytes are read in 2- and 4-byte chunks because a tensor's offset in a mapped
/// file need not be aligned for a direct cast.
fn to_f32(view: &TensorView<'_>) -> Option<Vec<f32>> {
    let data = view.data();
    match view.dtype() {
        Dtype::F32 => Some(
            data.as_chunks::<4>()
                .0
                .iter()
                .map(|&b| f32::from_le_bytes(b))
                .collect(),
        ),
        Dtype::F16 => Some(
            data.as_chunks::<2>()
                .0
                .iter()
                .map(|&b| half::f16::from_le_bytes(b).to_f32())
                .collect(),
        ),
        Dtype::BF16 => Some(
            data.as_chunks::<2>()
                .0
                .iter()
                .map(|&b| half::bf16::from_le_bytes(b).to_f32())
                .collect(),
        ),
        _ => None,
    }
}

/// Rejects a header whose tensors claim more (or less) data than follows it, before
/// `SafeTensors::deserialize` adds the claimed length to the header's: with offsets near
/// `usize::MAX` that sum overflows inside the crate, which would panic (or, wrapped, pass its
/// check and index out of bounds).
fn check_data_length(bytes: &[u8]) -> Result<(), String> {
    let Some((length, rest)) = bytes.split_first_chunk::<8>() else {
        return Ok(());
    };
    let header_length = u64::from_le_bytes(*length);
    let Some(header) = usize::try_from(header_length)
        .ok()
        .and_then(|n| rest.get(..n))
    else {
        return Ok(());
    };
    // Let `deserialize` word errors in the header itself; only its claimed data length matters
    // here.
    let Ok(metadata) = serde_json::from_slice::<Metadata>(header) else {
        return Ok(());
    };
    let available = rest.len() - header.len();
    let claimed = metadata.data_len();
    if claimed == available {
        Ok(())
    } else {
        let last = metadata
            .offset_keys()
            .last()
            .map(|key| format!(" (tensor `{key}` ends at byte {claimed})"))
            .unwrap_or_default();
        Err(format!(
            "its header describes {claimed} bytes of tensor data{last}, but {available} bytes \
             follow the header; the file is truncated or corrupt"
        ))
    }
}

/// Why the `safetensors` crate rejected `bytes`, in terms of what the user has in hand.
fn describe(error: &SafeTensorError, bytes: &[u8]) -> String {
    if let Some(format) = foreign_format(bytes) {
        return format!("it looks like {format}");
    }
    let header_length = bytes.first_chunk::<8>().map(|b| u64::from_le_bytes(*b));
    match error {
        SafeTensorError::HeaderTooSmall if bytes.is_empty() => "the file is empty".to_owned(),
        SafeTensorError::HeaderTooSmall => format!(
            "the file is {} bytes long, too short for the 8-byte header length that starts a \
             safetensors file",
            bytes.len()
        ),
        SafeTensorError::HeaderTooLarge => format!(
            "its first 8 bytes give a header length of {} bytes, more than safetensors allows",
            header_length.unwrap_or_default()
        ),
        SafeTensorError::InvalidHeaderLength => format!(
            "its header length ({} bytes) runs past the end of the file ({} bytes); the file is \
             truncated or not a safetensors file",
            header_length.unwrap_or_default(),
            bytes.len()
        ),
        SafeTensorError::InvalidHeader(error) => format!("its header is not UTF-8 text ({error})"),
        SafeTensorError::InvalidHeaderDeserialization(error) => {
            format!("its header is not a valid safetensors JSON header ({error})")
        }
        SafeTensorError::MetadataIncompleteBuffer => {
            "its tensor data does not fill the file exactly; the file is truncated or corrupt"
                .to_owned()
        }
        SafeTensorError::InvalidOffset(key) => format!(
            "the data_offsets of tensor `{key}` overlap or leave a gap after the previous tensor"
        ),
        SafeTensorError::TensorInvalidInfo => {
            "a tensor's byte range does not match its shape and dtype".to_owned()
        }
        SafeTensorError::ValidationOverflow => {
            "a tensor's shape is too large to address".to_owned()
        }
        other => other.to_string(),
    }
}

/// Names the formats people most often pass by mistake, from their magic bytes.
fn foreign_format(bytes: &[u8]) -> Option<&'static str> {
    if bytes.starts_with(b"PK\x03\x04") {
        // torch.save has written zip archives since PyTorch 1.6.
        Some("a zip archive (the format of torch.save .pth/.pt files)")
    } else if bytes.first() == Some(&0x80) && bytes.get(1).is_some_and(|&v| (2..=5).contains(&v)) {
        Some("a Python pickle (the format of older torch.save and pycls .pyth files)")
    } else if bytes.starts_with(b"\x89HDF") {
        Some("an HDF5 file (a Keras checkpoint)")
    } else if bytes.first().is_some_and(|&b| b == b'{' || b == b'[') {
        Some("JSON text (a safetensors file starts with an 8-byte header length, then JSON)")
    } else {
        None
    }
}

/// What the checkpoint's own shapes say about the network it was saved from, where that differs
/// from `architecture`: usually the reason for a mismatch, and what to change.
fn hint(
    tensors: &SafeTensors<'_>,
    scheme: Scheme,
    architecture: &Architecture,
    alternative: Option<(&str, &[usize])>,
) -> Option<String> {
    let shape = |key: &str| tensors.tensor(key).ok().map(|view| view.shape().to_vec());
    let out_channels = |key: &str| shape(key).and_then(|s| s.first().copied());
    let has = |key: &str| tensors.tensor(key).is_ok();
    let block_exists = |stage, index| {
        has(&block_conv_key(scheme, stage, index, Conv::C))
            || has(&block_conv_key(scheme, stage, index, Conv::A))
    };

    // Each stage's width is its first block's output width; a stage ends where its blocks do. The
    // loops are bounded by the number of tensors, since each stage and block needs at least one.
    let limit = tensors.len() + 1;
    let mut widths = Vec::new();
    let mut depths = Vec::new();
    for stage in 1..=limit {
        let width = out_channels(&block_conv_key(scheme, stage, 1, Conv::C))
            .or_else(|| out_channels(&block_conv_key(scheme, stage, 1, Conv::Proj)));
        let Some(width) = width else { break };
        widths.push(width);
        depths.push((1..=limit).take_while(|&j| block_exists(stage, j)).count());
    }

    let stages = architecture.stages;
    let our_widths: Vec<usize> = stages.iter().map(|s| s.width).collect();
    let our_depths: Vec<usize> = stages.iter().map(|s| s.depth).collect();
    let mut notes = Vec::new();
    if !widths.is_empty() && widths != our_widths {
        let mut note = format!(
            "the checkpoint's stage widths are {widths:?} but this network's are {our_widths:?}"
        );
        if let Some((name, alternative)) = alternative
            && alternative == widths.as_slice()
        {
            note.push_str(&format!(
                "; they match this spec with `compat: {name}` — use that spec (e.g. the `_tv` \
                 specs in specs/)"
            ));
        }
        notes.push(note);
    }
    if !depths.is_empty() && depths != our_depths {
        notes.push(format!(
            "the checkpoint's stage depths are {depths:?} but this network's are {our_depths:?}"
        ));
    }
    if widths == our_widths {
        // The 3×3 weight is [w_b, w_b / groups, 3, 3]: its second dimension is the group width.
        let group_widths: Vec<Option<usize>> = (1..=stages.len())
            .map(|stage| {
                shape(&block_conv_key(scheme, stage, 1, Conv::B)).and_then(|s| s.get(1).copied())
            })
            .collect();
        let ours: Vec<usize> = stages
            .iter()
            .map(|s| s.bottleneck_width.checked_div(s.groups()).unwrap_or(0))
            .collect();
        if let Some(theirs) = group_widths.into_iter().collect::<Option<Vec<usize>>>()
            && theirs != ours
        {
            notes.push(format!(
                "the checkpoint's group widths are {theirs:?} but this network's are {ours:?} \
                 (set `g`)"
            ));
        }
    }
    let first_block = block_exists(1, 1);
    let their_se = has(&block_se_key(scheme, 1, 1));
    let our_se = stages.first().is_some_and(|s| s.se_width.is_some());
    if first_block && their_se && !our_se {
        notes.push(
            "the checkpoint has squeeze-excitation blocks (a RegNetY) but this network has none \
             (add `se: true` to the spec)"
                .to_owned(),
        );
    } else if first_block && !their_se && our_se {
        notes.push(
            "this network has squeeze-excitation blocks but the checkpoint has none (a RegNetX: \
             remove `se: true` from the spec)"
                .to_owned(),
        );
    }
    if let Some(classes) = out_channels(&head_weight_key(scheme))
        && classes != architecture.num_classes
    {
        notes.push(format!(
            "the checkpoint's head has {classes} classes but this network has {} (set \
             `num_classes: {classes}`)",
            architecture.num_classes
        ));
    }
    (!notes.is_empty()).then(|| notes.join("; "))
}
