//! Health, readiness, metrics, and the 404 of unknown paths.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::AppState;
use super::auth::authenticate;
use super::error::ApiError;
use super::health::{health_json, health_report as render_report};
use crate::ErrorKind;

pub(super) async fn health(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
) -> Result<Json<serde_json::Value>, ApiError> {
    authenticate(&state.tokens, &headers)?.require_admin("read the health of every process")?;
    let mut json = health_json(&state.service.health());
    // Additions to the contract: the name the text report gives the host
    // (`server.name`), so that a report over several hosts can too; the
    // workers' OS sandbox, layer by layer.
    json["backend"] = state.config.server.name.clone().into();
    json["sandbox"] = match state.service.sandbox_report() {
        Some(report) => serde_json::json!({
            "mode": report.mode,
            "layers": report.layers_json(),
            "cgroups": crate::supervisor::cgroup_layout(),
            "landlock_abi": crate::worker::jail::landlock_abi(),
        }),
        None => serde_json::Value::Null,
    };
    Ok(Json(json))
}

pub(super) async fn health_report(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    authenticate(&state.tokens, &headers)?.require_admin("read the health of every process")?;
    let text = render_report(&state.config.server.name, &state.service.health());
    Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], text).into_response())
}

pub(super) async fn healthz() -> &'static str {
    "ok\n"
}

pub(super) async fn readyz(State(state): State<Arc<AppState>>) -> (StatusCode, &'static str) {
    if state.ready.load(Ordering::Relaxed) {
        (StatusCode::OK, "ready\n")
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "starting: the warm pool is not filled, or a pre-warmed tenant's process is not live, yet\n",
        )
    }
}

pub(super) async fn metrics(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Result<Response, ApiError> {
    authenticate(&state.tokens, &headers)?.require_metrics()?;
    let (idle, assigned) = state.service.workers();
    state.metrics.set_workers(idle, assigned);
    state.metrics.set_disk_usage(&state.service.disk_usage());
    state.procmgr_metrics.expire();
    let text = state.metrics.render(&[state.procmgr_metrics.registry()]);
    Ok((
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        text,
    )
        .into_response())
}

pub(super) async fn not_found() -> ApiError {
    ApiError::new(ErrorKind::InvalidRequest, "no such endpoint; see CONTRACT.md section 2")
}
