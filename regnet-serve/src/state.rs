//! What the endpoints share: the models, the settings, the metrics and readiness, and the one
//! path every inference takes.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use tokio::sync::OwnedSemaphorePermit;

use crate::config::Config;
use crate::error::{Outcome, RequestError};
use crate::metrics::{Metrics, Protocol};
use crate::model::{ServedModel, VERSION};
use crate::tensor::{InferRequest, InferResponse};

/// A request's place among those its model holds, kept until it is answered.
pub(crate) struct Admitted {
    model: Arc<ServedModel>,
    _place: OwnedSemaphorePermit,
}

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

    /// Every model loaded and warmed up, and not stopping.
    pub(crate) fn is_ready(&self) -> bool {
        self.ready.load(Ordering::SeqCst)
    }

    pub(crate) fn model_ready(&self, model: &ServedModel) -> bool {
        model.ready() && self.is_ready()
    }

    /// A place for a request to `name` among those its model holds, or the refusal to answer
    /// at once (unknown model, or all places taken).
    pub(crate) fn admit(&self, name: &str, version: &str) -> Result<Admitted, RequestError> {
        let model = self.model(name, version)?;
        let place = Arc::clone(&model.admission)
            .try_acquire_owned()
            .map_err(|_| RequestError::QueueFull {
                model: model.name.clone(),
                queued: self.config.max_queue,
            })?;
        Ok(Admitted {
            model: Arc::clone(model),
            _place: place,
        })
    }

    /// An admitted request's inference (or the refusal before it), counted in the metrics
    /// whatever its outcome; the request's place is given back when it is answered.
    pub(crate) async fn infer(
        &self,
        protocol: Protocol,
        name: &str,
        admitted: Result<(Admitted, InferRequest), RequestError>,
        arrived: Instant,
    ) -> Result<InferResponse, RequestError> {
        let result = match admitted {
            Ok((admitted, request)) => admitted.model.infer(request).await,
            Err(error) => Err(error),
        };
        // Only a name this server has becomes a metrics label (NotFound comes only from
        // looking the model up).
        let known = match &result {
            Err(RequestError::NotFound(_)) => None,
            _ => Some(name),
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
