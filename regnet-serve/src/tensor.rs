//! An inference request and its response as both protocols carry them, and the tensor
//! encodings they share (little-endian elements, length-prefixed BYTES).

use crate::error::RequestError;

/// The elements of an input tensor as the request carried them.
pub(crate) enum Elements {
    /// Numbers already decoded (JSON `data`, gRPC `fp32_contents`).
    Floats(Vec<f32>),
    /// The binary form: little-endian elements of the declared datatype, BYTES elements each
    /// behind a 4-byte little-endian length (HTTP's binary extension, gRPC's raw contents).
    Raw(Vec<u8>),
    /// BYTES elements one by one (JSON base64 strings, gRPC `bytes_contents`).
    Strings(Vec<Vec<u8>>),
}

/// One input tensor of a request.
pub(crate) struct Input {
    pub name: String,
    pub datatype: String,
    pub shape: Vec<i64>,
    pub elements: Elements,
}

/// One output the request asks for.
pub(crate) struct RequestedOutput {
    pub name: String,
    /// The classification extension: the top `k` classes as "score:index:label" strings
    /// instead of the tensor.
    pub classification: Option<usize>,
    /// HTTP only: in the binary part of the response instead of the JSON.
    pub binary: bool,
}

/// A request, whichever protocol brought it.
pub(crate) struct InferRequest {
    pub id: String,
    pub inputs: Vec<Input>,
    /// `None`: every output of the model, binary where `binary_outputs` says.
    pub outputs: Option<Vec<RequestedOutput>>,
    pub binary_outputs: bool,
}

/// The elements of an output tensor.
pub(crate) enum OutputData {
    Floats(Vec<f32>),
    Strings(Vec<String>),
}

/// One output tensor of a response.
pub(crate) struct OutputTensor {
    pub name: String,
    pub shape: Vec<i64>,
    pub data: OutputData,
    pub binary: bool,
}

impl OutputTensor {
    pub(crate) fn datatype(&self) -> &'static str {
        match self.data {
            OutputData::Floats(_) => "FP32",
            OutputData::Strings(_) => "BYTES",
        }
    }

    /// The binary form of the elements (see [`Elements::Raw`]).
    pub(crate) fn raw(&self) -> Vec<u8> {
        match &self.data {
            OutputData::Floats(values) => values.iter().flat_map(|v| v.to_le_bytes()).collect(),
            OutputData::Strings(strings) => {
                let mut raw = Vec::with_capacity(strings.iter().map(|s| 4 + s.len()).sum());
                for s in strings {
                    // Class strings are a few dozen bytes: far below u32::MAX.
                    raw.extend_from_slice(&(s.len() as u32).to_le_bytes());
                    raw.extend_from_slice(s.as_bytes());
                }
                raw
            }
        }
    }
}

/// A response, whichever protocol takes it back.
pub(crate) struct InferResponse {
    pub model_name: String,
    pub model_version: String,
    pub id: String,
    pub outputs: Vec<OutputTensor>,
}

/// Little-endian f32 elements; the length was checked against the shape by the caller.
pub(crate) fn floats_from_le(raw: &[u8]) -> Vec<f32> {
    raw.chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}

/// BYTES elements from their binary form: each a 4-byte little-endian length, then that many
/// bytes; a length running past the end, or bytes left over, is an error.
pub(crate) fn strings_from_raw(raw: &[u8], input: &str) -> Result<Vec<Vec<u8>>, RequestError> {
    let mut strings = Vec::new();
    let mut rest = raw;
    while !rest.is_empty() {
        let Some((length, after)) = rest.split_first_chunk::<4>() else {
            return Err(RequestError::Invalid(format!(
                "input `{input}`: BYTES element {} has a truncated length prefix ({} bytes; \
                 each element is a 4-byte little-endian length and then its bytes)",
                strings.len(),
                rest.len()
            )));
        };
        let length = u32::from_le_bytes(*length) as usize;
        if length > after.len() {
            return Err(RequestError::Invalid(format!(
                "input `{input}`: BYTES element {} says {length} bytes but {} remain",
                strings.len(),
                after.len()
            )));
        }
        strings.push(after[..length].to_vec());
        rest = &after[length..];
    }
    Ok(strings)
}

/// The number of elements of `shape`, or why it has none (a negative or overflowing size).
pub(crate) fn element_count(shape: &[i64], input: &str) -> Result<usize, RequestError> {
    shape.iter().try_fold(1usize, |count, &size| {
        usize::try_from(size)
            .ok()
            .and_then(|size| count.checked_mul(size))
            .ok_or_else(|| {
                RequestError::Invalid(format!(
                    "input `{input}` has shape {}, which has no element count",
                    shape_text(shape)
                ))
            })
    })
}

/// A shape as messages write it: `[2,3,224,224]`.
pub(crate) fn shape_text(shape: &[i64]) -> String {
    let sizes: Vec<String> = shape.iter().map(i64::to_string).collect();
    format!("[{}]", sizes.join(","))
}

/// The classification extension's strings for one image's logits: the `k` largest, best
/// first (ties by index), each "score:index" and, where the model has labels, ":label".
pub(crate) fn classify(logits: &[f32], k: usize, labels: Option<&[String]>) -> Vec<String> {
    regnet::runtime::top_classes(logits, k)
        .into_iter()
        .map(|index| match labels.and_then(|labels| labels.get(index)) {
            Some(label) => format!("{}:{index}:{label}", logits[index]),
            None => format!("{}:{index}", logits[index]),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_elements_round_trip_and_refuse_a_bad_length() {
        let tensor = OutputTensor {
            name: "x".into(),
            shape: vec![2],
            data: OutputData::Strings(vec!["ab".into(), String::new()]),
            binary: true,
        };
        let raw = tensor.raw();
        assert_eq!(raw, [2, 0, 0, 0, b'a', b'b', 0, 0, 0, 0]);
        assert_eq!(
            strings_from_raw(&raw, "x").unwrap(),
            vec![b"ab".to_vec(), Vec::new()]
        );
        let error = strings_from_raw(&raw[..5], "x").unwrap_err().to_string();
        assert!(error.contains("says 2 bytes but 1 remain"), "{error}");
        let error = strings_from_raw(&raw[..8], "x").unwrap_err().to_string();
        assert!(error.contains("truncated length prefix"), "{error}");
    }

    #[test]
    fn element_count_refuses_negative_and_overflowing_shapes() {
        assert_eq!(element_count(&[2, 3, 4], "x").unwrap(), 24);
        assert!(element_count(&[-1, 3], "x").is_err());
        assert!(element_count(&[i64::MAX, i64::MAX], "x").is_err());
    }

    #[test]
    fn classification_is_best_first_with_ties_by_index_and_nan_first() {
        let labels: Vec<String> = ["a", "b", "c", "d"].map(String::from).to_vec();
        let logits = [0.5, 2.0, 0.5, -1.0];
        assert_eq!(
            classify(&logits, 3, Some(&labels)),
            ["2:1:b", "0.5:0:a", "0.5:2:c"]
        );
        assert_eq!(classify(&logits, 1, None), ["2:1"]);
        // NaN propagates as the top class rather than disappearing from the answer.
        assert_eq!(classify(&[1.0, f32::NAN], 1, None), ["NaN:1"]);
    }
}
