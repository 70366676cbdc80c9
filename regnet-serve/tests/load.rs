//! The server under load over loopback: a full queue refuses at once, shutdown answers every
//! request already received, and a thousand concurrent requests of random batch sizes each get
//! the bits of a direct forward pass of their own images.

mod common;

use std::time::{Duration, Instant};

use common::*;
use regnet_serve::Server;
use regnet_serve::proto::{ModelInferRequest, model_infer_request};

/// A value of `/metrics`: the sum over the lines of `name` whose labels include `labels`.
async fn metric(server: &Server, name: &str, labels: &str) -> f64 {
    let text = reqwest::get(url(server, "/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .filter(|line| line.starts_with(&format!("{name}{{")) && line.contains(labels))
        .map(|line| line.rsplit(' ').next().unwrap().parse::<f64>().unwrap())
        .sum()
}

fn grpc_raw(images: usize, input: &[f32]) -> ModelInferRequest {
    let resolution = ((input.len() / images / 3) as f64).sqrt() as i64;
    ModelInferRequest {
        model_name: "small".into(),
        inputs: vec![model_infer_request::InferInputTensor {
            name: "input".into(),
            datatype: "FP32".into(),
            shape: vec![images as i64, 3, resolution, resolution],
            ..Default::default()
        }],
        raw_input_contents: vec![le_bytes(input)],
        ..Default::default()
    }
}

/// What a request came back with.
enum Answer {
    Logits(Vec<f32>),
    /// Status (HTTP, or the gRPC code as a number) and message.
    Refused(u16, String),
}

/// Request `i`: over HTTP with binary tensors when even, gRPC when odd, JSON every 50th.
async fn send(
    infer: &str,
    http: &reqwest::Client,
    grpc: &mut regnet_serve::proto::grpc_inference_service_client::GrpcInferenceServiceClient<
        tonic::transport::Channel,
    >,
    i: usize,
    images: usize,
    input: &[f32],
) -> Answer {
    if i % 2 == 1 {
        return match grpc.model_infer(grpc_raw(images, input)).await {
            Ok(response) => Answer::Logits(floats(&response.into_inner().raw_output_contents[0])),
            Err(status) => Answer::Refused(status.code() as u16, status.message().to_owned()),
        };
    }
    let response = if i.is_multiple_of(50) {
        let json = serde_json::json!({
            "inputs": [{"name": "input", "datatype": "FP32", "shape": [images, 3, 96, 96], "data": input}]
        });
        http.post(infer).json(&json).send().await.unwrap()
    } else {
        post_binary(http, infer, binary_request(images, input, true)).await
    };
    if response.status() == 200 {
        Answer::Logits(http_logits(response).await)
    } else {
        let (status, message) = refusal(response).await;
        Answer::Refused(status, message)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_concurrent_requests_each_get_the_bits_of_their_own_forward_pass() {
    const REQUESTS: usize = 1000;
    let server = start_small(config(8, REQUESTS), 4).await;
    let mut direct = Direct::new(SMALL, 4);
    // Random batch sizes 1 to 4 from a seeded sequence; every request its own images.
    let mut state = 0x2545_f491_u32;
    let requests: Vec<(usize, Vec<f32>)> = (0..REQUESTS)
        .map(|i| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            let images = 1 + state as usize % 4;
            (images, input(1000 + i as u64, images))
        })
        .collect();
    let expected: Vec<Vec<u32>> = requests
        .iter()
        .map(|(_, input)| bits(&direct.logits(input)))
        .collect();
    let http = reqwest::Client::new();
    let grpc = grpc(&server).await;
    let infer = url(&server, "/v2/models/small/infer");
    let tasks: Vec<_> = requests
        .into_iter()
        .enumerate()
        .map(|(i, (images, input))| {
            let (infer, http, mut grpc) = (infer.clone(), http.clone(), grpc.clone());
            tokio::spawn(async move { send(&infer, &http, &mut grpc, i, images, &input).await })
        })
        .collect();
    for (i, task) in tasks.into_iter().enumerate() {
        match task.await.unwrap() {
            Answer::Logits(logits) => assert!(bits(&logits) == expected[i], "request {i}"),
            Answer::Refused(status, message) => panic!("request {i}: {status} {message}"),
        }
    }
    // The requests were batched together, not run one by one.
    let batches = metric(&server, "regnet_batch_size_count", "small").await;
    let images = metric(&server, "regnet_batch_size_sum", "small").await;
    let answered = metric(&server, "regnet_requests_total", "outcome=\"ok\"").await;
    assert_eq!(answered, REQUESTS as f64);
    assert!(
        images / batches > 1.5,
        "{images} images in {batches} batches"
    );
    eprintln!("{REQUESTS} requests: {images} images in {batches} batches");
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_refuses_at_once_and_answers_the_rest() {
    const REQUESTS: usize = 12;
    // One image a batch, two waiting at most, on a network that takes tens of milliseconds an
    // image: of twelve requests sent together, most find the queue full.
    let server = start(SLOW, config(1, 2), 5).await;
    let mut direct = Direct::new(SLOW, 5);
    let input = input_of(224, 9, 1);
    let want = bits(&direct.logits(&input));
    let http = reqwest::Client::new();
    let grpc = grpc(&server).await;
    let infer = url(&server, "/v2/models/small/infer");
    let tasks: Vec<_> = (0..REQUESTS)
        .map(|i| {
            let (infer, http, mut grpc, input) =
                (infer.clone(), http.clone(), grpc.clone(), input.clone());
            tokio::spawn(async move {
                let sent = Instant::now();
                let answer = send(&infer, &http, &mut grpc, i + 1, 1, &input).await;
                (answer, sent.elapsed())
            })
        })
        .collect();
    let mut refusals = Vec::new();
    let mut answers = Vec::new();
    for task in tasks {
        match task.await.unwrap() {
            (Answer::Logits(logits), elapsed) => {
                assert!(bits(&logits) == want);
                answers.push(elapsed);
            }
            (Answer::Refused(status, message), elapsed) => {
                // HTTP 503, or gRPC UNAVAILABLE (14).
                assert!(status == 503 || status == 14, "{status} {message}");
                assert!(
                    message.contains("(its --max-queue) besides the batch running; retry later"),
                    "{message}"
                );
                refusals.push(elapsed);
            }
        }
    }
    let slowest_refusal = refusals.iter().max().copied().unwrap_or_default();
    let last_answer = answers.iter().max().copied().unwrap_or_default();
    eprintln!(
        "{} of {REQUESTS} refused, the slowest after {slowest_refusal:?}; {} answered, the \
         last after {last_answer:?}",
        refusals.len(),
        answers.len()
    );
    assert!(
        !refusals.is_empty(),
        "a queue of 2 took {REQUESTS} concurrent requests"
    );
    assert!(
        answers.len() >= 3,
        "the worker's request and the two queued are answered"
    );
    // Refused at once, not after waiting for the queue: every refusal came back before the
    // last accepted request, which waited for two others to run.
    assert!(slowest_refusal < last_answer);
    let counted = metric(&server, "regnet_requests_total", "outcome=\"unavailable\"").await;
    assert_eq!(
        counted,
        refusals.len() as f64,
        "refusals counted in /metrics"
    );
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_answers_every_request_already_received() {
    const REQUESTS: usize = 40;
    let server = start_small(config(1, REQUESTS), 6).await;
    let mut direct = Direct::new(SMALL, 6);
    let inputs: Vec<Vec<f32>> = (0..REQUESTS).map(|i| input(i as u64, 1)).collect();
    let expected: Vec<Vec<u32>> = inputs.iter().map(|x| bits(&direct.logits(x))).collect();
    let http = reqwest::Client::new();
    let grpc = grpc(&server).await;
    let infer = url(&server, "/v2/models/small/infer");
    let tasks: Vec<_> = inputs
        .into_iter()
        .enumerate()
        .map(|(i, input)| {
            let (infer, http, mut grpc) = (infer.clone(), http.clone(), grpc.clone());
            tokio::spawn(async move { send(&infer, &http, &mut grpc, i + 1, 1, &input).await })
        })
        .collect();
    // Every request received: with 10 or more waiting the worker is busy with one more, so
    // answered + waiting + 1 counts every request the server has.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let waiting = metric(&server, "regnet_queue_depth", "small").await;
        let answered = metric(&server, "regnet_requests_total", "outcome=\"ok\"").await;
        if waiting >= 10.0 && answered + waiting + 1.0 >= REQUESTS as f64 {
            break;
        }
        assert!(Instant::now() < deadline, "the requests never queued up");
        tokio::time::sleep(Duration::from_micros(200)).await;
    }
    let live = url(&server, "/v2/health/live");
    let shutdown = tokio::spawn(server.shutdown());
    for (i, task) in tasks.into_iter().enumerate() {
        match task.await.unwrap() {
            Answer::Logits(logits) => assert!(bits(&logits) == expected[i], "request {i}"),
            Answer::Refused(status, message) => panic!("request {i}: {status} {message}"),
        }
    }
    shutdown.await.unwrap().unwrap();
    // Stopped: nothing listens any more.
    assert!(reqwest::get(live).await.is_err());
}
