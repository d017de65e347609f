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
use crate::config::IsolationConfig;
use crate::names::{Namespace, PluginName};
use crate::sandbox::InstanceMode;
use crate::service::Process;

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
    let name = PluginName::new(name).map_err(|e| ApiError::invalid(e.to_string()))?;
    let mode = query
        .instance
        .map(|mode| mode.parse::<InstanceMode>().map_err(ApiError::invalid))
        .transpose()?;
    let timeout = state.config.server.http.body_read_timeout;
    let bytes = read_body(&headers, body, state.config.server.max_plugin_size, timeout, || {
        ApiError::new(
            ErrorKind::InvalidPlugin,
            format!(
                "the plugin is over server.max_plugin_size ({} bytes)",
                state.config.server.max_plugin_size
            ),
        )
    })
    .await?;
    let deployed = state.service.deploy(name, bytes.to_vec(), mode).await?;
    let body = serde_json::json!({
        "name": deployed.name.as_str(),
        "sha256": hex::encode(deployed.compiled.artifact.sha256),
        "size": deployed.compiled.artifact.size,
        "world": deployed.compiled.artifact.world.as_str(),
        "compile_ms": u64::try_from(deployed.compiled.compile_time.as_millis()).unwrap_or(u64::MAX),
    });
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

pub(super) async fn list_plugins(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
) -> Result<Json<serde_json::Value>, ApiError> {
    let caller = authenticate(&state.tokens, &headers)?;
    // A tenant sees only what it may call; the metrics token sees nothing.
    let visible = |name: &str| match &caller {
        Caller::Admin => true,
        Caller::Tenant(ns) => Namespace::new(ns.as_str()).is_ok_and(|ns| state.service.may_call(&ns, name)),
        Caller::Metrics => false,
    };
    let mut list: Vec<_> = state
        .service
        .plugins()
        .into_iter()
        .filter(|p| visible(&p.name))
        .map(|p| {
            serde_json::json!({
                "name": p.name,
                "sha256": hex::encode(p.sha256),
                "size": p.size,
                "instance": p.mode.as_str(),
                "world": p.world.as_str(),
            })
        })
        .collect();
    // Stored plugins that could not be served at boot are listed too, with
    // why; their calls are answered with `worker_unavailable`.
    list.extend(
        state
            .service
            .quarantine()
            .into_iter()
            .filter(|(name, _)| visible(name))
            .map(|(name, q)| {
                serde_json::json!({
                    "name": name,
                    "sha256": hex::encode(q.sha256),
                    "size": q.size,
                    "instance": q.mode.as_str(),
                    "quarantined": q.reason,
                })
            }),
    );
    Ok(Json(serde_json::Value::Array(list)))
}

pub(super) async fn delete_plugin(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    authenticate(&state.tokens, &headers)?.require_admin("remove plugins")?;
    state.service.remove(&name).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Each namespace's disk-quota usage, by namespace.
type DiskUsages = std::collections::HashMap<Namespace, crate::supervisor::DiskUsage>;

fn process_json(p: &Process, disk: &DiskUsages) -> serde_json::Value {
    let assignment = &p.assignment;
    let pid = p.live_pid();
    // Addition to the contract: the namespace's disk quota, when it has one.
    let disk = assignment.namespace.as_ref().and_then(|ns| disk.get(ns));
    serde_json::json!({
        "id": assignment.process_id,
        "level": assignment.level.as_str(),
        "namespace": assignment.namespace.as_ref().map(Namespace::as_str),
        "session": assignment.session.as_ref().map(|s| s.as_str()),
        "state": p.status.state.as_str(),
        "healthy": p.status.healthy,
        "pid": pid,
        "uptime_seconds": p.status.uptime().as_secs(),
        "restarts": p.status.restart_count,
        "errors": p.status.error_count,
        "in_flight": p.in_flight,
        "queued": p.queued,
        "disk": disk,
    })
}

fn visible(caller: &Caller, p: &Process) -> bool {
    match caller {
        Caller::Admin => true,
        Caller::Tenant(ns) => p.assignment.namespace.as_ref().is_some_and(|n| n.as_str() == ns),
        Caller::Metrics => false,
    }
}

pub(super) async fn list_processes(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
) -> Result<Json<serde_json::Value>, ApiError> {
    let caller = authenticate(&state.tokens, &headers)?;
    let disk: DiskUsages = state.service.disk_usage().into_iter().collect();
    let list: Vec<_> = state
        .service
        .processes()
        .iter()
        .filter(|p| visible(&caller, p))
        .map(|p| process_json(p, &disk))
        .collect();
    Ok(Json(serde_json::Value::Array(list)))
}

pub(super) async fn get_process(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Json<serde_json::Value>, ApiError> {
    let caller = authenticate(&state.tokens, &headers)?;
    match state.service.process(&id) {
        Some(p) if visible(&caller, &p) => {
            let disk: DiskUsages = state.service.disk_usage().into_iter().collect();
            Ok(Json(process_json(&p, &disk)))
        }
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
    let ceiling = IsolationConfig::GRACE_PERIOD_CEILING.as_secs_f64();
    let grace = query
        .grace
        .map(|g| {
            g.parse::<f64>()
                .ok()
                .filter(|s| s.is_finite() && (0.0..=ceiling).contains(s))
                .map(Duration::from_secs_f64)
                .ok_or_else(|| ApiError::invalid(format!("grace={g:?} is not a number of seconds from 0 to {ceiling}")))
        })
        .transpose()?;
    state.service.terminate(&id, grace).await?;
    Ok(Json(serde_json::json!({ "id": id, "state": "Terminated" })))
}
