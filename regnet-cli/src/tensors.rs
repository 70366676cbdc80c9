//! Reading the input batch and writing results as safetensors.

use std::borrow::Cow;
use std::path::Path;

use regnet::runtime::weights::decode_f32;
use regnet_spec::files::read_regular;
use safetensors::{Dtype, SafeTensors, View};

use crate::output;

/// The largest input batch file read: about 7,000 F32 images of 224×224, far more than a
/// workspace holds on most machines, and a bound on what a wrong path (a disk image, a growing
/// log) makes the command read.
const MAX_INPUT_BYTES: u64 = 4 << 30;

/// A float tensor read from a file: data and shape.
pub struct Tensor {
    pub data: Vec<f32>,
    pub shape: Vec<usize>,
}

/// Reads tensor `key` of a safetensors file as f32 (F32, F16 and BF16 are accepted).
pub fn read(path: &Path, key: &str) -> Result<Tensor, String> {
    let bytes = read_regular(path, MAX_INPUT_BYTES, "an input batch")
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let tensors = SafeTensors::deserialize(&bytes).map_err(|e| {
        format!(
            "{} is not a safetensors file ({e}); save the batch with safetensors",
            path.display()
        )
    })?;
    let view = tensors.tensor(key).map_err(|_| {
        let mut names: Vec<&str> = tensors.names();
        names.sort();
        format!(
            "{} has no tensor `{key}` (it has: {}); choose one with --key",
            path.display(),
            names.join(", ")
        )
    })?;
    let data = decode_f32(view.dtype(), view.data()).ok_or_else(|| {
        format!(
            "tensor `{key}` of {} is {:?}; F32, F16 or BF16 is needed",
            path.display(),
            view.dtype()
        )
    })?;
    Ok(Tensor {
        data,
        shape: view.shape().to_vec(),
    })
}

/// Writes named F32 tensors to a safetensors file (through [`output::write`]).
pub fn write(path: &Path, tensors: &[(String, &[f32], Vec<usize>)]) -> Result<(), String> {
    let views = tensors.iter().map(|(name, data, shape)| {
        debug_assert_eq!(data.len(), shape.iter().product::<usize>(), "{name}");
        (name, F32View { data, shape })
    });
    let bytes = safetensors::serialize(views, None)
        .map_err(|e| format!("cannot lay out the output: {e}"))?;
    output::write(path, &bytes)
}

/// An F32 tensor as safetensors' little-endian bytes, made one tensor at a time while the
/// file is laid out, so the output is not held twice.
struct F32View<'a> {
    data: &'a [f32],
    shape: &'a [usize],
}

impl View for F32View<'_> {
    fn dtype(&self) -> Dtype {
        Dtype::F32
    }

    fn shape(&self) -> &[usize] {
        self.shape
    }

    fn data(&self) -> Cow<'_, [u8]> {
        self.data.iter().flat_map(|v| v.to_le_bytes()).collect()
    }

    fn data_len(&self) -> usize {
        size_of_val(self.data)
    }
}
