//! What the endpoints share: the models, the settings, the metrics and readiness, and the one
//! path every inference takes.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use tokio::sync::OwnedSemaphorePermit;

use crate::config::Config;
use crate::error::{Outcome, RequestError};
use crate::metrics::{Metrics, Protocol};
use crate::model::{ServedModel, VERSION};
use crate::tensor::{InferRequest, InferResponse};

/// What the endpoints share.
pub(crate) struct State {
    pub models: BTreeMap<String, Arc<ServedModel>>,
    pub config: Config,
    pub metrics: Metrics,
    /// False until every model is loaded and warmed up, and again once shutdown begins.
    pub ready: AtomicBool,
}

impl State {
    pub(crate) fn model(
        &self,
        name: &str,
        version: &str,
    ) -> Result<&Arc<ServedModel>, RequestError> {
        let model = self.models.get(name).ok_or_else(|| {
            let names: Vec<&str> = self.models.keys().map(String::as_str).collect();
            RequestError::NotFound(format!(
                "no model `{name}`; this server has: {}",
                names.join(", ")
            ))
        })?;
        if !version.is_empty() && version != VERSION {
            return Err(RequestError::NotFound(format!(
                "model `{name}` has no version `{version}`; it has version {VERSION}"
            )));
        }
        Ok(model)
    }

    /// A place for a request to `name` among those its model holds, or the refusal to answer
    /// at once (unknown model, or all places taken). The place is kept until it is answered.
    pub(crate) fn admit(
        &self,
        name: &str,
        version: &str,
    ) -> Result<OwnedSemaphorePermit, RequestError> {
        let model = self.model(name, version)?;
        Arc::clone(&model.admission)
            .try_acquire_owned()
            .map_err(|_| RequestError::QueueFull {
                model: model.name.clone(),
                queued: self.config.max_queue,
            })
    }

    /// An inference, counted in the metrics whatever its outcome.
    pub(crate) async fn infer(
        &self,
        protocol: Protocol,
        name: &str,
        version: &str,
        request: Result<InferRequest, RequestError>,
        arrived: Instant,
    ) -> Result<InferResponse, RequestError> {
        let model = self.model(name, version);
        let known = model.is_ok().then_some(name);
        let result = match (model, request) {
            (Ok(model), Ok(request)) => model.infer(request).await,
            (Err(error), _) | (_, Err(error)) => Err(error),
        };
        let outcome = match &result {
            Ok(_) => Outcome::Ok,
            Err(error) => {
                // Debug-formatted: a name from a URL cannot write control characters to the log.
                tracing::debug!(model = ?name, %error, "request refused");
                error.outcome()
            }
        };
        self.metrics
            .observe_request(known, protocol, outcome, arrived.elapsed());
        result
    }
}
