//! Plugins and processes: `/v1/plugins[/{name}]`, `/v1/processes[/{id}]`.

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::AppState;
use super::auth::{Caller, authenticate};
use super::error::{ApiError, read_body};
use crate::ErrorKind;
use crate::isolation::ProcessInfo;
use crate::names::Namespace;
use crate::sandbox::{InstanceMode, PluginError};

#[derive(Debug, Deserialize)]
pub(super) struct PutQuery {
    /// `per-request` (default) or `per-process`; an addition to the contract.
    instance: Option<String>,
}

pub(super) async fn put_plugin(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    Query(query): Query<PutQuery>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    authenticate(&state.tokens, &headers)?.require_admin("deploy plugins")?;
    let name = Namespace::new(name.as_str())
        .map_err(|e| ApiError::invalid(e.to_string().replacen("namespace", "plugin name", 1)))?
        .to_string();
    let mode = match query.instance.as_deref() {
        Some(mode) => mode.parse::<InstanceMode>().map_err(ApiError::invalid)?,
        None => state.config.plugins.get(&name).map(|p| p.instance).unwrap_or_default(),
    };
    let bytes = read_body(&headers, body, state.config.server.max_plugin_size, || {
        ApiError::new(
            ErrorKind::InvalidPlugin,
            format!(
                "the plugin is over server.max_plugin_size ({} bytes)",
                state.config.server.max_plugin_size
            ),
        )
    })
    .await?;
    let compiled = state.runtime.compile(bytes.to_vec()).await.map_err(plugin_error)?;
    // Persist first: a plugin that is live survives a restart.
    state
        .store
        .save(&name, &bytes, mode)
        .map_err(|e| ApiError::new(ErrorKind::WorkerUnavailable, e.to_string()))?;
    state
        .runtime
        .install(crate::ipc::PluginSpec {
            name: name.clone(),
            mode,
            compiled: compiled.clone(),
        })
        .await;
    let body = serde_json::json!({
        "name": name,
        "sha256": hex::encode(compiled.sha256),
        "size": compiled.size,
        "compile_ms": compiled.compile_time.as_millis() as u64,
    });
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

fn plugin_error(e: PluginError) -> ApiError {
    match e {
        PluginError::Invalid(invalid) => ApiError::new(ErrorKind::InvalidPlugin, invalid.to_string()),
        other => ApiError::new(ErrorKind::WorkerUnavailable, other.to_string()),
    }
}

pub(super) async fn list_plugins(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
) -> Result<Json<serde_json::Value>, ApiError> {
    authenticate(&state.tokens, &headers)?;
    let list: Vec<_> = state
        .runtime
        .plugins()
        .into_iter()
        .map(|p| {
            serde_json::json!({
                "name": p.name,
                "sha256": hex::encode(p.compiled.sha256),
                "size": p.compiled.size,
                "instance": p.mode.as_str(),
            })
        })
        .collect();
    Ok(Json(serde_json::Value::Array(list)))
}

pub(super) async fn delete_plugin(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    authenticate(&state.tokens, &headers)?.require_admin("remove plugins")?;
    if !state.runtime.remove(&name).await {
        return Err(ApiError::new(
            ErrorKind::PluginNotFound,
            format!("no plugin named {name:?}"),
        ));
    }
    state
        .store
        .remove(&name)
        .map_err(|e| ApiError::new(ErrorKind::WorkerUnavailable, e.to_string()))?;
    Ok(StatusCode::NO_CONTENT)
}

fn process_json(p: &ProcessInfo) -> serde_json::Value {
    serde_json::json!({
        "id": p.id,
        "level": p.level.as_str(),
        "namespace": p.namespace.as_ref().map(Namespace::as_str),
        "session": p.session.as_ref().map(|s| s.as_str()),
        "state": p.status.state.as_str(),
        "healthy": p.status.healthy,
        "pid": p.pid,
        "uptime_seconds": p.status.uptime().as_secs(),
        "restarts": p.status.restart_count,
        "errors": p.status.error_count,
        "in_flight": p.in_flight,
        "queued": p.queued,
    })
}

fn visible(caller: &Caller, p: &ProcessInfo) -> bool {
    match caller {
        Caller::Admin => true,
        Caller::Tenant(ns) => p.namespace.as_ref().is_some_and(|n| n.as_str() == ns),
    }
}

pub(super) async fn list_processes(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
) -> Result<Json<serde_json::Value>, ApiError> {
    let caller = authenticate(&state.tokens, &headers)?;
    let list: Vec<_> = state
        .runtime
        .manager()
        .list_processes()
        .iter()
        .filter(|p| visible(&caller, p))
        .map(process_json)
        .collect();
    Ok(Json(serde_json::Value::Array(list)))
}

pub(super) async fn get_process(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Json<serde_json::Value>, ApiError> {
    let caller = authenticate(&state.tokens, &headers)?;
    match state.runtime.manager().get_process(&id) {
        Some(p) if visible(&caller, &p) => Ok(Json(process_json(&p))),
        _ => Err(ApiError::new(
            ErrorKind::ProcessNotFound,
            format!("process ID {id} not found"),
        )),
    }
}

#[derive(Debug, Deserialize)]
pub(super) struct TerminateQuery {
    grace: Option<String>,
}

pub(super) async fn terminate_process(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    Query(query): Query<TerminateQuery>,
    headers: HeaderMap,
) -> Result<Json<serde_json::Value>, ApiError> {
    authenticate(&state.tokens, &headers)?.require_admin("terminate processes")?;
    let grace = query
        .grace
        .map(|g| {
            g.parse::<f64>()
                .ok()
                .filter(|s| s.is_finite() && (0.0..=300.0).contains(s))
                .map(Duration::from_secs_f64)
                .ok_or_else(|| ApiError::invalid(format!("grace={g:?} is not a number of seconds from 0 to 300")))
        })
        .transpose()?;
    state.runtime.manager().terminate_process(&id, grace).await?;
    Ok(Json(serde_json::json!({ "id": id, "state": "Terminated" })))
}
