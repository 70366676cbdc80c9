//! A served model: its metadata, its input checks, and (once loaded) its batcher.

use std::sync::{Arc, OnceLock};

use base64::Engine;
use regnet::runtime::images;

use crate::batcher::Batcher;
use crate::error::RequestError;
use crate::tensor::{
    Elements, InferRequest, InferResponse, Input, OutputData, OutputTensor, RequestedOutput,
    element_count, floats_from_le, shape_text, strings_from_raw,
};

/// The one version of each model this server has.
pub(crate) const VERSION: &str = "1";
pub(crate) const INPUT: &str = "input";
pub(crate) const OUTPUT: &str = "logits";

/// A tensor as metadata describes it; -1 is the batch dimension.
pub(crate) struct TensorMetadata {
    pub name: &'static str,
    pub datatype: &'static str,
    pub shape: Vec<i64>,
}

pub(crate) struct ServedModel {
    pub name: String,
    pub resolution: usize,
    pub classes: usize,
    pub max_batch: usize,
    pub labels: Option<Arc<[String]>>,
    /// Set once the weights are loaded and the model warmed up: then it is ready.
    pub batcher: OnceLock<Batcher>,
    /// Requests admitted and not yet answered, bodies included: `--max-queue` waiting plus a
    /// batch running. A request beyond it is refused before its body is read, which bounds the
    /// memory that requests to this model hold.
    pub admission: Arc<tokio::sync::Semaphore>,
}

impl ServedModel {
    pub(crate) fn inputs(&self) -> Vec<TensorMetadata> {
        let r = self.resolution as i64;
        vec![TensorMetadata {
            name: INPUT,
            datatype: "FP32",
            shape: vec![-1, 3, r, r],
        }]
    }

    pub(crate) fn outputs(&self) -> Vec<TensorMetadata> {
        vec![TensorMetadata {
            name: OUTPUT,
            datatype: "FP32",
            shape: vec![-1, self.classes as i64],
        }]
    }

    pub(crate) fn ready(&self) -> bool {
        self.batcher.get().is_some()
    }

    /// What the model takes, for messages.
    fn takes(&self) -> String {
        let r = self.resolution;
        format!(
            "this model takes one input `{INPUT}`: FP32 [N,3,{r},{r}] (normalized NCHW images) \
             or BYTES [N] (encoded JPEG, PNG or WebP images), N from 1 to {}",
            self.max_batch
        )
    }

    /// Runs a request: its input checked and decoded, its images batched with others, its
    /// outputs made as it asked.
    pub(crate) async fn infer(
        self: &Arc<Self>,
        request: InferRequest,
    ) -> Result<InferResponse, RequestError> {
        let outputs = self.requested_outputs(request.outputs, request.binary_outputs)?;
        let mut inputs = request.inputs;
        if inputs.len() != 1 {
            return Err(RequestError::Invalid(format!(
                "the request has {} inputs; {}",
                inputs.len(),
                self.takes()
            )));
        }
        let input = inputs.remove(0);
        if input.name != INPUT {
            return Err(RequestError::Invalid(format!(
                "no input `{}`; {}",
                input.name,
                self.takes()
            )));
        }
        let Some(batcher) = self.batcher.get() else {
            return Err(RequestError::Unavailable(format!(
                "model `{}` is still loading; retry when /v2/models/{}/ready says 200",
                self.name, self.name
            )));
        };
        let (floats, images) = match input.datatype.as_str() {
            "FP32" => self.floats(input)?,
            "BYTES" => {
                let model = Arc::clone(self);
                // Decoding and resizing images is seconds of CPU for large ones: off the
                // threads that answer connections.
                tokio::task::spawn_blocking(move || model.decoded_images(input))
                    .await
                    .map_err(|e| RequestError::Internal(e.to_string()))??
            }
            other => {
                return Err(RequestError::Invalid(format!(
                    "input `{INPUT}` has datatype {other}; {}",
                    self.takes()
                )));
            }
        };
        let logits = batcher.infer(floats, images).await?;
        let outputs = outputs
            .into_iter()
            .map(|output| self.output(output, &logits, images))
            .collect();
        Ok(InferResponse {
            model_name: self.name.clone(),
            model_version: VERSION.to_owned(),
            id: request.id,
            outputs,
        })
    }

    fn requested_outputs(
        &self,
        outputs: Option<Vec<RequestedOutput>>,
        binary: bool,
    ) -> Result<Vec<RequestedOutput>, RequestError> {
        let Some(outputs) = outputs else {
            return Ok(vec![RequestedOutput {
                name: OUTPUT.to_owned(),
                classification: None,
                binary,
            }]);
        };
        for output in &outputs {
            if output.name != OUTPUT {
                return Err(RequestError::Invalid(format!(
                    "no output `{}`; this model's output is `{OUTPUT}`, FP32 [N,{}]",
                    output.name, self.classes
                )));
            }
        }
        Ok(outputs)
    }

    fn output(&self, output: RequestedOutput, logits: &[f32], images: usize) -> OutputTensor {
        match output.classification {
            // As Triton does, a count above the classes gives them all.
            Some(k) if k > 0 => {
                let k = k.min(self.classes);
                let labels = self.labels.as_deref();
                let strings = logits
                    .chunks_exact(self.classes)
                    .flat_map(|row| crate::tensor::classify(row, k, labels))
                    .collect();
                OutputTensor {
                    name: output.name,
                    shape: vec![images as i64, k as i64],
                    data: OutputData::Strings(strings),
                    binary: output.binary,
                }
            }
            _ => OutputTensor {
                name: output.name,
                shape: vec![images as i64, self.classes as i64],
                data: OutputData::Floats(logits.to_vec()),
                binary: output.binary,
            },
        }
    }

    /// The batch size of an input's shape, when the shape is `[N, rest…]` with N allowed.
    fn batch_of(&self, input: &Input, rest: &[i64]) -> Result<usize, RequestError> {
        let wrong = || {
            RequestError::Invalid(format!(
                "input `{INPUT}` has shape {}; {}",
                shape_text(&input.shape),
                self.takes()
            ))
        };
        let (&batch, sizes) = input.shape.split_first().ok_or_else(wrong)?;
        if sizes != rest {
            return Err(wrong());
        }
        match usize::try_from(batch) {
            Ok(batch) if (1..=self.max_batch).contains(&batch) => Ok(batch),
            _ => Err(wrong()),
        }
    }

    fn floats(&self, input: Input) -> Result<(Vec<f32>, usize), RequestError> {
        let r = self.resolution as i64;
        let images = self.batch_of(&input, &[3, r, r])?;
        let count = element_count(&input.shape, INPUT)?;
        let floats = match input.elements {
            Elements::Floats(floats) => floats,
            Elements::Raw(raw) if raw.len() == count * 4 => floats_from_le(&raw),
            Elements::Raw(raw) => {
                return Err(RequestError::Invalid(format!(
                    "input `{INPUT}` has {} bytes of data; shape {} in FP32 is {} bytes",
                    raw.len(),
                    shape_text(&input.shape),
                    count * 4
                )));
            }
            Elements::Strings(_) => {
                return Err(RequestError::Invalid(format!(
                    "input `{INPUT}` is FP32 but carries BYTES elements"
                )));
            }
        };
        if floats.len() != count {
            return Err(RequestError::Invalid(format!(
                "input `{INPUT}` has {} values; shape {} has {count}",
                floats.len(),
                shape_text(&input.shape)
            )));
        }
        Ok((floats, images))
    }

    /// Encoded images through torchvision's evaluation transform, as the library's `Images`
    /// makes them.
    fn decoded_images(&self, input: Input) -> Result<(Vec<f32>, usize), RequestError> {
        let images = match input.shape.len() {
            1 => self.batch_of(&input, &[])?,
            _ => self.batch_of(&input, &[1])?,
        };
        let strings = match input.elements {
            Elements::Strings(strings) => strings,
            Elements::Raw(raw) => strings_from_raw(&raw, INPUT)?,
            Elements::Floats(_) => {
                return Err(RequestError::Invalid(format!(
                    "input `{INPUT}` is BYTES but carries numbers"
                )));
            }
        };
        if strings.len() != images {
            return Err(RequestError::Invalid(format!(
                "input `{INPUT}` has {} BYTES elements; shape {} has {images}",
                strings.len(),
                shape_text(&input.shape)
            )));
        }
        let mut floats = Vec::with_capacity(images * 3 * self.resolution * self.resolution);
        for (index, encoded) in strings.iter().enumerate() {
            let image = images::decode(encoded).map_err(|error| {
                RequestError::Invalid(format!("input `{INPUT}`, image {index}: {error}"))
            })?;
            floats.extend(images::preprocess(&image, self.resolution, false));
        }
        Ok((floats, images))
    }
}

/// BYTES elements of a JSON request: base64 strings (an encoded image is not text).
pub(crate) fn base64_strings(values: &[&serde_json::Value]) -> Result<Vec<Vec<u8>>, RequestError> {
    values
        .iter()
        .enumerate()
        .map(|(index, value)| {
            let text = value.as_str().ok_or_else(|| {
                RequestError::Invalid(format!(
                    "input `{INPUT}`: BYTES element {index} is not a string (in JSON, each \
                     encoded image is a base64 string)"
                ))
            })?;
            base64::engine::general_purpose::STANDARD
                .decode(text)
                .map_err(|error| {
                    RequestError::Invalid(format!(
                        "input `{INPUT}`: BYTES element {index} is not base64 ({error}); in \
                         JSON, each encoded image is a base64 string, or send it in binary \
                         with the binary tensor extension"
                    ))
                })
        })
        .collect()
}
