//! Every kind of bad request gets its status and a message that says what to send instead,
//! over both protocols; the connection is never dropped without one. With `--nocapture` the
//! test prints the table the README shows.

mod common;

use bytes::{Buf, BufMut};
use common::*;
use regnet_serve::proto::{self, InferParameter, ModelInferRequest, model_infer_request};
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};

/// Bodies sent as they are, to send what no protobuf library would.
#[derive(Clone, Copy, Default)]
struct RawBytes;

impl Codec for RawBytes {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = RawBytes;
    type Decoder = RawBytes;
    fn encoder(&mut self) -> RawBytes {
        RawBytes
    }
    fn decoder(&mut self) -> RawBytes {
        RawBytes
    }
}

impl Encoder for RawBytes {
    type Item = Vec<u8>;
    type Error = tonic::Status;
    fn encode(&mut self, item: Vec<u8>, dst: &mut EncodeBuf<'_>) -> Result<(), tonic::Status> {
        dst.put_slice(&item);
        Ok(())
    }
}

impl Decoder for RawBytes {
    type Item = Vec<u8>;
    type Error = tonic::Status;
    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Vec<u8>>, tonic::Status> {
        let bytes = src.chunk().to_vec();
        src.advance(bytes.len());
        Ok(Some(bytes))
    }
}

/// A bad HTTP request: what it is, URL, body, Inference-Header-Content-Length, the status it
/// gets and a fragment of its message.
type HttpCase = (
    &'static str,
    String,
    Vec<u8>,
    Option<usize>,
    u16,
    &'static str,
);

fn row(protocol: &str, case: &str, status: &str, message: &str) {
    println!(
        "| {protocol} | {case} | {status} | {} |",
        message.replace('|', "\\|")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_bad_request_gets_its_status_and_says_what_to_send() {
    let mut config = config(8, 16);
    config.max_body = 4 << 20;
    let server = start_small(config, 7).await;
    let http = reqwest::Client::new();
    let infer = url(&server, "/v2/models/small/infer");
    let image = input(1, 1);
    let fp32 = |shape: serde_json::Value, data: &[f32]| {
        serde_json::json!({"inputs": [{"name": "input", "datatype": "FP32", "shape": shape, "data": data}]})
            .to_string()
    };
    let good_shape = serde_json::json!([1, 3, 96, 96]);
    let (binary, header) = binary_request(1, &image, true);
    let cases: Vec<HttpCase> = vec![
        ("malformed JSON", infer.clone(), b"{\"inputs\": [".to_vec(), None, 400,
         "malformed request: the JSON is not an inference request: EOF while parsing"),
        ("JSON without inputs", infer.clone(), b"{\"id\": \"x\"}".to_vec(), None, 400,
         "missing field `inputs`"),
        ("wrong datatype", infer.clone(),
         fp32(good_shape.clone(), &image).replace("FP32", "INT64").into_bytes(), None, 400,
         "input `input` has datatype INT64; this model takes one input `input`: FP32 [N,3,96,96]"),
        ("wrong shape", infer.clone(),
         fp32(serde_json::json!([1, 3, 224, 224]), &image).into_bytes(), None, 400,
         "input `input` has shape [1,3,224,224]; this model takes one input `input`: FP32 [N,3,96,96] (normalized NCHW images) or BYTES [N] (encoded JPEG, PNG or WebP images), N from 1 to 8"),
        ("batch over --max-batch", infer.clone(),
         fp32(serde_json::json!([9, 3, 96, 96]), &image).into_bytes(), None, 400,
         "has shape [9,3,96,96]"),
        ("too few values", infer.clone(), fp32(good_shape.clone(), &image[..5]).into_bytes(), None,
         400, "input `input` has 5 values; shape [1,3,96,96] has 27648"),
        ("a value that is not a number", infer.clone(),
         serde_json::json!({"inputs": [{"name": "input", "datatype": "FP32", "shape": [1, 3, 96, 96], "data": ["x", 1.0]}]})
             .to_string().into_bytes(),
         None, 400, "data element 0 is \"x\", not a number"),
        ("wrong input name", infer.clone(),
         fp32(good_shape.clone(), &image).replace("\"input\"", "\"images\"").into_bytes(), None,
         400, "no input `images`; this model takes one input `input`"),
        ("wrong output name", infer.clone(),
         serde_json::json!({"inputs": [{"name": "input", "datatype": "FP32", "shape": [1, 3, 96, 96], "data": image}],
                            "outputs": [{"name": "probabilities"}]}).to_string().into_bytes(),
         None, 400, "no output `probabilities`; this model's output is `logits`, FP32 [N,1000]"),
        ("classification not a count", infer.clone(),
         serde_json::json!({"inputs": [{"name": "input", "datatype": "FP32", "shape": [1, 3, 96, 96], "data": image}],
                            "outputs": [{"name": "logits", "parameters": {"classification": "five"}}]}).to_string().into_bytes(),
         None, 400, "parameter `classification` must be a count of classes, not \"five\""),
        ("BYTES that is not base64", infer.clone(),
         br#"{"inputs": [{"name": "input", "datatype": "BYTES", "shape": [1], "data": ["%%%"]}]}"#.to_vec(),
         None, 400, "BYTES element 0 is not base64"),
        ("header length past the body", infer.clone(), binary.clone(), Some(binary.len() + 1), 400,
         "the Inference-Header-Content-Length header must be the length of the JSON part"),
        ("binary data shorter than declared", infer.clone(), binary[..binary.len() - 4].to_vec(),
         Some(header), 400, "has binary_data_size 110592, but only 110588 bytes"),
        ("binary data longer than declared", infer.clone(), [binary.clone(), vec![0; 4]].concat(),
         Some(header), 400, "4 bytes of binary data follow the JSON"),
        ("body over --max-body", infer.clone(), vec![b' '; (4 << 20) + 1], None, 413,
         "the request body has more than 4194304 bytes, this server's --max-body"),
        ("unknown model", url(&server, "/v2/models/big/infer"), binary.clone(), Some(header), 404,
         "no model `big`; this server has: small"),
        ("unknown version", url(&server, "/v2/models/small/versions/3/infer"), binary.clone(),
         Some(header), 404, "model `small` has no version `3`; it has version 1"),
    ];
    println!("| protocol | request | status | message |\n|---|---|---|---|");
    for (case, url, body, json_length, status, fragment) in cases {
        let mut request = http.post(&url).body(body);
        if let Some(length) = json_length {
            request = request.header("Inference-Header-Content-Length", length);
        }
        let (got, message) = refusal(request.send().await.unwrap()).await;
        assert_eq!(got, status, "{case}");
        assert!(message.contains(fragment), "{case}: {message}");
        row("HTTP", case, &status.to_string(), &message);
    }

    let (status, message) = refusal(http.get(&infer).send().await.unwrap()).await;
    assert_eq!(status, 405);
    assert!(message.contains("POST for …/infer"), "{message}");
    row("HTTP", "GET on …/infer", "405", &message);

    // NaN is a value, not an error: it comes back as NaN (in JSON as Python writes it).
    let mut with_nan = image.clone();
    with_nan[0] = f32::NAN;
    let response = post_binary(&http, &infer, binary_request(1, &with_nan, false)).await;
    assert_eq!(response.status(), 200);
    let text = response.text().await.unwrap();
    assert!(text.contains("\"data\":[NaN,NaN"), "{}", &text[..200]);

    // gRPC: the same refusals by code; and a message that is not protobuf at all.
    let mut grpc = grpc(&server).await;
    let request = |shape: Vec<i64>, raw: Vec<Vec<u8>>| ModelInferRequest {
        model_name: "small".into(),
        inputs: vec![model_infer_request::InferInputTensor {
            name: "input".into(),
            datatype: "FP32".into(),
            shape,
            ..Default::default()
        }],
        raw_input_contents: raw,
        ..Default::default()
    };
    let raw = le_bytes(&image);
    let mut wrong_parameter = request(vec![1, 3, 96, 96], vec![raw.clone()]);
    wrong_parameter.outputs = vec![model_infer_request::InferRequestedOutputTensor {
        name: "logits".into(),
        parameters: [(
            "classification".to_owned(),
            InferParameter {
                parameter_choice: Some(proto::infer_parameter::ParameterChoice::StringParam(
                    "5".into(),
                )),
            },
        )]
        .into(),
    }];
    let mut unknown = request(vec![1, 3, 96, 96], vec![raw.clone()]);
    unknown.model_name = "big".into();
    let cases = vec![
        (
            "wrong shape",
            request(vec![1, 3, 96, 95], vec![raw.clone()]),
            tonic::Code::InvalidArgument,
            "input `input` has shape [1,3,96,95]",
        ),
        (
            "raw contents short",
            request(vec![1, 3, 96, 96], vec![raw[..100].to_vec()]),
            tonic::Code::InvalidArgument,
            "input `input` has 100 bytes of data; shape [1,3,96,96] in FP32 is 110592 bytes",
        ),
        (
            "raw contents for two inputs",
            request(vec![1, 3, 96, 96], vec![raw.clone(), raw.clone()]),
            tonic::Code::InvalidArgument,
            "raw_input_contents has 2 entries for 1 inputs",
        ),
        (
            "classification not int64",
            wrong_parameter,
            tonic::Code::InvalidArgument,
            "parameter `classification` must be an int64_param",
        ),
        (
            "unknown model",
            unknown,
            tonic::Code::NotFound,
            "no model `big`",
        ),
        (
            "message over --max-body",
            request(vec![40, 3, 96, 96], vec![raw.repeat(40)]),
            tonic::Code::OutOfRange,
            "decoded message length too large",
        ),
    ];
    for (case, request, code, fragment) in cases {
        let status = grpc.model_infer(request).await.unwrap_err();
        assert_eq!(status.code(), code, "{case}: {}", status.message());
        assert!(
            status.message().contains(fragment),
            "{case}: {}",
            status.message()
        );
        row("gRPC", case, &format!("{code:?}"), status.message());
    }
    let channel = tonic::transport::Channel::from_shared(format!("http://{}", server.grpc_addr()))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut raw_client = tonic::client::Grpc::new(channel);
    raw_client.ready().await.unwrap();
    let status = raw_client
        .unary(
            tonic::Request::new(vec![0xff; 16]),
            tonic::codegen::http::uri::PathAndQuery::from_static(
                "/inference.GRPCInferenceService/ModelInfer",
            ),
            RawBytes,
        )
        .await
        .unwrap_err();
    assert_eq!(
        status.code(),
        tonic::Code::InvalidArgument,
        "{}",
        status.message()
    );
    assert!(
        status
            .message()
            .starts_with("malformed request: the protobuf message does not decode"),
        "{}",
        status.message()
    );
    row(
        "gRPC",
        "bytes that are not protobuf",
        "InvalidArgument",
        status.message(),
    );
    server.shutdown().await.unwrap();
}
