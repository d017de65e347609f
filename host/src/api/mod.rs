//! The HTTP API (`CONTRACT.md` section 2) on axum.
//!
//! Handlers translate between HTTP and the [`Runtime`]; every failure is an
//! [`ApiError`] with the contract's kind, status and JSON body.

mod admin;
mod auth;
mod error;
pub mod health;
mod invoke;
mod local;
mod status;

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post, put};

pub use self::error::ApiError;
pub use self::local::{LocalHost, bench_client};
use crate::config::{Config, Tokens};
use crate::isolation::Runtime;
use crate::metrics::HostMetrics;
use crate::procmgr::PrometheusMetrics;
use crate::service::{PluginStore, Service};

/// What every handler can reach.
#[derive(Debug)]
pub struct AppState {
    pub runtime: Arc<Runtime>,
    pub config: Config,
    pub tokens: Tokens,
    pub metrics: HostMetrics,
    pub procmgr_metrics: Arc<PrometheusMetrics>,
    pub store: PluginStore,
    /// Set once the plugins are compiled and the warm pool is filled.
    pub ready: AtomicBool,
}

impl AppState {
    /// The state of a host serving `service` under `config`; `ready` sets
    /// `/readyz` from the start.
    pub fn new(config: Config, service: Service, ready: bool) -> Arc<Self> {
        Arc::new(Self {
            runtime: service.runtime,
            tokens: config.tokens(),
            config,
            metrics: service.metrics,
            procmgr_metrics: service.procmgr_metrics,
            store: service.store,
            ready: AtomicBool::new(ready),
        })
    }
}

/// The router of every endpoint.
pub fn router(state: Arc<AppState>) -> Router {
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
