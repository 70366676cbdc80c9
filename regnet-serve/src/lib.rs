//! A model server for regnet networks: the Open Inference Protocol (KServe v2, which Triton
//! also speaks) over HTTP/REST and gRPC, so that `tritonclient`, `perf_analyzer`, KServe and
//! any load balancer work with it unchanged.
//!
//! - **Dynamic batching**: concurrent requests to a model queue up and are combined into one
//!   batch of at most [`Config::max_batch`] images; a batch waits at most
//!   [`Config::max_delay`] for as many images as the previous batch had (so a lone client's
//!   requests run at once, and eight clients' go as soon as the eighth is in); each request
//!   gets its own rows back, bit-identical to a direct `forward` of its images (the runtime's
//!   results do not depend on what else is in the batch).
//! - **Bounded**: a model's queue holds at most [`Config::max_queue`] requests, and a request
//!   beyond it is refused at once (HTTP 503, gRPC `UNAVAILABLE`); bodies are at most
//!   [`Config::max_body`] bytes.
//! - **Inputs**: FP32 tensors `[N,3,R,R]` (JSON `data`, Triton's binary tensor extension, gRPC
//!   raw or typed contents), or BYTES `[N]` holding encoded JPEG, PNG or WebP images, which go
//!   through the library's torchvision transform (base64 strings in JSON).
//! - **Outputs**: `logits` FP32 `[N,classes]`, or with the classification extension
//!   (`"classification": k`) the top k as `"score:index:label"` strings.
//!
//! `regnet serve` is the command; [`Server`] is the same server for a program of its own.

mod batcher;
mod config;
mod error;
mod grpc;
mod http;
mod metrics;
mod model;
mod server;
mod state;
mod tensor;

/// The protocol's messages and service, generated from `proto/grpc_predict_v2.proto` (the
/// client too, for programs and tests that call a server).
#[allow(missing_docs, clippy::all, clippy::pedantic)]
pub mod proto {
    tonic::include_proto!("inference");
}

pub use config::Config;
pub use error::{RequestError, ServeError};
pub use server::{ModelSource, Server, shutdown_signal};

/// The protocol extensions this server implements, as server metadata lists them.
const EXTENSIONS: [&str; 2] = ["classification", "binary_tensor_data"];
