//! `POST /v1/invoke/{plugin}`.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};

use super::AppState;
use super::auth::authenticate;
use super::error::{ApiError, read_body};
use crate::ErrorKind;
use crate::names::{Namespace, SessionId};
use crate::service::{InvokeError, InvokeOutput};
use axum::body::Bytes;

pub(crate) const NAMESPACE_HEADER: &str = "x-bulkhead-namespace";
pub(crate) const SESSION_HEADER: &str = "x-bulkhead-session";
/// The `plugin` label of calls to a name that is no plugin of the host.
const UNKNOWN_PLUGIN_LABEL: &str = "_unknown";

fn header_text<'a>(headers: &'a HeaderMap, name: &str) -> Result<Option<&'a str>, ApiError> {
    headers
        .get(name)
        .map(|v| {
            v.to_str()
                .map_err(|_| ApiError::invalid(format!("the {name} header is not valid text")))
        })
        .transpose()
}

/// The compartment a call is for, from its headers (`namespace_header` and
/// `session_header`), once the caller's token is checked for it.
pub(super) fn compartment(
    state: &AppState,
    headers: &HeaderMap,
    namespace_header: &str,
    session_header: &str,
) -> Result<(Namespace, Option<SessionId>), ApiError> {
    let caller = authenticate(&state.tokens, headers)?;
    let namespace = header_text(headers, namespace_header)?
        .ok_or_else(|| ApiError::invalid(format!("the {namespace_header} header is required")))?;
    let namespace = Namespace::new(namespace).map_err(|e| ApiError::invalid(e.to_string()))?;
    let session = header_text(headers, session_header)?
        .map(SessionId::new)
        .transpose()
        .map_err(|e| ApiError::invalid(e.to_string()))?;
    if !caller.may_use(&namespace) {
        return Err(ApiError::new(
            ErrorKind::Forbidden,
            format!("this token is not valid for namespace {namespace}"),
        ));
    }
    Ok((namespace, session))
}

/// Reads a call's body within `server.max_payload`.
pub(super) async fn read_payload(state: &AppState, headers: &HeaderMap, body: Body) -> Result<Bytes, ApiError> {
    let timeout = state.config.server.http.body_read_timeout;
    read_body(headers, body, state.config.server.max_payload, timeout, || {
        ApiError::new(
            ErrorKind::PayloadTooLarge,
            format!(
                "the payload is over server.max_payload ({} bytes)",
                state.config.server.max_payload
            ),
        )
    })
    .await
}

pub(super) async fn invoke(
    State(state): State<Arc<AppState>>,
    Path(plugin): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let (namespace, session) = compartment(&state, &headers, NAMESPACE_HEADER, SESSION_HEADER)?;
    let body = read_payload(&state, &headers, body).await?;
    let started = std::time::Instant::now();
    let result = state.service.invoke(namespace, session, &plugin, body.to_vec()).await;
    record(&state, &plugin, started, result.as_ref());
    let out = result?;
    let mut h = HeaderMap::new();
    call_headers(&mut h, &out);
    h.insert("content-type", HeaderValue::from_static("application/octet-stream"));
    Ok((h, Body::from(out.output)).into_response())
}

/// Counts a call in the metrics, whatever its outcome.
pub(super) fn record(
    state: &AppState,
    plugin: &str,
    started: std::time::Instant,
    result: Result<&InvokeOutput, &InvokeError>,
) {
    let metrics = &state.metrics;
    match result {
        Ok(out) => {
            // A call that ran named a plugin of the host.
            metrics.request(out.level.as_str(), plugin, "ok", started.elapsed());
            metrics.fuel(plugin, out.fuel_consumed);
            if let Some((source, took)) = out.cold_start {
                metrics.cold_start(out.level.as_str(), source.as_str(), took);
            }
        }
        Err(e) => {
            // Labels come from a bounded set: a name the URL made up is not one.
            let label = if state.service.is_known_plugin(plugin) {
                plugin
            } else {
                UNKNOWN_PLUGIN_LABEL
            };
            metrics.request(e.level.as_str(), label, e.kind().as_str(), started.elapsed());
            if let Some(rejection) = e.rejection() {
                metrics.admission_rejected(rejection.as_str());
            }
        }
    }
}

/// The headers that say where a call ran.
pub(super) fn call_headers(h: &mut HeaderMap, out: &InvokeOutput) {
    if let Ok(id) = HeaderValue::from_str(out.process_id.as_str()) {
        h.insert("x-bulkhead-process-id", id);
    }
    h.insert("x-bulkhead-fuel-consumed", HeaderValue::from(out.fuel_consumed));
    h.insert(
        "x-bulkhead-cold-start",
        HeaderValue::from_static(if out.cold_start.is_some() { "true" } else { "false" }),
    );
}
