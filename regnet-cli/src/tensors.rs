//! Reading the input batch and writing results as safetensors.

use std::path::Path;

use safetensors::{Dtype, SafeTensors, tensor::TensorView};

/// A float tensor read from a file: data and shape.
pub struct Tensor {
    pub data: Vec<f32>,
    pub shape: Vec<usize>,
}

/// Reads tensor `key` of a safetensors file as f32 (F32, F16 and BF16 are accepted).
pub fn read(path: &Path, key: &str) -> Result<Tensor, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
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
    let raw = view.data();
    let data = match view.dtype() {
        Dtype::F32 => raw
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect(),
        Dtype::F16 => raw
            .chunks_exact(2)
            .map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32())
            .collect(),
        Dtype::BF16 => raw
            .chunks_exact(2)
            .map(|b| half::bf16::from_le_bytes([b[0], b[1]]).to_f32())
            .collect(),
        other => {
            return Err(format!(
                "tensor `{key}` of {} is {other:?}; F32, F16 or BF16 is needed",
                path.display()
            ));
        }
    };
    Ok(Tensor {
        data,
        shape: view.shape().to_vec(),
    })
}

/// Writes named F32 tensors to a safetensors file.
pub fn write(path: &Path, tensors: &[(String, &[f32], Vec<usize>)]) -> Result<(), String> {
    let bytes: Vec<Vec<u8>> = tensors
        .iter()
        .map(|(_, data, _)| data.iter().flat_map(|v| v.to_le_bytes()).collect())
        .collect();
    let views = tensors
        .iter()
        .zip(&bytes)
        .map(|((name, _, shape), bytes)| {
            TensorView::new(Dtype::F32, shape.clone(), bytes).map(|view| (name.clone(), view))
        })
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("cannot lay out the output: {e}"))?;
    safetensors::serialize_to_file(views, None, path)
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}
