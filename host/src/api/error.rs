//! API errors: the contract's JSON body, status and `Retry-After`.

use std::time::Duration;

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::ErrorKind;
use crate::isolation::{InvokeError, IsolationError};

/// An error answered as `{"error":{"kind","message","process_id"}}`.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub kind: ErrorKind,
    pub message: String,
    pub process_id: Option<String>,
    pub retry_after: Option<Duration>,
}

impl ApiError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            process_id: None,
            retry_after: None,
        }
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidRequest, message)
    }
}

impl From<InvokeError> for ApiError {
    fn from(e: InvokeError) -> Self {
        Self {
            kind: e.kind,
            message: e.message,
            process_id: e.process_id,
            retry_after: e.retry_after,
        }
    }
}

impl From<IsolationError> for ApiError {
    fn from(e: IsolationError) -> Self {
        InvokeError::from(e).into()
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.kind.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = serde_json::json!({
            "error": { "kind": self.kind.as_str(), "message": self.message, "process_id": self.process_id }
        });
        let mut response = (status, Json(body)).into_response();
        let retry = match self.kind {
            ErrorKind::BulkheadFull | ErrorKind::WorkerUnavailable => {
                Some(self.retry_after.unwrap_or(Duration::from_secs(1)))
            }
            _ => self.retry_after,
        };
        if let Some(retry) = retry {
            // Whole seconds, rounded up, at least 1.
            let secs = retry.as_secs() + u64::from(retry.subsec_nanos() > 0);
            if let Ok(value) = HeaderValue::from_str(&secs.max(1).to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, value);
            }
        }
        response
    }
}

/// Reads a request body of at most `limit` bytes. A body announced as larger
/// (`Content-Length`) is refused before any of it is read; one that turns out
/// larger is refused at the limit. `too_large` makes the error.
pub(super) async fn read_body(
    headers: &axum::http::HeaderMap,
    body: axum::body::Body,
    limit: u64,
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
    axum::body::to_bytes(body, limit).await.map_err(|e| {
        // axum reports the limit only as this message (its error type is private).
        let over = format!("{e:#}").contains("length limit exceeded");
        if over {
            too_large()
        } else {
            ApiError::invalid(format!("cannot read the request body: {e}"))
        }
    })
}
