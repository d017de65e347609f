//! `bulkhead serve`: runs the host until SIGINT or SIGTERM.
//!
//! Order of events: load and validate the configuration (before binding or
//! spawning anything), compile the plugins, start the supervisor and warm
//! pool, bind, print `listening on http://HOST:PORT`, serve. On a signal:
//! stop accepting, let in-flight requests finish for
//! `server.shutdown_timeout`, cut the connections left, terminate every
//! worker within its grace period, exit 0: all within `shutdown_timeout +
//! isolation.grace_period + TERMINATE_SLACK`, whatever clients do.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use crate::api::{self, AppState};
use crate::config::{Config, Overrides};
use crate::isolation::manager::TERMINATE_SLACK;

/// Runs the host.
#[derive(Debug, clap::Args)]
pub struct ServeCommand {
    /// The TOML configuration; the embedded default when absent.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Address to listen on (port 0 picks a free port); overrides server.listen.
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
}

/// Exit code of a configuration error, as for `config check`.
pub(super) const EXIT_CONFIG: u8 = 2;

impl ServeCommand {
    pub fn execute(self) -> ExitCode {
        init_logging();
        let overrides = Overrides { listen: self.listen };
        let config = match Config::load_with_process_env(self.config.as_deref(), &overrides) {
            Ok(config) => config,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(EXIT_CONFIG);
            }
        };
        let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
            Ok(runtime) => runtime,
            Err(e) => {
                eprintln!("error: cannot start the async runtime: {e}");
                return ExitCode::FAILURE;
            }
        };
        match runtime.block_on(serve(config)) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e:#}");
                ExitCode::FAILURE
            }
        }
    }
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let running = crate::service::start(&config, None).await?;
    let listener = api::server::bind(config.server.listen)
        .map_err(|e| anyhow::anyhow!("cannot listen on {} (server.listen): {e}", config.server.listen))?;
    let address = listener.local_addr()?;
    let warm = config.pool.warm > 0;
    let prewarm = !config.pool.prewarm.is_empty();
    let start_timeout = config.isolation.start_timeout;
    let grace = config.isolation.grace_period;
    let state = AppState::new(config, running, !warm && !prewarm, address);
    if warm || prewarm {
        let state = Arc::clone(&state);
        tokio::spawn(async move {
            // Readiness waits for the pool and for the pre-warmed tenants'
            // processes to settle; a pool that cannot fill (workers failing
            // to start) keeps /readyz at 503 and logs why, a pre-warmed
            // process that fails to start is logged and not waited for.
            while warm && !state.service.wait_pool_filled(start_timeout * 4).await {
                tracing::warn!("the warm pool is still not filled");
            }
            while !state.service.wait_prewarmed(start_timeout * 4).await {}
            state.ready.store(true, Ordering::Relaxed);
        });
    }
    let tls = match &state.config.server.tls {
        Some(files) => Some(api::server::tls_config(files).map_err(|e| anyhow::anyhow!("server.tls: {e}"))?),
        None => None,
    };
    let app = api::router(Arc::clone(&state));
    let mut limits = state.config.server.http.clone();
    let reserve = api::server::descriptor_reserve(state.config.isolation.max_processes);
    let room = api::server::connections_within_open_files(reserve);
    if u64::from(limits.max_connections) > room {
        let lowered = u32::try_from(room).unwrap_or(u32::MAX).max(1);
        tracing::warn!(
            "server.max_connections lowered from {} to {lowered}: the open-files limit leaves no more beside \
             the {reserve} descriptors kept for workers",
            limits.max_connections
        );
        limits.max_connections = lowered;
    }
    let drain = limits.shutdown_timeout;
    let scheme = if state.config.server.tls.is_some() {
        "https"
    } else {
        "http"
    };
    eprintln!("listening on {scheme}://{address}");
    // On a worker thread of the runtime, not on this one (`block_on`): the
    // accept loop then runs beside the connections it spawns.
    let server = api::server::serve(listener, app, limits, tls, state.metrics.clone(), shutdown_signal());
    if let Err(e) = tokio::spawn(server).await {
        tracing::error!("the HTTP server failed: {e}");
    }
    // Bound: the drain above, then the workers' grace period.
    tracing::info!(
        "terminating every worker (at most {:?} after {drain:?} of drain)",
        grace + TERMINATE_SLACK
    );
    let deadline = Instant::now() + grace + TERMINATE_SLACK;
    if let Err(e) = state.service.shutdown(deadline).await {
        tracing::warn!("shutdown: {e}");
    }
    Ok(())
}

/// Resolves on the first SIGINT or SIGTERM.
async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) else {
        tracing::error!("cannot install signal handlers; stop the host with SIGKILL");
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM received"),
        _ = int.recv() => tracing::info!("SIGINT received"),
    }
}
