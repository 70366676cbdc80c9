//! Loading safetensors checkpoints of any of the three naming schemes into [`NetworkWeights`].
//!
//! Every byte of the file is untrusted: the header and offsets are validated before any tensor is
//! touched, every expected key and shape is checked before any data is converted, and problems
//! come back as [`LoadError`]s that list everything wrong at once.

use std::collections::HashSet;
use std::fs::File;
use std::io;
use std::ops::Range;
use std::path::Path;

use rayon::prelude::*;
use regnet_spec::{Architecture, files};
use safetensors::tensor::{Metadata, TensorInfo};
use safetensors::{Dtype, SafeTensorError, SafeTensors};

use super::naming::{
    Conv, Role, Slot, assemble, block_conv_key, block_se_key, expected_tensors, head_weight_key,
    is_ignored, step_weights,
};
use super::{LoadError, NetworkWeights, Scheme, StepWeights, pytorch};
use crate::plan::Step;

/// How many of a file's keys an [`LoadError::UnknownScheme`] shows.
const SAMPLE_KEYS: usize = 5;

/// Loads the safetensors checkpoint at `path` as the weights of `architecture`, detecting which
/// library's key names it uses.
///
/// `alternative` is the stage widths the same design-space parameters give under the other
/// width-rounding rule (`("torchvision", &[32, 64, 160, 400])` for pycls's RegNetX-400MF); when a
/// checkpoint has those widths, the error says to use the spec with that `compat:` instead.
///
/// The file is read, not memory-mapped: a mapped file that shrinks while it is read kills the
/// process with SIGBUS, where a read just comes up short and becomes [`LoadError::Changed`].
/// Each tensor's bytes are read once, into one buffer reused for every tensor, and converted
/// from there, so loading never holds a second copy of the whole checkpoint.
pub fn load(
    path: &Path,
    architecture: &Architecture,
    alternative: Option<(&str, &[usize])>,
) -> Result<(NetworkWeights, Scheme), LoadError> {
    read_file(path, |file| load_from(file, architecture, alternative))
}

/// Where a checkpoint is read from: a file, or bytes already in memory.
#[derive(Clone, Copy, Debug)]
pub enum CheckpointSource<'a> {
    /// The safetensors file at this path, read (not mapped) piece by piece.
    File(&'a Path),
    /// A whole safetensors checkpoint in memory; errors name it [`IN_MEMORY`].
    Bytes(&'a [u8]),
}

/// The name errors give a checkpoint that came as bytes rather than from a file.
pub const IN_MEMORY: &str = "(checkpoint in memory)";

/// Reads the checkpoint at `source` (checked as [`load`] checks it) one plan step at a time, on
/// the current rayon pool, and gives each step's weights to `prepare`, in `steps`' order. Each
/// step's tensors are read, converted and handed over on their own, so that a backend which folds
/// and packs them in place never holds a second copy of the whole network: what `prepare`
/// returns is all that stays. `prepare` gives the buffers it is done with back to the
/// [`Recycled`] it is passed, for the thread's next step.
pub(crate) fn load_steps<T: Send>(
    source: CheckpointSource<'_>,
    architecture: &Architecture,
    alternative: Option<(&str, &[usize])>,
    steps: &[Step],
    prepare: impl Fn(&Step, Option<StepWeights<'_>>, &mut Recycled) -> T + Sync,
) -> Result<(Vec<T>, Scheme), LoadError> {
    match source {
        CheckpointSource::File(path) => read_file(path, |file| {
            read_steps(file, architecture, alternative, steps, prepare)
        }),
        CheckpointSource::Bytes(bytes) => {
            let memory = InMemory {
                bytes,
                path: Path::new(IN_MEMORY),
            };
            read_steps(&memory, architecture, alternative, steps, prepare)
        }
    }
}

fn read_steps<T: Send>(
    source: &impl Source,
    architecture: &Architecture,
    alternative: Option<(&str, &[usize])>,
    steps: &[Step],
    prepare: impl Fn(&Step, Option<StepWeights<'_>>, &mut Recycled) -> T + Sync,
) -> Result<(Vec<T>, Scheme), LoadError> {
    let checkpoint = Checkpoint::open(source, architecture, alternative)?;
    // One reader per thread, each with its own recycled buffers, taking every `readers`-th
    // step (interleaved, so that each gets a share of the large late layers).
    let readers = rayon::current_num_threads().clamp(1, steps.len().max(1));
    let (checkpoint, prepare) = (&checkpoint, &prepare);
    let mut prepared: Vec<(usize, Result<T, LoadError>)> = (0..readers)
        .into_par_iter()
        .flat_map_iter(|reader| {
            let mut recycled = Recycled::default();
            let mut read = move |step: &Step| {
                let weights = step_weights(architecture, checkpoint.scheme, step, |slot| {
                    checkpoint.tensor(&slot, &mut recycled)
                })?;
                Ok(prepare(step, weights, &mut recycled))
            };
            let mine = steps.iter().enumerate().skip(reader).step_by(readers);
            mine.map(|(index, step)| (index, read(step)))
                .collect::<Vec<_>>()
        })
        .collect();
    prepared.sort_unstable_by_key(|&(index, _)| index);
    // The first error in forward order, as the sequential loader would report it.
    let prepared = prepared
        .into_iter()
        .map(|(_, result)| result)
        .collect::<Result<_, _>>()?;
    Ok((prepared, checkpoint.scheme))
}

/// Opens the regular file at `path`, runs `read` on it, and refuses the result if the file
/// changed meanwhile.
fn read_file<T>(
    path: &Path,
    read: impl FnOnce(&OpenFile<'_>) -> Result<T, LoadError>,
) -> Result<T, LoadError> {
    let io_error = |source| LoadError::Io {
        path: path.into(),
        source,
    };
    let (file, opened) = files::open_regular(path)
        .map_err(|error| match error.kind() {
            // Not a regular file: a directory, a device, a FIFO.
            io::ErrorKind::InvalidInput => io::Error::new(
                error.kind(),
                format!("{error}; give the path of a .safetensors file"),
            ),
            _ => error,
        })
        .map_err(io_error)?;
    let length = opened.len();
    let file = OpenFile { file, length, path };
    let result = read(&file)?;
    // A rewrite that kept the length, or shrank the file and grew it back between two reads,
    // leaves no short read behind; the modification time still moves.
    let now = file.file.metadata().map_err(io_error)?;
    if now.len() != length || now.modified().ok() != opened.modified().ok() {
        return Err(file.changed());
    }
    Ok(result)
}

/// [`load`] for a checkpoint already in memory; `path` is only used to name it in errors.
pub fn load_bytes(
    bytes: &[u8],
    path: &Path,
    architecture: &Architecture,
    alternative: Option<(&str, &[usize])>,
) -> Result<(NetworkWeights, Scheme), LoadError> {
    load_from(&InMemory { bytes, path }, architecture, alternative)
}

/// Where a checkpoint's bytes come from: memory, or a file read piece by piece.
trait Source: Sync {
    /// The path that names the checkpoint in errors.
    fn path(&self) -> &Path;
    /// The checkpoint's length in bytes.
    fn len(&self) -> usize;
    /// The bytes at `range`, which lies within `len()`; copied into `scratch` where they have
    /// to be copied at all (one buffer for every tensor, so that reading them costs no
    /// allocation and no page faults past the largest).
    fn read<'a>(
        &'a self,
        range: Range<usize>,
        scratch: &'a mut Vec<u8>,
    ) -> Result<&'a [u8], LoadError>;
}

struct InMemory<'a> {
    bytes: &'a [u8],
    path: &'a Path,
}

impl Source for InMemory<'_> {
    fn path(&self) -> &Path {
        self.path
    }

    fn len(&self) -> usize {
        self.bytes.len()
    }

    fn read<'a>(&'a self, range: Range<usize>, _: &'a mut Vec<u8>) -> Result<&'a [u8], LoadError> {
        Ok(&self.bytes[range])
    }
}

struct OpenFile<'a> {
    file: File,
    /// The length when opened; every range read lies within it.
    length: u64,
    path: &'a Path,
}

impl OpenFile<'_> {
    fn changed(&self) -> LoadError {
        LoadError::Changed {
            path: self.path.into(),
            length: self.length,
        }
    }
}

impl Source for OpenFile<'_> {
    fn path(&self) -> &Path {
        self.path
    }

    fn len(&self) -> usize {
        // A file too large to address is read as if cut there: its header then claims more data
        // than fits, and it is refused as truncated.
        usize::try_from(self.length).unwrap_or(usize::MAX)
    }

    fn read<'a>(
        &'a self,
        range: Range<usize>,
        scratch: &'a mut Vec<u8>,
    ) -> Result<&'a [u8], LoadError> {
        // Grown only, never cleared: every byte of the part returned is read over.
        if scratch.len() < range.len() {
            scratch.resize(range.len(), 0);
        }
        let bytes = &mut scratch[..range.len()];
        read_exact_at(&self.file, bytes, range.start as u64).map_err(|source| {
            if source.kind() == io::ErrorKind::UnexpectedEof {
                self.changed()
            } else {
                LoadError::Io {
                    path: self.path.into(),
                    source,
                }
            }
        })?;
        Ok(bytes)
    }
}

#[cfg(unix)]
fn read_exact_at(file: &File, buffer: &mut [u8], offset: u64) -> io::Result<()> {
    use std::os::unix::fs::FileExt;
    file.read_exact_at(buffer, offset)
}

#[cfg(not(unix))]
fn read_exact_at(mut file: &File, buffer: &mut [u8], offset: u64) -> io::Result<()> {
    use std::io::{Read, Seek, SeekFrom};
    file.seek(SeekFrom::Start(offset))?;
    file.read_exact(buffer)
}

/// A checkpoint's validated header, and where its tensor data starts.
struct Header {
    metadata: Metadata,
    data_start: usize,
}

impl Header {
    /// Reads and validates the header of `source`, touching none of the tensor data.
    fn read(source: &impl Source) -> Result<Header, LoadError> {
        let length = source.len();
        let mut scratch = Vec::new();
        let claimed = source
            .read(0..length.min(LENGTH_FIELD), &mut scratch)?
            .first_chunk::<LENGTH_FIELD>()
            .map(|b| u64::from_le_bytes(*b));
        // Past safetensors' limit the crate refuses the header from its length field alone.
        let header = claimed
            .filter(|&n| n <= MAX_HEADER)
            .map_or(0, |n| n as usize);
        let prefix = source.read(0..length.min(LENGTH_FIELD + header), &mut scratch)?;
        parse_header(prefix, length).map_err(|reason| LoadError::NotSafetensors {
            path: source.path().into(),
            reason,
        })
    }

    /// The byte range of the tensor `info` describes, in the checkpoint.
    fn range(&self, info: &TensorInfo) -> Range<usize> {
        let (start, end) = info.data_offsets;
        self.data_start + start..self.data_start + end
    }
}

/// Bytes before the JSON header that give its length.
const LENGTH_FIELD: usize = 8;
/// The longest header safetensors accepts (the crate's `MAX_HEADER_SIZE`, which it keeps private).
const MAX_HEADER: u64 = 100_000_000;

/// Validates the header at the start of `prefix`, the first bytes of a file of `length` bytes
/// (all of them, or at least those through the header).
fn parse_header(prefix: &[u8], length: usize) -> Result<Header, String> {
    let checked = check_data_length(prefix, length)?;
    match (SafeTensors::read_metadata(prefix), checked) {
        (Ok((header, metadata)), _) => Ok(Header {
            metadata,
            data_start: LENGTH_FIELD + header,
        }),
        // The crate finds the data missing from a prefix that ends with the header, after every
        // other check passed; `check_data_length` measured the data against the whole file.
        (Err(SafeTensorError::MetadataIncompleteBuffer), Some(header)) => Ok(header),
        (Err(error), _) => Err(describe(&error, prefix, length)),
    }
}

fn load_from(
    source: &impl Source,
    architecture: &Architecture,
    alternative: Option<(&str, &[usize])>,
) -> Result<(NetworkWeights, Scheme), LoadError> {
    let checkpoint = Checkpoint::open(source, architecture, alternative)?;
    let mut recycled = Recycled::default();
    let weights = assemble(architecture, checkpoint.scheme, |slot| {
        checkpoint.tensor(&slot, &mut recycled)
    })?;
    Ok((weights, checkpoint.scheme))
}

/// The state dict of the PyTorch checkpoint `bytes` (torch.save's `.pth`, `.pt`, pycls's
/// `.pyth`, in the zip or the legacy layout) as a safetensors checkpoint: what `regnet convert`
/// writes, and what loading such a file reads (without the tensors the loader ignores, BatchNorm's
/// `num_batches_tracked`, as `tools/convert.py` drops them). `path` names the checkpoint in
/// errors.
pub fn pytorch_to_safetensors(bytes: &[u8], path: &Path) -> Result<Vec<u8>, LoadError> {
    if !pytorch::is_pytorch(bytes) {
        return Err(LoadError::PyTorch {
            path: path.into(),
            reason: "it starts like neither a zip archive nor a torch.save pickle".to_owned(),
        });
    }
    pytorch::to_safetensors(bytes, |key| !is_ignored(key)).map_err(|reason| LoadError::PyTorch {
        path: path.into(),
        reason,
    })
}

/// What a checkpoint is read from: the source itself, or, when the source is a PyTorch
/// checkpoint, the safetensors checkpoint it converts to in memory (see
/// [`pytorch_to_safetensors`]), read whole once. Both loaders open checkpoints through this.
enum Readable<'s, S> {
    Safetensors(&'s S),
    Converted { bytes: Vec<u8>, path: &'s Path },
}

impl<'s, S: Source> Readable<'s, S> {
    fn of(source: &'s S) -> Result<Self, LoadError> {
        let mut scratch = Vec::new();
        let start = source.read(0..source.len().min(4), &mut scratch)?;
        if !pytorch::is_pytorch(start) {
            return Ok(Readable::Safetensors(source));
        }
        let whole = source.read(0..source.len(), &mut scratch)?;
        Ok(Readable::Converted {
            bytes: pytorch_to_safetensors(whole, source.path())?,
            path: source.path(),
        })
    }
}

impl<S: Source> Source for Readable<'_, S> {
    fn path(&self) -> &Path {
        match self {
            Readable::Safetensors(source) => source.path(),
            Readable::Converted { path, .. } => path,
        }
    }

    fn len(&self) -> usize {
        match self {
            Readable::Safetensors(source) => source.len(),
            Readable::Converted { bytes, .. } => bytes.len(),
        }
    }

    fn read<'a>(
        &'a self,
        range: Range<usize>,
        scratch: &'a mut Vec<u8>,
    ) -> Result<&'a [u8], LoadError> {
        match self {
            Readable::Safetensors(source) => source.read(range, scratch),
            Readable::Converted { bytes, .. } => Ok(&bytes[range]),
        }
    }
}

/// A checkpoint whose header, key names and shapes have all been checked against an
/// architecture: every tensor the architecture needs is there, with its shape, and nothing else.
struct Checkpoint<'s, S> {
    source: Readable<'s, S>,
    header: Header,
    scheme: Scheme,
}

impl<'s, S: Source> Checkpoint<'s, S> {
    /// Reads and checks the header of `source` (converted first if it is a PyTorch checkpoint),
    /// touching none of the tensor data.
    fn open(
        source: &'s S,
        architecture: &Architecture,
        alternative: Option<(&str, &[usize])>,
    ) -> Result<Self, LoadError> {
        let source = Readable::of(source)?;
        let path = source.path();
        let header = Header::read(&source)?;
        let tensors = &header.metadata;

        let mut names: Vec<String> = tensors
            .offset_keys()
            .into_iter()
            .filter(|key| !is_ignored(key))
            .collect();
        // Sorted so errors list keys in a stable order, whatever the file's order.
        names.sort_unstable();
        let scheme = Scheme::detect(names.iter().map(String::as_str)).ok_or_else(|| {
            LoadError::UnknownScheme {
                path: path.into(),
                tensors: names.len(),
                sample: names.iter().take(SAMPLE_KEYS).cloned().collect(),
            }
        })?;

        let expected = expected_tensors(architecture, scheme);
        let mut missing = Vec::new();
        let mut wrong_shape = Vec::new();
        for (key, shape) in &expected {
            match tensors.info(key) {
                Some(info) if info.shape == *shape => {}
                Some(info) => wrong_shape.push((key.clone(), shape.clone(), info.shape.clone())),
                None => missing.push((key.clone(), shape.clone())),
            }
        }
        let known: HashSet<&str> = expected.iter().map(|(key, _)| key.as_str()).collect();
        let unexpected: Vec<String> = names
            .into_iter()
            .filter(|key| !known.contains(key.as_str()))
            .collect();
        if !(missing.is_empty() && unexpected.is_empty() && wrong_shape.is_empty()) {
            return Err(LoadError::Mismatch {
                path: path.into(),
                scheme,
                missing,
                unexpected,
                wrong_shape,
                hint: hint(tensors, scheme, architecture, alternative),
            });
        }
        Ok(Checkpoint {
            source,
            header,
            scheme,
        })
    }

    /// The values of the tensor at `slot`, converted to f32 in memory from `recycled`; a
    /// BatchNorm variance is checked too.
    fn tensor(&self, slot: &Slot, recycled: &mut Recycled) -> Result<Vec<f32>, LoadError> {
        let path = self.source.path();
        let info = self
            .header
            .metadata
            .info(&slot.key)
            .ok_or_else(|| LoadError::Mismatch {
                // Unreachable after `open`'s checks; an error keeps it from ever being a panic.
                path: path.into(),
                scheme: self.scheme,
                missing: vec![(slot.key.clone(), slot.shape.clone())],
                unexpected: Vec::new(),
                wrong_shape: Vec::new(),
                hint: None,
            })?;
        let mut values = recycled.take(slot.shape.iter().product());
        let bytes = self
            .source
            .read(self.header.range(info), &mut recycled.bytes)?;
        if !decode_f32_into(info.dtype, bytes, &mut values) {
            return Err(LoadError::UnsupportedDtype {
                path: path.into(),
                key: slot.key.clone(),
                dtype: info.dtype.to_string(),
            });
        }
        if slot.role == Role::BnVar {
            check_variance(&values, &slot.key, path)?;
        }
        Ok(values)
    }
}

/// Memory a loading thread reuses from tensor to tensor: the raw bytes read, and float buffers
/// handed back once a step's weights are packed. Fresh memory costs a page fault per 4 KiB page
/// (measured: most of the load time of regnety_1.6gf when every tensor got new buffers).
#[derive(Default)]
pub(crate) struct Recycled {
    bytes: Vec<u8>,
    floats: Vec<Vec<f32>>,
}

/// Float buffers a thread keeps.
const KEPT_BUFFERS: usize = 4;
/// Floats of the smallest buffer worth keeping (64 KiB): smaller ones (BatchNorm statistics,
/// biases) come from the allocator's free lists without page faults anyway.
const KEPT_FLOATS: usize = 16 * 1024;

impl Recycled {
    /// An empty buffer for `len` floats: for a large tensor, the smallest kept one that holds
    /// them, else the largest (which then grows); else a new one.
    fn take(&mut self, len: usize) -> Vec<f32> {
        if len < KEPT_FLOATS {
            return Vec::new();
        }
        let fits = (0..self.floats.len())
            .filter(|&i| self.floats[i].capacity() >= len)
            .min_by_key(|&i| self.floats[i].capacity());
        let largest = (0..self.floats.len()).max_by_key(|&i| self.floats[i].capacity());
        fits.or(largest)
            .map(|i| self.floats.swap_remove(i))
            .unwrap_or_default()
    }

    /// Keeps `buffer` for a later tensor, if it is among the largest seen.
    pub(crate) fn give(&mut self, buffer: Vec<f32>) {
        if buffer.capacity() < KEPT_FLOATS {
            return;
        }
        self.floats.push(buffer);
        if self.floats.len() > KEPT_BUFFERS {
            let smallest = (0..self.floats.len()).min_by_key(|&i| self.floats[i].capacity());
            smallest.map(|i| self.floats.swap_remove(i));
        }
    }
}

/// Refuses a BatchNorm running variance that is negative, NaN or infinite: folding takes its
/// square root, so one bad entry turns its channel into NaN (or, for +∞, into the constant β).
fn check_variance(values: &[f32], key: &str, path: &Path) -> Result<(), LoadError> {
    let mut bad = values
        .iter()
        .enumerate()
        .filter(|(_, v)| !(v.is_finite() && **v >= 0.0));
    match bad.next() {
        None => Ok(()),
        Some((index, &value)) => Err(LoadError::InvalidVariance {
            path: path.into(),
            key: key.to_owned(),
            index,
            value,
            others: bad.count(),
        }),
    }
}

/// Converts a safetensors tensor's bytes of F32, F16 or BF16 (little-endian, as safetensors
/// stores them) to f32; `None` for any other dtype. The one decoder of tensor data: the
/// loader, the CLI's input batches and the tests all read through it. The bytes are read in 2-
/// and 4-byte chunks because a tensor's offset in a file held in memory need not be aligned for
/// a direct cast.
pub fn decode_f32(dtype: Dtype, data: &[u8]) -> Option<Vec<f32>> {
    let mut values = Vec::new();
    decode_f32_into(dtype, data, &mut values).then_some(values)
}

/// [`decode_f32`] into `values` (cleared first), reusing its memory; false for another dtype.
fn decode_f32_into(dtype: Dtype, data: &[u8], values: &mut Vec<f32>) -> bool {
    values.clear();
    match dtype {
        Dtype::F32 => values.extend(
            data.as_chunks::<4>()
                .0
                .iter()
                .map(|&b| f32::from_le_bytes(b)),
        ),
        Dtype::F16 => values.extend(
            data.as_chunks::<2>()
                .0
                .iter()
                .map(|&b| half::f16::from_le_bytes(b).to_f32()),
        ),
        Dtype::BF16 => values.extend(
            data.as_chunks::<2>()
                .0
                .iter()
                .map(|&b| half::bf16::from_le_bytes(b).to_f32()),
        ),
        _ => return false,
    }
    true
}

/// Rejects a header whose tensors claim more (or less) data than follows it in a file of `length`
/// bytes, before `SafeTensors::read_metadata` adds the claimed length to the header's: with
/// offsets near `usize::MAX` that sum overflows inside the crate, which would panic (or, wrapped,
/// pass its check). Gives the header when it is valid and its data fills the file.
fn check_data_length(prefix: &[u8], length: usize) -> Result<Option<Header>, String> {
    let Some((field, rest)) = prefix.split_first_chunk::<LENGTH_FIELD>() else {
        return Ok(None);
    };
    let Some(header) = usize::try_from(u64::from_le_bytes(*field))
        .ok()
        .and_then(|n| rest.get(..n))
    else {
        return Ok(None);
    };
    // Let `read_metadata` word errors in the header itself; only its claimed data length matters
    // here.
    let Ok(metadata) = serde_json::from_slice::<Metadata>(header) else {
        return Ok(None);
    };
    let data_start = LENGTH_FIELD + header.len();
    let available = length - data_start;
    let claimed = metadata.data_len();
    if claimed == available {
        return Ok(Some(Header {
            metadata,
            data_start,
        }));
    }
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

/// Why the `safetensors` crate rejected a file of `length` bytes that starts with `prefix`, in
/// terms of what the user has in hand.
fn describe(error: &SafeTensorError, prefix: &[u8], length: usize) -> String {
    if let Some(format) = foreign_format(prefix) {
        return format!("it looks like {format}");
    }
    let header_length = prefix
        .first_chunk::<LENGTH_FIELD>()
        .map(|b| u64::from_le_bytes(*b));
    match error {
        SafeTensorError::HeaderTooSmall if length == 0 => "the file is empty".to_owned(),
        SafeTensorError::HeaderTooSmall => format!(
            "the file is {length} bytes long, too short for the 8-byte header length that starts \
             a safetensors file"
        ),
        SafeTensorError::HeaderTooLarge => format!(
            "its first 8 bytes give a header length of {} bytes, more than safetensors allows",
            header_length.unwrap_or_default()
        ),
        SafeTensorError::InvalidHeaderLength => format!(
            "its header length ({} bytes) runs past the end of the file ({} bytes); the file is \
             truncated or not a safetensors file",
            header_length.unwrap_or_default(),
            length
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
    // Zip archives and torch.save's legacy pickles are read as PyTorch checkpoints before this.
    if bytes.first() == Some(&0x80) && bytes.get(1).is_some_and(|&v| (2..=5).contains(&v)) {
        Some("a Python pickle, but not one torch.save wrote")
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
    tensors: &Metadata,
    scheme: Scheme,
    architecture: &Architecture,
    alternative: Option<(&str, &[usize])>,
) -> Option<String> {
    let shape = |key: &str| tensors.info(key).map(|info| info.shape.as_slice());
    let out_channels = |key: &str| shape(key).and_then(|s| s.first().copied());
    let has = |key: &str| tensors.info(key).is_some();
    let block_exists = |stage, index| {
        has(&block_conv_key(scheme, stage, index, Conv::Expand))
            || has(&block_conv_key(scheme, stage, index, Conv::Reduce))
    };

    // Each stage's width is its first block's output width; a stage ends where its blocks do. The
    // loops are bounded by the number of tensors, since each stage and block needs at least one.
    let limit = tensors.offset_keys().len() + 1;
    let mut widths = Vec::new();
    let mut depths = Vec::new();
    for stage in 1..=limit {
        let width = out_channels(&block_conv_key(scheme, stage, 1, Conv::Expand))
            .or_else(|| out_channels(&block_conv_key(scheme, stage, 1, Conv::Projection)));
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
                shape(&block_conv_key(scheme, stage, 1, Conv::Grouped))
                    .and_then(|s| s.get(1).copied())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_cut_short_after_opening_reads_as_changed() {
        let path = std::env::temp_dir().join(format!("regnet-load-cut-{}", std::process::id()));
        std::fs::write(&path, [7u8; 64]).unwrap();
        let (file, metadata) = files::open_regular(&path).unwrap();
        let source = OpenFile {
            file,
            length: metadata.len(),
            path: &path,
        };
        let mut scratch = Vec::new();
        assert_eq!(source.read(8..16, &mut scratch).unwrap(), [7u8; 8]);
        std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(10)
            .unwrap();
        let error = source.read(8..16, &mut scratch).unwrap_err();
        std::fs::remove_file(&path).unwrap();
        assert!(
            matches!(error, LoadError::Changed { length: 64, .. }),
            "{error}"
        );
        assert_eq!(
            error.to_string(),
            format!(
                "{} changed while it was being read (it had 64 bytes when opened, and has since \
                 been truncated or rewritten); load it again once whatever is writing it (a \
                 copy, a download, a training run saving) has finished",
                path.display()
            )
        );
    }
}
