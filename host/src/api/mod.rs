//! The HTTP API (`CONTRACT.md` section 2) on axum.
//!
//! Handlers translate between HTTP and the [`Service`]; every failure is an
//! [`ApiError`] with the contract's kind, status and JSON body.

mod admin;
mod auth;
mod error;
pub(crate) mod health;
mod invoke;
mod status;

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post, put};

use crate::config::{Config, Tokens};
use crate::metrics::HostMetrics;
use crate::procmgr::PrometheusMetrics;
use crate::service::{Running, Service};

/// What every handler can reach.
#[derive(Debug)]
pub(crate) struct AppState {
    pub service: Arc<Service>,
    pub config: Config,
    pub tokens: Tokens,
    pub metrics: HostMetrics,
    pub procmgr_metrics: Arc<PrometheusMetrics>,
    /// Set once the plugins are compiled and the warm pool is filled.
    pub ready: AtomicBool,
}

impl AppState {
    /// The state of a host serving `running` under `config`; `ready` sets
    /// `/readyz` from the start.
    pub(crate) fn new(config: Config, running: Running, ready: bool) -> Arc<Self> {
        Arc::new(Self {
            service: running.service,
            tokens: config.tokens(),
            config,
            metrics: running.metrics,
            procmgr_metrics: running.procmgr_metrics,
            ready: AtomicBool::new(ready),
        })
    }
}

/// The router of every endpoint.
pub(crate) fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/v1/invoke/{plugin}", post(invoke::invoke))
        .route(
            "/v1/plugins/{name}",
            put(admin::put_plugin).delete(admin::delete_plugin),
        )
        .route("/v1/plugins", get(admin::list_plugins))
        .route("/v1/processes", get(admin::list_processes))
        .route(
            "/v1/processes/{id}",
            get(admin::get_process).delete(admin::terminate_process),
        )
        .route("/v1/health", get(status::health))
        .route("/v1/health/report", get(status::health_report))
        .route("/healthz", get(status::healthz))
        .route("/readyz", get(status::readyz))
        .route("/metrics", get(status::metrics))
        .fallback(status::not_found)
        // Handlers read bodies with their own limits (see `error::read_body`).
        .layer(DefaultBodyLimit::disable())
        .with_state(state)
}
