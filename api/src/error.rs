//! The JSON error body the node sends and the client's typed error.

use reqwest::StatusCode;
use serde::{Deserialize, Serialize};

/// Body of every error answer of the control API: `{"error": "..."}`, with
/// the HTTP status telling the kind (400 bad request, 401 token, 404
/// unknown task or object, 409 no verdict yet, 502 network or chain, 503
/// engine not running).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// What went wrong, for people.
    pub error: String,
}

impl ErrorBody {
    /// A body with `message`.
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            error: message.into(),
        }
    }

    /// Reads an error answer: the node's `{"error": ...}`, or else (a proxy's
    /// page, a truncated body) the start of the text as the message.
    pub fn from_bytes(body: &[u8]) -> Self {
        if let Ok(b) = serde_json::from_slice::<ErrorBody>(body) {
            return b;
        }
        const SHOWN: usize = 512;
        let text = String::from_utf8_lossy(&body[..body.len().min(SHOWN)]);
        let mut error = text.trim().to_string();
        if body.len() > SHOWN {
            error.push_str(" [...]");
        }
        Self { error }
    }
}

/// What can go wrong talking to a node.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request never got an answer (connection refused, timeout, reset).
    #[error("cannot reach the node at {url}: {source}")]
    Transport {
        /// Base URL of the node.
        url: String,
        /// The HTTP client's error.
        #[source]
        source: reqwest::Error,
    },
    /// 401: missing or wrong bearer token.
    #[error("the node answered {}: {}", StatusCode::UNAUTHORIZED, .body.error)]
    Unauthorized {
        /// The node's error body.
        body: ErrorBody,
    },
    /// 404: unknown task, object or route.
    #[error("the node answered {}: {}", StatusCode::NOT_FOUND, .body.error)]
    NotFound {
        /// The node's error body.
        body: ErrorBody,
    },
    /// Any other non-success status.
    #[error("the node answered {status}: {}", .body.error)]
    Status {
        /// The HTTP status.
        status: StatusCode,
        /// The node's error body.
        body: ErrorBody,
    },
    /// A success answer that is not the JSON the route returns.
    #[error("the node's answer to {route} is not the expected JSON: {source}")]
    Decode {
        /// Method and path of the request.
        route: String,
        /// The decoder's error.
        #[source]
        source: serde_json::Error,
    },
    /// An answer longer than the client's limit.
    #[error("the node's answer to {route} exceeds {limit} bytes (found at least {found})")]
    TooLarge {
        /// Method and path of the request.
        route: String,
        /// The client's limit.
        limit: u64,
        /// Bytes announced or read before stopping.
        found: u64,
    },
    /// A path parameter that could leave its route (see [`crate::routes::segment`]).
    #[error("expected a {what} of 1 to 256 letters, digits, '-' or '_', found {found:?}")]
    InvalidArgument {
        /// What the value is ("task id", "CID").
        what: &'static str,
        /// The value (its first 80 characters).
        found: String,
    },
}

impl Error {
    /// The error for a non-success `status` with `body`.
    pub fn from_status(status: StatusCode, body: ErrorBody) -> Self {
        match status {
            StatusCode::UNAUTHORIZED => Self::Unauthorized { body },
            StatusCode::NOT_FOUND => Self::NotFound { body },
            status => Self::Status { status, body },
        }
    }

    /// The HTTP status the node answered with, if it answered with an error.
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            Self::Unauthorized { .. } => Some(StatusCode::UNAUTHORIZED),
            Self::NotFound { .. } => Some(StatusCode::NOT_FOUND),
            Self::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// The node's error body, if it answered with an error.
    pub fn body(&self) -> Option<&ErrorBody> {
        match self {
            Self::Unauthorized { body } | Self::NotFound { body } | Self::Status { body, .. } => {
                Some(body)
            }
            _ => None,
        }
    }

    /// Whether the node said the task, object or route does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(self, Self::NotFound { .. })
    }
}
