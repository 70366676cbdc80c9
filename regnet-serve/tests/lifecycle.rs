//! Loading and readiness: the server answers liveness while weights load, is ready only once
//! every model is loaded and warmed up, and a model that fails to load is an error, never a
//! server that says it is ready.

mod common;

use std::sync::mpsc;

use common::*;
use regnet::runtime::Network;
use regnet_serve::{ModelSource, ServeError, Server};

async fn status(server: &Server, path: &str) -> (u16, String) {
    let response = reqwest::get(url(server, path)).await.unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_while_loading_ready_only_once_loaded() {
    let architecture = architecture(SMALL);
    let (release, released) = mpsc::channel::<()>();
    let source = ModelSource {
        name: "small".into(),
        architecture,
        labels: None,
        load: Box::new(move || {
            // Loading lasts until the test says so.
            released.recv().map_err(|e| e.to_string())?;
            Network::random(architecture, 1).map_err(|e| e.to_string())
        }),
    };
    let server = Server::start(config(8, 16), vec![source]).await.unwrap();
    assert_eq!(status(&server, "/v2/health/live").await.0, 200);
    assert_eq!(status(&server, "/v2/health/ready").await.0, 400);
    assert_eq!(status(&server, "/v2/models/small/ready").await.0, 400);
    // Metadata is known before the weights are.
    assert_eq!(status(&server, "/v2/models/small").await.0, 200);
    let http = reqwest::Client::new();
    let infer = url(&server, "/v2/models/small/infer");
    let request = binary_request(1, &input(1, 1), true);
    let (code, message) = refusal(post_binary(&http, &infer, request.clone()).await).await;
    assert_eq!(code, 503);
    assert!(message.contains("is still loading"), "{message}");
    let mut grpc = grpc(&server).await;
    let ready = grpc
        .server_ready(regnet_serve::proto::ServerReadyRequest {})
        .await
        .unwrap();
    assert!(!ready.into_inner().ready);

    release.send(()).unwrap();
    server.loaded().await.unwrap();
    assert_eq!(status(&server, "/v2/health/ready").await.0, 200);
    assert_eq!(status(&server, "/v2/models/small/ready").await.0, 200);
    assert_eq!(post_binary(&http, &infer, request).await.status(), 200);
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_model_that_fails_to_load_is_an_error_and_never_ready() {
    let architecture = architecture(SMALL);
    let sources = vec![
        ModelSource {
            name: "good".into(),
            architecture,
            labels: None,
            load: Box::new(move || Network::random(architecture, 1).map_err(|e| e.to_string())),
        },
        ModelSource {
            name: "bad".into(),
            architecture,
            labels: None,
            load: Box::new(|| Err("cannot read bad.safetensors: No such file".into())),
        },
    ];
    let server = Server::start(config(8, 16), sources).await.unwrap();
    match server.loaded().await {
        Err(ServeError::Load { model, reason }) => {
            assert_eq!(model, "bad");
            assert!(reason.contains("No such file"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(status(&server, "/v2/health/ready").await.0, 400);
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_that_cannot_serve_are_refused_before_listening() {
    let architecture = architecture(SMALL);
    let source = |name: &str| ModelSource {
        name: name.into(),
        architecture,
        labels: None,
        load: Box::new(move || Network::random(architecture, 1).map_err(|e| e.to_string())),
    };
    let refused = |result: Result<Server, ServeError>| match result {
        Err(error) => error.to_string(),
        Ok(_) => panic!("started"),
    };
    let message = refused(Server::start(config(8, 16), vec![]).await);
    assert_eq!(message, "no model to serve");
    let message = refused(Server::start(config(8, 16), vec![source("a"), source("a")]).await);
    assert!(message.contains("two models are named `a`"), "{message}");
    let message = refused(Server::start(config(8, 16), vec![source("a/b")]).await);
    assert!(message.contains("cannot be part of a URL"), "{message}");
    let message = refused(Server::start(config(0, 16), vec![source("a")]).await);
    assert_eq!(message, "--max-batch must be at least 1");
    // An address already in use.
    let server = start_small(config(8, 16), 1).await;
    let mut taken = config(8, 16);
    taken.http = server.http_addr();
    let message = refused(Server::start(taken, vec![source("a")]).await);
    assert!(
        message.starts_with(&format!("cannot listen on {}", server.http_addr())),
        "{message}"
    );
    server.shutdown().await.unwrap();
}
