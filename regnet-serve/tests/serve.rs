//! The server over loopback: every endpoint of both protocols, every tensor encoding, bad
//! requests, backpressure, graceful shutdown, and a thousand concurrent requests each answered
//! with the bits of a direct forward pass.

mod common;

use base64::Engine;
use common::*;
use regnet_serve::proto::{self, InferParameter, ModelInferRequest, model_infer_request};

fn grpc_request(images: usize, input: &[f32], classification: Option<i64>) -> ModelInferRequest {
    let outputs = classification
        .map(|k| {
            vec![model_infer_request::InferRequestedOutputTensor {
                name: "logits".into(),
                parameters: [(
                    "classification".to_owned(),
                    InferParameter {
                        parameter_choice: Some(
                            proto::infer_parameter::ParameterChoice::Int64Param(k),
                        ),
                    },
                )]
                .into(),
            }]
        })
        .unwrap_or_default();
    ModelInferRequest {
        model_name: "small".into(),
        id: "request-7".into(),
        inputs: vec![model_infer_request::InferInputTensor {
            name: "input".into(),
            datatype: "FP32".into(),
            shape: vec![images as i64, 3, 96, 96],
            ..Default::default()
        }],
        outputs,
        raw_input_contents: vec![le_bytes(input)],
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_and_metadata_answer_as_the_protocol_says() {
    let server = start_small(config(8, 16), 1).await;
    let http = reqwest::Client::new();
    let get = |path: &str| http.get(url(&server, path)).send();
    for path in [
        "/v2/health/live",
        "/v2/health/ready",
        "/v2/models/small/ready",
        "/v2/models/small/versions/1/ready",
    ] {
        assert_eq!(get(path).await.unwrap().status(), 200, "{path}");
    }
    let server_metadata: serde_json::Value = get("/v2").await.unwrap().json().await.unwrap();
    assert_eq!(server_metadata["name"], "regnet");
    assert_eq!(
        server_metadata["extensions"],
        serde_json::json!(["classification", "binary_tensor_data"])
    );
    for path in ["/v2/models/small", "/v2/models/small/versions/1"] {
        let metadata: serde_json::Value = get(path).await.unwrap().json().await.unwrap();
        assert_eq!(
            metadata,
            serde_json::json!({
                "name": "small", "versions": ["1"], "platform": "regnet",
                "inputs": [{"name": "input", "datatype": "FP32", "shape": [-1, 3, 96, 96]}],
                "outputs": [{"name": "logits", "datatype": "FP32", "shape": [-1, 1000]}],
            }),
            "{path}"
        );
    }
    // Triton's model configuration, which perf_analyzer reads.
    let model_config: serde_json::Value = get("/v2/models/small/config")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(model_config["max_batch_size"], 8);
    assert_eq!(
        model_config["input"][0]["dims"],
        serde_json::json!([3, 96, 96])
    );
    assert_eq!(model_config["output"][0]["dims"], serde_json::json!([1000]));
    // Prometheus's text format, ending as OpenMetrics requires.
    let metrics = get("/metrics").await.unwrap().text().await.unwrap();
    assert!(
        metrics.contains("# TYPE regnet_queue_depth gauge"),
        "{metrics}"
    );
    assert!(
        metrics.contains("regnet_queue_depth{model=\"small\"} 0"),
        "{metrics}"
    );
    assert!(metrics.ends_with("# EOF\n"), "{metrics}");
    for (path, message) in [
        ("/v2/models/big", "no model `big`; this server has: small"),
        ("/v2/models/big/ready", "no model `big`"),
        (
            "/v2/models/small/versions/2",
            "model `small` has no version `2`; it has version 1",
        ),
        ("/v1/models", "no such endpoint"),
    ] {
        let response = get(path).await.unwrap();
        assert_eq!(response.status(), 404, "{path}");
        let body: serde_json::Value = response.json().await.unwrap();
        assert!(
            body["error"].as_str().unwrap().contains(message),
            "{path}: {body}"
        );
    }

    let mut grpc = grpc(&server).await;
    assert!(
        grpc.server_live(proto::ServerLiveRequest {})
            .await
            .unwrap()
            .into_inner()
            .live
    );
    assert!(
        grpc.server_ready(proto::ServerReadyRequest {})
            .await
            .unwrap()
            .into_inner()
            .ready
    );
    let ready = grpc
        .model_ready(proto::ModelReadyRequest {
            name: "small".into(),
            version: String::new(),
        })
        .await
        .unwrap();
    assert!(ready.into_inner().ready);
    let metadata = grpc
        .model_metadata(proto::ModelMetadataRequest {
            name: "small".into(),
            version: "1".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(metadata.inputs[0].shape, [-1, 3, 96, 96]);
    assert_eq!(metadata.outputs[0].name, "logits");
    assert_eq!(metadata.outputs[0].shape, [-1, 1000]);
    let server_metadata = grpc
        .server_metadata(proto::ServerMetadataRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        server_metadata.extensions,
        ["classification", "binary_tensor_data"]
    );
    let missing = grpc
        .model_metadata(proto::ModelMetadataRequest {
            name: "big".into(),
            version: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(missing.code(), tonic::Code::NotFound);
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_tensor_encoding_gives_the_bits_of_a_direct_forward() {
    let server = start_small(config(8, 16), 2).await;
    let mut direct = Direct::new(SMALL, 2);
    let input = input(5, 3);
    let want = direct.logits(&input);
    let http = reqwest::Client::new();
    let infer = url(&server, "/v2/models/small/infer");

    // JSON data, nested as [N][3][96][96] the way numpy's tolist() writes it.
    let nested: Vec<Vec<Vec<&[f32]>>> = input
        .chunks(3 * 96 * 96)
        .map(|image| {
            image
                .chunks(96 * 96)
                .map(|c| c.chunks(96).collect())
                .collect()
        })
        .collect();
    let json = serde_json::json!({
        "id": "r1",
        "inputs": [{"name": "input", "datatype": "FP32", "shape": [3, 3, 96, 96], "data": nested}]
    });
    let response = http.post(&infer).json(&json).send().await.unwrap();
    assert_eq!(bits(&http_logits(response).await), bits(&want), "JSON");

    // The binary extension, both ways, on the versioned path.
    for binary_output in [false, true] {
        let versioned = url(&server, "/v2/models/small/versions/1/infer");
        let response =
            post_binary(&http, &versioned, binary_request(3, &input, binary_output)).await;
        assert_eq!(
            response
                .headers()
                .contains_key("inference-header-content-length"),
            binary_output
        );
        assert_eq!(bits(&http_logits(response).await), bits(&want), "binary");
    }

    // gRPC, raw contents and typed contents.
    let mut grpc = grpc(&server).await;
    let response = grpc
        .model_infer(grpc_request(3, &input, None))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(response.id, "request-7");
    assert_eq!(response.outputs[0].shape, [3, 1000]);
    assert_eq!(response.outputs[0].datatype, "FP32");
    assert_eq!(
        bits(&floats(&response.raw_output_contents[0])),
        bits(&want),
        "gRPC raw"
    );
    let mut typed = grpc_request(3, &input, None);
    typed.raw_input_contents.clear();
    typed.inputs[0].contents = Some(proto::InferTensorContents {
        fp32_contents: input.clone(),
        ..Default::default()
    });
    let response = grpc.model_infer(typed).await.unwrap().into_inner();
    assert_eq!(
        bits(&floats(&response.raw_output_contents[0])),
        bits(&want),
        "gRPC typed"
    );

    // Classification: the top 3 of each image, best first, by both protocols.
    let top3 = |row: &[f32]| {
        let mut order: Vec<usize> = (0..row.len()).collect();
        order.sort_by(|&a, &b| row[b].total_cmp(&row[a]));
        order[..3]
            .iter()
            .map(|&i| format!("{}:{i}:class {i}", row[i]))
            .collect::<Vec<_>>()
    };
    let expected: Vec<String> = want.chunks(1000).flat_map(top3).collect();
    let json = serde_json::json!({
        "inputs": [{"name": "input", "datatype": "FP32", "shape": [3, 3, 96, 96], "data": input}],
        "outputs": [{"name": "logits", "parameters": {"classification": 3}}]
    });
    let response: serde_json::Value = http
        .post(&infer)
        .json(&json)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(response["outputs"][0]["datatype"], "BYTES");
    assert_eq!(response["outputs"][0]["shape"], serde_json::json!([3, 3]));
    assert_eq!(response["outputs"][0]["data"], serde_json::json!(expected));
    let response = grpc
        .model_infer(grpc_request(3, &input, Some(3)))
        .await
        .unwrap()
        .into_inner();
    let mut raw = &response.raw_output_contents[0][..];
    let mut strings = Vec::new();
    while !raw.is_empty() {
        let length = u32::from_le_bytes(raw[..4].try_into().unwrap()) as usize;
        strings.push(String::from_utf8(raw[4..4 + length].to_vec()).unwrap());
        raw = &raw[4 + length..];
    }
    assert_eq!(strings, expected);
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn encoded_images_go_through_the_librarys_transform() {
    let server = start_small(config(8, 16), 3).await;
    let png = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../regnet-cli/tests/images/landscape.png"
    ))
    .unwrap();
    let image = regnet::runtime::images::decode(&png).unwrap();
    let tensor = regnet::runtime::images::preprocess(&image, 96, false);
    let mut direct = Direct::new(SMALL, 3);
    let want: Vec<f32> = [direct.logits(&tensor), direct.logits(&tensor)].concat();
    let http = reqwest::Client::new();
    let infer = url(&server, "/v2/models/small/infer");

    // Binary BYTES: each element behind its 4-byte length.
    let mut raw = Vec::new();
    for _ in 0..2 {
        raw.extend((png.len() as u32).to_le_bytes());
        raw.extend(&png);
    }
    let header = serde_json::json!({
        "inputs": [{"name": "input", "datatype": "BYTES", "shape": [2],
                    "parameters": {"binary_data_size": raw.len()}}]
    })
    .to_string();
    let response = http
        .post(&infer)
        .header("Inference-Header-Content-Length", header.len())
        .body([header.into_bytes(), raw.clone()].concat())
        .send()
        .await
        .unwrap();
    assert_eq!(
        bits(&http_logits(response).await),
        bits(&want),
        "binary BYTES"
    );

    // JSON: base64 strings, shape [N, 1].
    let encoded = base64::engine::general_purpose::STANDARD.encode(&png);
    let json = serde_json::json!({
        "inputs": [{"name": "input", "datatype": "BYTES", "shape": [2, 1], "data": [encoded, encoded]}]
    });
    let response = http.post(&infer).json(&json).send().await.unwrap();
    assert_eq!(
        bits(&http_logits(response).await),
        bits(&want),
        "base64 BYTES"
    );

    // gRPC: bytes_contents.
    let mut grpc = grpc(&server).await;
    let request = ModelInferRequest {
        model_name: "small".into(),
        inputs: vec![model_infer_request::InferInputTensor {
            name: "input".into(),
            datatype: "BYTES".into(),
            shape: vec![2],
            contents: Some(proto::InferTensorContents {
                bytes_contents: vec![png.clone(), png.clone()],
                ..Default::default()
            }),
            ..Default::default()
        }],
        ..Default::default()
    };
    let response = grpc.model_infer(request).await.unwrap().into_inner();
    assert_eq!(
        bits(&floats(&response.raw_output_contents[0])),
        bits(&want),
        "gRPC BYTES"
    );

    // Not an image: the decoder's reason, for the right element.
    let mut corrupt = png.clone();
    corrupt.truncate(100);
    let json = serde_json::json!({
        "inputs": [{"name": "input", "datatype": "BYTES", "shape": [2],
                    "data": [encoded, base64::engine::general_purpose::STANDARD.encode(&corrupt)]}]
    });
    let (status, message) = refusal(http.post(&infer).json(&json).send().await.unwrap()).await;
    assert_eq!(status, 400);
    assert!(message.starts_with("input `input`, image 1: "), "{message}");
    server.shutdown().await.unwrap();
}
