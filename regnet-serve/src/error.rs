//! What a request can be refused with and how each protocol says it, and why the server
//! could not start.

use std::net::SocketAddr;

/// Why a request got no result. Each variant maps to one HTTP status and one gRPC code, and
/// its message (the protocol's `{"error": "…"}`) says what to send instead.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RequestError {
    /// No model, or no such version of it.
    #[error("{0}")]
    NotFound(String),
    /// The body is not the protocol's JSON or protobuf.
    #[error("malformed request: {0}")]
    Malformed(String),
    /// Well-formed, but not what the model takes (tensor name, datatype, shape, contents).
    #[error("{0}")]
    Invalid(String),
    /// An endpoint asked with the wrong HTTP method.
    #[error("{0}")]
    MethodNotAllowed(String),
    /// The body is over `--max-body`.
    #[error("the request body has more than {limit} bytes, this server's --max-body")]
    TooLarge {
        /// The limit, in bytes.
        limit: usize,
    },
    /// The model's queue is full: the request was refused at once, so that memory stays
    /// bounded under any load. Retrying later, or on another replica, can succeed.
    #[error(
        "model `{model}` is full: {queued} requests waiting (its --max-queue) besides the batch running; retry later or on another replica"
    )]
    QueueFull {
        /// The model.
        model: String,
        /// Requests waiting.
        queued: usize,
    },
    /// The model is still loading, or the server is shutting down.
    #[error("{0}")]
    Unavailable(String),
    /// The forward pass failed; a bug, never the client's doing.
    #[error("inference failed: {0}")]
    Internal(String),
}

/// The outcome of a request as the metrics count it, the same for both protocols.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Outcome {
    Ok,
    NotFound,
    Invalid,
    TooLarge,
    Unavailable,
    Internal,
}

impl Outcome {
    pub(crate) fn label(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::NotFound => "not_found",
            Outcome::Invalid => "invalid",
            Outcome::TooLarge => "too_large",
            Outcome::Unavailable => "unavailable",
            Outcome::Internal => "internal",
        }
    }
}

impl RequestError {
    pub(crate) fn outcome(&self) -> Outcome {
        match self {
            RequestError::NotFound(_) => Outcome::NotFound,
            RequestError::Malformed(_)
            | RequestError::Invalid(_)
            | RequestError::MethodNotAllowed(_) => Outcome::Invalid,
            RequestError::TooLarge { .. } => Outcome::TooLarge,
            RequestError::QueueFull { .. } | RequestError::Unavailable(_) => Outcome::Unavailable,
            RequestError::Internal(_) => Outcome::Internal,
        }
    }

    pub(crate) fn http_status(&self) -> axum::http::StatusCode {
        use axum::http::StatusCode;
        match self {
            RequestError::NotFound(_) => StatusCode::NOT_FOUND,
            RequestError::Malformed(_) | RequestError::Invalid(_) => StatusCode::BAD_REQUEST,
            RequestError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            RequestError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            RequestError::QueueFull { .. } | RequestError::Unavailable(_) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            RequestError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub(crate) fn grpc_status(&self) -> tonic::Status {
        let message = self.to_string();
        match self {
            RequestError::NotFound(_) => tonic::Status::not_found(message),
            RequestError::Malformed(_)
            | RequestError::Invalid(_)
            | RequestError::MethodNotAllowed(_) => tonic::Status::invalid_argument(message),
            // What tonic itself answers for a message over its limit.
            RequestError::TooLarge { .. } => tonic::Status::out_of_range(message),
            RequestError::QueueFull { .. } | RequestError::Unavailable(_) => {
                tonic::Status::unavailable(message)
            }
            RequestError::Internal(_) => tonic::Status::internal(message),
        }
    }
}

/// Why the server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// An address could not be listened on.
    #[error("cannot listen on {address}: {source}; choose another address or stop what uses it")]
    Bind {
        /// The address.
        address: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The settings cannot serve: no model, two of one name, a limit of zero.
    #[error("{0}")]
    Config(String),
    /// A model failed to load (its weights, or its warm-up pass).
    #[error("model `{model}` failed to load: {reason}")]
    Load {
        /// The model.
        model: String,
        /// Why.
        reason: String,
    },
    /// A listener stopped with an error.
    #[error("the {protocol} endpoint failed: {reason}")]
    Endpoint {
        /// "HTTP" or "gRPC".
        protocol: &'static str,
        /// Why.
        reason: String,
    },
}
