//! The protocol over HTTP/REST: health, metadata, inference with JSON tensors and Triton's
//! binary tensor extension, and `/metrics`.

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, State as Shared};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::serve::ListenerExt;
use http_body_util::BodyExt;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::error::{RequestError, ServeError};
use crate::metrics::Protocol;
use crate::model::{self, TensorMetadata, VERSION, base64_strings};
use crate::state::State;
use crate::tensor::{Elements, InferRequest, InferResponse, Input, OutputData, RequestedOutput};

/// The binary tensor extension's header: the length of the JSON part of the body, binary
/// tensor data following it.
const HEADER_LENGTH: &str = "inference-header-content-length";

type SharedState = Shared<Arc<State>>;

pub(crate) async fn serve(
    listener: TcpListener,
    state: Arc<State>,
    mut stopped: watch::Receiver<bool>,
) -> Result<(), ServeError> {
    let model = "/v2/models/{model}";
    let versioned = "/v2/models/{model}/versions/{version}";
    let app = Router::new()
        .route("/v2/health/live", get(StatusCode::OK))
        .route("/v2/health/ready", get(server_ready))
        .route("/v2", get(server_metadata))
        .route(model, get(model_metadata))
        .route(versioned, get(versioned_metadata))
        .route(&format!("{model}/ready"), get(model_ready))
        .route(&format!("{model}/config"), get(model_config))
        .route(&format!("{versioned}/ready"), get(versioned_ready))
        .route(&format!("{model}/infer"), post(infer))
        .route(&format!("{versioned}/infer"), post(versioned_infer))
        .route("/metrics", get(metrics))
        .method_not_allowed_fallback(|| async {
            let error = RequestError::MethodNotAllowed(
                "this endpoint takes GET, or POST for …/infer".into(),
            );
            error_response(&error)
        })
        .fallback(|| async {
            error_response(&RequestError::NotFound(
                "no such endpoint; this server speaks the Open Inference Protocol under /v2, \
                 and serves /metrics"
                    .into(),
            ))
        })
        .with_state(state);
    // Without Nagle's algorithm: a response's last small segment is not held back.
    let listener = listener.tap_io(|stream| {
        if let Err(error) = stream.set_nodelay(true) {
            tracing::warn!(%error, "cannot disable Nagle's algorithm on a connection");
        }
    });
    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            let _ = stopped.wait_for(|&stop| stop).await;
        })
        .await
        .map_err(|e| ServeError::Endpoint {
            protocol: "HTTP",
            reason: e.to_string(),
        })
}

fn error_response(error: &RequestError) -> Response {
    (
        error.http_status(),
        axum::Json(json!({ "error": error.to_string() })),
    )
        .into_response()
}

/// The protocol's health answers: 200 for true, 400 (a 4xx, as it says) for false, no body.
fn health(value: bool) -> StatusCode {
    if value {
        StatusCode::OK
    } else {
        StatusCode::BAD_REQUEST
    }
}

async fn server_ready(Shared(state): SharedState) -> StatusCode {
    health(state.is_ready())
}

async fn server_metadata() -> Response {
    axum::Json(json!({
        "name": "regnet",
        "version": env!("CARGO_PKG_VERSION"),
        "extensions": crate::EXTENSIONS,
    }))
    .into_response()
}

fn tensors_json(tensors: &[TensorMetadata]) -> Value {
    tensors
        .iter()
        .map(|t| json!({ "name": t.name, "datatype": t.datatype, "shape": t.shape }))
        .collect()
}

fn metadata(state: &State, name: &str, version: &str) -> Response {
    match state.model(name, version) {
        Ok(model) => axum::Json(json!({
            "name": model.name,
            "versions": [VERSION],
            "platform": "regnet",
            "inputs": tensors_json(&model.inputs()),
            "outputs": tensors_json(&model.outputs()),
        }))
        .into_response(),
        Err(error) => error_response(&error),
    }
}

/// Triton's model configuration extension, which `perf_analyzer` reads to learn that the
/// first dimension is the batch and how large it may be.
async fn model_config(Shared(state): SharedState, Path(name): Path<String>) -> Response {
    let model = match state.model(&name, "") {
        Ok(model) => model,
        Err(error) => return error_response(&error),
    };
    let r = model.resolution;
    axum::Json(json!({
        "name": model.name,
        "platform": "regnet",
        "max_batch_size": model.max_batch,
        "input": [{"name": model::INPUT, "data_type": "TYPE_FP32", "dims": [3, r, r]}],
        "output": [{"name": model::OUTPUT, "data_type": "TYPE_FP32", "dims": [model.classes]}],
        "dynamic_batching": {
            "max_queue_delay_microseconds": state.config.max_delay.as_micros() as u64,
        },
    }))
    .into_response()
}

async fn model_metadata(Shared(state): SharedState, Path(model): Path<String>) -> Response {
    metadata(&state, &model, "")
}

async fn versioned_metadata(
    Shared(state): SharedState,
    Path((model, version)): Path<(String, String)>,
) -> Response {
    metadata(&state, &model, &version)
}

fn ready(state: &State, name: &str, version: &str) -> Response {
    match state.model(name, version) {
        Ok(model) => health(state.model_ready(model)).into_response(),
        Err(error) => error_response(&error),
    }
}

async fn model_ready(Shared(state): SharedState, Path(model): Path<String>) -> Response {
    ready(&state, &model, "")
}

async fn versioned_ready(
    Shared(state): SharedState,
    Path((model, version)): Path<(String, String)>,
) -> Response {
    ready(&state, &model, &version)
}

async fn metrics(Shared(state): SharedState) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.encode(),
    )
        .into_response()
}

async fn infer(
    Shared(state): SharedState,
    Path(model): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    run(&state, &model, "", &headers, body).await
}

async fn versioned_infer(
    Shared(state): SharedState,
    Path((model, version)): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    run(&state, &model, &version, &headers, body).await
}

async fn run(
    state: &State,
    model: &str,
    version: &str,
    headers: &HeaderMap,
    body: Body,
) -> Response {
    let arrived = Instant::now();
    // Admitted before a byte of the body is kept.
    let admitted = match state.admit(model, version) {
        Ok(admitted) => read_request(headers, body, state.config.max_body)
            .await
            .map(|request| (admitted, request)),
        Err(error) => {
            discard(body).await;
            Err(error)
        }
    };
    match state.infer(Protocol::Http, model, admitted, arrived).await {
        Ok(response) => response_body(&response),
        Err(error) => error_response(&error),
    }
}

#[derive(Deserialize)]
struct JsonRequest {
    #[serde(default)]
    id: String,
    #[serde(default)]
    parameters: Map<String, Value>,
    inputs: Vec<JsonInput>,
    outputs: Option<Vec<JsonOutput>>,
}

#[derive(Deserialize)]
struct JsonInput {
    name: String,
    shape: Vec<i64>,
    datatype: String,
    #[serde(default)]
    parameters: Map<String, Value>,
    data: Option<Value>,
}

#[derive(Deserialize)]
struct JsonOutput {
    name: String,
    #[serde(default)]
    parameters: Map<String, Value>,
}

async fn read_request(
    headers: &HeaderMap,
    body: Body,
    max_body: usize,
) -> Result<InferRequest, RequestError> {
    let body = read_body(headers, body, max_body).await?;
    let json_length = match headers.get(HEADER_LENGTH) {
        None => body.len(),
        Some(value) => value
            .to_str()
            .ok()
            .and_then(|v| v.trim().parse::<usize>().ok())
            .filter(|&length| length <= body.len())
            .ok_or_else(|| {
                RequestError::Malformed(format!(
                    "the Inference-Header-Content-Length header must be the length of the \
                     JSON part of the body, a number from 0 to {}",
                    body.len()
                ))
            })?,
    };
    let (json_part, mut binary) = body.split_at(json_length);
    let request: JsonRequest = serde_json::from_slice(json_part).map_err(|error| {
        RequestError::Malformed(format!("the JSON is not an inference request: {error}"))
    })?;
    let mut inputs = Vec::with_capacity(request.inputs.len());
    for input in request.inputs {
        let elements = match binary_size(&input.parameters, &input.name)? {
            Some(size) => {
                if size > binary.len() {
                    return Err(RequestError::Malformed(format!(
                        "input `{}` has binary_data_size {size}, but only {} bytes of binary \
                         data remain after the JSON",
                        input.name,
                        binary.len()
                    )));
                }
                let (own, rest) = binary.split_at(size);
                binary = rest;
                Elements::Raw(own.to_vec())
            }
            None => json_elements(&input)?,
        };
        inputs.push(Input {
            name: input.name,
            datatype: input.datatype,
            shape: input.shape,
            elements,
        });
    }
    if !binary.is_empty() {
        return Err(RequestError::Malformed(format!(
            "{} bytes of binary data follow the JSON that no input's binary_data_size claims",
            binary.len()
        )));
    }
    let binary_outputs =
        bool_parameter(&request.parameters, "binary_data_output")?.unwrap_or(false);
    let outputs = match request.outputs {
        None => None,
        Some(outputs) => Some(
            outputs
                .into_iter()
                .map(|output| {
                    Ok(RequestedOutput {
                        classification: classification(&output.parameters)?,
                        binary: bool_parameter(&output.parameters, "binary_data")?
                            .unwrap_or(binary_outputs),
                        name: output.name,
                    })
                })
                .collect::<Result<_, RequestError>>()?,
        ),
    };
    Ok(InferRequest {
        id: request.id,
        inputs,
        outputs,
        binary_outputs,
    })
}

/// How much of a body over the limit is read and thrown away before the refusal is sent: a
/// client that writes its whole body before reading (most do) would otherwise see its
/// connection reset instead of the 413. Beyond this the connection is closed after the answer.
const DRAINED_BYTES: usize = 256 << 20;

/// Reads and drops a refused request's body (up to [`DRAINED_BYTES`]), so that the client reads
/// the refusal instead of a reset connection.
async fn discard(body: Body) {
    // A limit of nothing keeps nothing: every byte is drained, up to DRAINED_BYTES.
    let _ = read_body(&HeaderMap::new(), body, 0).await;
}

/// The body, at most `max_body` bytes of it.
async fn read_body(
    headers: &HeaderMap,
    mut body: Body,
    max_body: usize,
) -> Result<Vec<u8>, RequestError> {
    // A declared length over the limit is refused without keeping a byte of the body.
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let mut over = declared.is_some_and(|length| length > max_body as u64);
    let mut kept = Vec::with_capacity(if over {
        0
    } else {
        declared.unwrap_or(0) as usize
    });
    let mut drained = 0usize;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|error| {
            RequestError::Malformed(format!("the body could not be read: {error}"))
        })?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        if over || kept.len() + data.len() > max_body {
            over = true;
            drained += data.len();
            if drained > DRAINED_BYTES {
                break;
            }
        } else {
            kept.extend_from_slice(&data);
        }
    }
    if over {
        return Err(RequestError::TooLarge { limit: max_body });
    }
    Ok(kept)
}

fn binary_size(
    parameters: &Map<String, Value>,
    input: &str,
) -> Result<Option<usize>, RequestError> {
    match parameters.get("binary_data_size") {
        None => Ok(None),
        Some(value) => value
            .as_u64()
            .and_then(|size| usize::try_from(size).ok())
            .map(Some)
            .ok_or_else(|| {
                RequestError::Malformed(format!(
                    "input `{input}`: binary_data_size must be a number of bytes, not {value}"
                ))
            }),
    }
}

fn bool_parameter(
    parameters: &Map<String, Value>,
    name: &str,
) -> Result<Option<bool>, RequestError> {
    match parameters.get(name) {
        None => Ok(None),
        Some(Value::Bool(value)) => Ok(Some(*value)),
        Some(other) => Err(RequestError::Malformed(format!(
            "parameter `{name}` must be true or false, not {other}"
        ))),
    }
}

/// The classification extension's `"classification": k`.
pub(crate) fn classification(
    parameters: &Map<String, Value>,
) -> Result<Option<usize>, RequestError> {
    match parameters.get("classification") {
        None => Ok(None),
        Some(value) => value
            .as_u64()
            .and_then(|k| usize::try_from(k).ok())
            .map(Some)
            .ok_or_else(|| {
                RequestError::Malformed(format!(
                    "parameter `classification` must be a count of classes, not {value}"
                ))
            }),
    }
}

/// An input's `data`: numbers (flat or nested row-major arrays) or, for BYTES, base64 strings.
fn json_elements(input: &JsonInput) -> Result<Elements, RequestError> {
    let Some(data) = &input.data else {
        return Err(RequestError::Malformed(format!(
            "input `{}` has neither `data` nor a binary_data_size parameter",
            input.name
        )));
    };
    let mut flat = Vec::new();
    flatten(data, &mut flat);
    if input.datatype == "BYTES" {
        return base64_strings(&flat).map(Elements::Strings);
    }
    flat.iter()
        .enumerate()
        .map(|(index, value)| {
            // JSON numbers are read as f64 and rounded to f32, as numpy's float32 does.
            value.as_f64().map(|v| v as f32).ok_or_else(|| {
                RequestError::Invalid(format!(
                    "input `{}`: data element {index} is {value}, not a number",
                    input.name
                ))
            })
        })
        .collect::<Result<_, _>>()
        .map(Elements::Floats)
}

fn flatten<'v>(value: &'v Value, flat: &mut Vec<&'v Value>) {
    match value {
        Value::Array(items) => items.iter().for_each(|item| flatten(item, flat)),
        other => flat.push(other),
    }
}

/// The response: JSON, with the outputs asked for in binary after it (and the header saying
/// where the JSON ends). Non-finite logits are written as Python's `json` writes and reads
/// them (`NaN`, `Infinity`, `-Infinity`): a NaN stays a NaN instead of becoming `null`.
fn response_body(response: &InferResponse) -> Response {
    let mut text = String::from("{\"model_name\":");
    text.push_str(&json_string(&response.model_name));
    text.push_str(",\"model_version\":");
    text.push_str(&json_string(&response.model_version));
    if !response.id.is_empty() {
        text.push_str(",\"id\":");
        text.push_str(&json_string(&response.id));
    }
    text.push_str(",\"outputs\":[");
    let mut binary = Vec::new();
    for (i, output) in response.outputs.iter().enumerate() {
        if i > 0 {
            text.push(',');
        }
        text.push_str(&format!(
            "{{\"name\":{},\"datatype\":\"{}\",\"shape\":{}",
            json_string(&output.name),
            output.datatype(),
            serde_json::to_string(&output.shape).unwrap_or_default()
        ));
        if output.binary {
            let raw = output.raw();
            text.push_str(&format!(
                ",\"parameters\":{{\"binary_data_size\":{}}}}}",
                raw.len()
            ));
            binary.extend_from_slice(&raw);
            continue;
        }
        text.push_str(",\"data\":[");
        match &output.data {
            OutputData::Floats(values) => {
                for (j, value) in values.iter().enumerate() {
                    if j > 0 {
                        text.push(',');
                    }
                    text.push_str(&float_json(*value));
                }
            }
            OutputData::Strings(strings) => {
                for (j, string) in strings.iter().enumerate() {
                    if j > 0 {
                        text.push(',');
                    }
                    text.push_str(&json_string(string));
                }
            }
        }
        text.push_str("]}");
    }
    text.push_str("]}");
    if binary.is_empty() {
        return ([(header::CONTENT_TYPE, "application/json")], text).into_response();
    }
    let json_length = HeaderValue::from(text.len());
    let mut body = text.into_bytes();
    body.extend_from_slice(&binary);
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/octet-stream"),
            ),
            (header::HeaderName::from_static(HEADER_LENGTH), json_length),
        ],
        body,
    )
        .into_response()
}

fn json_string(text: &str) -> String {
    // Serializing a string cannot fail.
    serde_json::to_string(text).unwrap_or_default()
}

fn float_json(value: f32) -> String {
    if value.is_nan() {
        "NaN".into()
    } else if value.is_infinite() {
        if value > 0.0 { "Infinity" } else { "-Infinity" }.into()
    } else {
        serde_json::to_string(&value).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::float_json;

    #[test]
    fn floats_round_trip_through_their_json_text() {
        for value in [0.1f32, -3.4028235e38, 1e-45, 0.33282286, -0.0] {
            let text = float_json(value);
            assert_eq!(
                text.parse::<f32>().unwrap().to_bits(),
                value.to_bits(),
                "{text}"
            );
        }
        assert_eq!(float_json(f32::NAN), "NaN");
        assert_eq!(float_json(f32::NEG_INFINITY), "-Infinity");
    }
}
