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

const NAMESPACE_HEADER: &str = "x-bulkhead-namespace";
const SESSION_HEADER: &str = "x-bulkhead-session";
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

pub(super) async fn invoke(
    State(state): State<Arc<AppState>>,
    Path(plugin): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let caller = authenticate(&state.tokens, &headers)?;
    let namespace = header_text(&headers, NAMESPACE_HEADER)?
        .ok_or_else(|| ApiError::invalid(format!("the {NAMESPACE_HEADER} header is required")))?;
    let namespace = Namespace::new(namespace).map_err(|e| ApiError::invalid(e.to_string()))?;
    let session = header_text(&headers, SESSION_HEADER)?
        .map(SessionId::new)
        .transpose()
        .map_err(|e| ApiError::invalid(e.to_string()))?;
    if !caller.may_use(&namespace) {
        return Err(ApiError::new(
            ErrorKind::Forbidden,
            format!("this token is not valid for namespace {namespace}"),
        ));
    }
    let timeout = state.config.server.http.body_read_timeout;
    let body = read_body(&headers, body, state.config.server.max_payload, timeout, || {
        ApiError::new(
            ErrorKind::PayloadTooLarge,
            format!(
                "the payload is over server.max_payload ({} bytes)",
                state.config.server.max_payload
            ),
        )
    })
    .await?;
    let started = std::time::Instant::now();
    let result = state.service.invoke(namespace, session, &plugin, body.to_vec()).await;
    let metrics = &state.metrics;
    match result {
        Ok(out) => {
            // A call that ran named a plugin of the host.
            metrics.request(out.level.as_str(), &plugin, "ok", started.elapsed());
            metrics.fuel(&plugin, out.fuel_consumed);
            if let Some((source, took)) = out.cold_start {
                metrics.cold_start(out.level.as_str(), source.as_str(), took);
            }
            let mut response = Body::from(out.output).into_response();
            let h = response.headers_mut();
            if let Ok(id) = HeaderValue::from_str(out.process_id.as_str()) {
                h.insert("x-bulkhead-process-id", id);
            }
            h.insert("x-bulkhead-fuel-consumed", HeaderValue::from(out.fuel_consumed));
            h.insert(
                "x-bulkhead-cold-start",
                HeaderValue::from_static(if out.cold_start.is_some() { "true" } else { "false" }),
            );
            h.insert("content-type", HeaderValue::from_static("application/octet-stream"));
            Ok(response)
        }
        Err(e) => {
            // Labels come from a bounded set: a name the URL made up is not one.
            let label = if state.service.is_known_plugin(&plugin) {
                plugin.as_str()
            } else {
                UNKNOWN_PLUGIN_LABEL
            };
            metrics.request(e.level.as_str(), label, e.kind().as_str(), started.elapsed());
            if let Some(rejection) = e.rejection() {
                metrics.admission_rejected(rejection.as_str());
            }
            Err(e.into())
        }
    }
}
