//! `/metrics` in Prometheus's text format: requests by model, protocol and outcome, request
//! latency and batch size histograms, and queue depth.

use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets, linear_buckets};
use prometheus_client::registry::Registry;

use crate::error::Outcome;

pub(crate) type Gauge = prometheus_client::metrics::gauge::Gauge;

/// The model label of a request for a model this server does not have: the name a client sent
/// is not a label value, or hostile requests could grow the metrics without bound.
const UNKNOWN_MODEL: &str = "";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    model: String,
    protocol: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ModelLabels {
    model: String,
}

/// The server's metrics; clones share them.
#[derive(Clone)]
pub(crate) struct Metrics {
    registry: Arc<Registry>,
    requests: Family<RequestLabels, Counter>,
    latency: Family<ModelLabels, Histogram>,
    batch_size: Family<ModelLabels, Histogram>,
    queue_depth: Family<ModelLabels, Gauge>,
}

/// Which protocol a request came by.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Protocol {
    Http,
    Grpc,
}

impl Metrics {
    /// `max_batch`: the largest batch, which sets the batch-size buckets.
    pub(crate) fn new(max_batch: usize) -> Self {
        let requests = Family::<RequestLabels, Counter>::default();
        // 100 µs to about 13 s, doubling.
        let latency = Family::<ModelLabels, Histogram>::new_with_constructor(
            (|| Histogram::new(exponential_buckets(1e-4, 2.0, 18))) as fn() -> Histogram,
        );
        let batch_size = Family::<ModelLabels, Histogram>::new_with_constructor(
            (|| Histogram::new(linear_buckets(1.0, 1.0, 64))) as fn() -> Histogram,
        );
        let queue_depth = Family::<ModelLabels, Gauge>::default();
        let mut registry = Registry::with_prefix("regnet");
        registry.register(
            "requests",
            "Inference requests answered, by model, protocol and outcome",
            requests.clone(),
        );
        registry.register(
            "request_duration_seconds",
            "Time from a request's arrival to its answer, by model",
            latency.clone(),
        );
        registry.register(
            "batch_size",
            format!("Images per batch run, by model (at most --max-batch, {max_batch} here)"),
            batch_size.clone(),
        );
        registry.register(
            "queue_depth",
            "Requests waiting for their model's worker",
            queue_depth.clone(),
        );
        Metrics {
            registry: Arc::new(registry),
            requests,
            latency,
            batch_size,
            queue_depth,
        }
    }

    /// Counts an answered request; `model` is `None` for a model the server does not have.
    pub(crate) fn observe_request(
        &self,
        model: Option<&str>,
        protocol: Protocol,
        outcome: Outcome,
        elapsed: Duration,
    ) {
        let model = model.unwrap_or(UNKNOWN_MODEL).to_owned();
        let protocol = match protocol {
            Protocol::Http => "http",
            Protocol::Grpc => "grpc",
        };
        self.requests
            .get_or_create(&RequestLabels {
                model: model.clone(),
                protocol: protocol.to_owned(),
                outcome: outcome.label().to_owned(),
            })
            .inc();
        if outcome == Outcome::Ok {
            self.latency
                .get_or_create(&ModelLabels { model })
                .observe(elapsed.as_secs_f64());
        }
    }

    pub(crate) fn observe_batch(&self, model: &str, images: usize) {
        self.batch_size
            .get_or_create(&ModelLabels {
                model: model.to_owned(),
            })
            .observe(images as f64);
    }

    /// The queue-depth gauge of `model`, which its batcher keeps up to date.
    pub(crate) fn queue_depth(&self, model: &str) -> Gauge {
        self.queue_depth
            .get_or_create(&ModelLabels {
                model: model.to_owned(),
            })
            .clone()
    }

    /// The text exposition format.
    pub(crate) fn encode(&self) -> String {
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }
}
