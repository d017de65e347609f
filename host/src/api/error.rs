//! API errors: every failure as the contract's JSON body, status and
//! `Retry-After`, rendered in one place.

use std::time::Duration;

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::ErrorKind;
use crate::isolation::IsolationError;
use crate::procmgr::ProcessId;
use crate::service::{DeployError, InvokeError, RemoveError};

/// An error answered as `{"error":{"kind","message","process_id"}}`: one the
/// API decides itself (authentication, headers, bodies), or a lower layer's,
/// carried as it is.
#[derive(Debug)]
pub(crate) enum ApiError {
    /// Refused by the API itself.
    Request { kind: ErrorKind, message: String },
    /// A call failed.
    Invoke(InvokeError),
    /// A process could not be found or terminated.
    Isolation(IsolationError),
    /// A plugin could not be deployed.
    Deploy(DeployError),
    /// A plugin could not be removed.
    Remove(RemoveError),
}

impl ApiError {
    pub(crate) fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self::Request {
            kind,
            message: message.into(),
        }
    }

    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidRequest, message)
    }

    /// The contract kind.
    pub(crate) fn kind(&self) -> ErrorKind {
        match self {
            Self::Request { kind, .. } => *kind,
            Self::Invoke(e) => e.kind(),
            Self::Isolation(e) => e.kind(),
            Self::Deploy(e) => e.kind(),
            Self::Remove(e) => e.kind(),
        }
    }

    fn message(&self) -> String {
        match self {
            Self::Request { message, .. } => message.clone(),
            Self::Invoke(e) => e.to_string(),
            Self::Isolation(e) => e.to_string(),
            Self::Deploy(e) => e.to_string(),
            Self::Remove(e) => e.to_string(),
        }
    }

    fn process_id(&self) -> Option<&ProcessId> {
        match self {
            Self::Invoke(e) => e.process_id.as_ref(),
            _ => None,
        }
    }

    fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Invoke(e) => e.retry_after(),
            Self::Isolation(e) => e.retry_after(),
            _ => None,
        }
    }
}

impl From<InvokeError> for ApiError {
    fn from(e: InvokeError) -> Self {
        Self::Invoke(e)
    }
}

impl From<IsolationError> for ApiError {
    fn from(e: IsolationError) -> Self {
        Self::Isolation(e)
    }
}

impl From<DeployError> for ApiError {
    fn from(e: DeployError) -> Self {
        Self::Deploy(e)
    }
}

impl From<RemoveError> for ApiError {
    fn from(e: RemoveError) -> Self {
        Self::Remove(e)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let kind = self.kind();
        let status = StatusCode::from_u16(kind.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = serde_json::json!({
            "error": { "kind": kind.as_str(), "message": self.message(), "process_id": self.process_id() }
        });
        let mut response = (status, Json(body)).into_response();
        if let Some(secs) = kind.retry_after_secs(self.retry_after()) {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

/// Reads a request body of at most `limit` bytes within `timeout`
/// (`server.body_read_timeout`). A body announced as larger
/// (`Content-Length`) is refused before any of it is read; one that turns out
/// larger is refused at the limit. `too_large` makes the error.
pub(super) async fn read_body(
    headers: &http::HeaderMap,
    body: axum::body::Body,
    limit: u64,
    timeout: Duration,
    too_large: impl Fn() -> ApiError,
) -> Result<axum::body::Bytes, ApiError> {
    let announced = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if announced.is_some_and(|n| n > limit) {
        return Err(too_large());
    }
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    let read = tokio::time::timeout(timeout, axum::body::to_bytes(body, limit))
        .await
        .map_err(|_| {
            ApiError::invalid(format!(
                "the request body did not arrive within server.body_read_timeout ({})",
                crate::config::format_duration(timeout)
            ))
        })?;
    read.map_err(|e| {
        // axum reports the limit only as this message (its error type is private).
        let over = format!("{e:#}").contains("length limit exceeded");
        if over {
            too_large()
        } else {
            ApiError::invalid(format!("cannot read the request body: {e}"))
        }
    })
}
