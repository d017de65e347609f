//! The HTTP API (`CONTRACT.md` section 2) on axum.
//!
//! Handlers translate between HTTP and the [`Service`]; every failure is an
//! [`ApiError`] with the contract's kind, status and JSON body.

mod admin;
mod auth;
mod error;
pub(crate) mod health;
mod http;
mod invoke;
pub(crate) mod server;
mod status;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post, put};

use self::auth::AllowedHosts;
pub(crate) use self::invoke::{NAMESPACE_HEADER, SESSION_HEADER};
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
    /// The `Host` values served (any, when auth is on).
    allowed_hosts: AllowedHosts,
}

impl AppState {
    /// The state of a host serving `running` under `config`; `ready` sets
    /// `/readyz` from the start; `address` is where it listens.
    pub(crate) fn new(config: Config, running: Running, ready: bool, address: SocketAddr) -> Arc<Self> {
        Arc::new(Self {
            allowed_hosts: AllowedHosts::new(address, config.auth_enabled()),
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
        .route("/v1/http/{plugin}", any(http::serve))
        .route("/v1/http/{plugin}/", any(http::serve))
        .route("/v1/http/{plugin}/{*path}", any(http::serve))
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
        .layer(middleware::from_fn_with_state(Arc::clone(&state), check_host))
        .with_state(state)
}

/// Refuses a request whose `Host` is not this host (with auth off).
async fn check_host(State(state): State<Arc<AppState>>, request: Request, next: Next) -> Response {
    match state.allowed_hosts.check(request.headers()) {
        Ok(()) => next.run(request).await,
        Err(e) => e.into_response(),
    }
}
