//! The server's settings.

use std::net::SocketAddr;
use std::time::Duration;

use regnet::runtime::Options;

/// How the server listens, batches and limits requests.
#[derive(Clone, Copy, Debug)]
pub struct Config {
    /// The HTTP/REST endpoint's address (port 0: any free port, see
    /// [`Server::http_addr`](crate::Server::http_addr)).
    pub http: SocketAddr,
    /// The gRPC endpoint's address.
    pub grpc: SocketAddr,
    /// The most images a batch combines.
    pub max_batch: usize,
    /// How long a batch waits for as many images as the previous batch had (requests already
    /// waiting always join, up to `max_batch`).
    pub max_delay: Duration,
    /// Requests waiting per model, besides those of the batch running (`max_batch` at most),
    /// beyond which a request is refused at once (HTTP 503, gRPC UNAVAILABLE), before its body
    /// is read over HTTP.
    pub max_queue: usize,
    /// The largest request body, in bytes (HTTP 413, gRPC OUT_OF_RANGE beyond it).
    pub max_body: usize,
    /// How each model's forward passes run: threads, instruction set.
    pub options: Options,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            http: SocketAddr::from(([127, 0, 0, 1], 8000)),
            grpc: SocketAddr::from(([127, 0, 0, 1], 8001)),
            max_batch: 8,
            max_delay: Duration::from_millis(2),
            max_queue: 64,
            max_body: 64 << 20,
            options: Options::default(),
        }
    }
}
