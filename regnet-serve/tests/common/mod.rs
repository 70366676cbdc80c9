//! What the server tests share: a small network, a server on loopback, clients, inputs.

#![allow(dead_code)]

use std::time::Duration;

use regnet::runtime::spec::Architecture;
use regnet::runtime::{Network, Options, Workspace};
use regnet_serve::proto::grpc_inference_service_client::GrpcInferenceServiceClient;
use regnet_serve::{Config, ModelSource, Server};
use tonic::transport::Channel;

/// RegNetY-200MF at 96×96: every kind of layer at a sixth of the work.
pub const SMALL: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../tests/fixtures/concurrency/regnety_200mf_96px.yaml"
);

pub fn architecture(spec: &str) -> Architecture<'static> {
    // Networks take a `'static` architecture: the compiled spec lives as long as the test.
    let compiled = Box::leak(Box::new(
        regnet::runtime::spec::compile_file(std::path::Path::new(spec), spec).unwrap(),
    ));
    compiled.architecture(compiled.display_name("small"))
}

/// The forward passes of the tests, on the server and directly alike.
pub fn options() -> Options {
    Options {
        threads: 1,
        ..Options::default()
    }
}

/// Loopback, any free ports, the given limits.
pub fn config(max_batch: usize, max_queue: usize) -> Config {
    Config {
        http: "127.0.0.1:0".parse().unwrap(),
        grpc: "127.0.0.1:0".parse().unwrap(),
        max_batch,
        max_delay: Duration::from_millis(2),
        max_queue,
        max_body: 16 << 20,
        options: options(),
    }
}

/// RegNetY-1.6GF, a network slow enough (tens of milliseconds an image) that a test can tell
/// waiting for it from not waiting.
pub const SLOW: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../specs/regnety_1.6gf.yaml");

/// The small network with random weights from `seed`, served as "small", ready.
pub async fn start_small(config: Config, seed: u64) -> Server {
    start(SMALL, config, seed).await
}

/// The network of `spec` with random weights from `seed`, served as "small", ready.
pub async fn start(spec: &str, config: Config, seed: u64) -> Server {
    let architecture = architecture(spec);
    let source = ModelSource {
        name: "small".into(),
        architecture,
        labels: Some((0..1000).map(|i| format!("class {i}")).collect()),
        load: Box::new(move || Network::random(architecture, seed).map_err(|e| e.to_string())),
    };
    let server = Server::start(config, vec![source]).await.unwrap();
    server.loaded().await.unwrap();
    server
}

/// Logits of a direct forward pass, what every served answer must equal bit for bit.
pub struct Direct {
    network: Network,
    workspace: Workspace,
}

impl Direct {
    pub fn new(spec: &str, seed: u64) -> Self {
        let architecture = architecture(spec);
        Direct {
            network: Network::random(architecture, seed).unwrap(),
            workspace: Workspace::with_options(&architecture, 8, options()).unwrap(),
        }
    }

    pub fn logits(&mut self, input: &[f32]) -> Vec<f32> {
        self.network
            .forward(input, &mut self.workspace)
            .unwrap()
            .to_vec()
    }
}

/// `images` images of the small network's size, values from a seeded sequence.
pub fn input(seed: u64, images: usize) -> Vec<f32> {
    input_of(96, seed, images)
}

/// `images` images of `resolution`², values from a seeded sequence.
pub fn input_of(resolution: usize, seed: u64, images: usize) -> Vec<f32> {
    let mut state = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..images * 3 * resolution * resolution)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % 4001) as f32 / 1000.0 - 2.0
        })
        .collect()
}

pub fn bits(values: &[f32]) -> Vec<u32> {
    values.iter().map(|v| v.to_bits()).collect()
}

pub async fn grpc(server: &Server) -> GrpcInferenceServiceClient<Channel> {
    GrpcInferenceServiceClient::connect(format!("http://{}", server.grpc_addr()))
        .await
        .unwrap()
}

pub fn url(server: &Server, path: &str) -> String {
    format!("http://{}{path}", server.http_addr())
}

pub fn le_bytes(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

pub fn floats(raw: &[u8]) -> Vec<f32> {
    raw.chunks_exact(4)
        .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
        .collect()
}

/// A request in Triton's binary tensor extension: the JSON, then the input's bytes.
pub fn binary_request(images: usize, input: &[f32], binary_output: bool) -> (Vec<u8>, usize) {
    let resolution = ((input.len() / images / 3) as f64).sqrt() as usize;
    let header = serde_json::json!({
        "inputs": [{
            "name": "input", "datatype": "FP32", "shape": [images, 3, resolution, resolution],
            "parameters": {"binary_data_size": input.len() * 4}
        }],
        "outputs": [{"name": "logits", "parameters": {"binary_data": binary_output}}]
    })
    .to_string();
    let mut body = header.clone().into_bytes();
    body.extend(le_bytes(input));
    (body, header.len())
}

/// Posts a request made by [`binary_request`].
pub async fn post_binary(
    http: &reqwest::Client,
    url: &str,
    (body, json_length): (Vec<u8>, usize),
) -> reqwest::Response {
    http.post(url)
        .header("Inference-Header-Content-Length", json_length)
        .body(body)
        .send()
        .await
        .unwrap()
}

/// A refusal's status and its `{"error": …}` message.
pub async fn refusal(response: reqwest::Response) -> (u16, String) {
    let status = response.status().as_u16();
    let body: serde_json::Value = response.json().await.unwrap();
    (status, body["error"].as_str().unwrap().to_owned())
}

/// The logits of an HTTP response, JSON or binary.
pub async fn http_logits(response: reqwest::Response) -> Vec<f32> {
    assert_eq!(response.status(), 200);
    let json_length: Option<usize> = response
        .headers()
        .get("inference-header-content-length")
        .map(|v| v.to_str().unwrap().parse().unwrap());
    let body = response.bytes().await.unwrap();
    let json_length = json_length.unwrap_or(body.len());
    let header: serde_json::Value = serde_json::from_slice(&body[..json_length]).unwrap();
    let output = &header["outputs"][0];
    assert_eq!(output["name"], "logits");
    match output["data"].as_array() {
        Some(data) => data.iter().map(|v| v.as_f64().unwrap() as f32).collect(),
        None => floats(&body[json_length..]),
    }
}
