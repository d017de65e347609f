//! A whole host in this process, serving HTTP on a free loopback port, on a
//! scratch data directory: what `bench cold-start` and the benches measure,
//! and what they measure with (an HTTP client, one percentile definition).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tempfile::TempDir;
use tokio::task::JoinHandle;

use crate::api::{AppState, router};
use crate::config::{Config, DataConfig};
use crate::service::Service;

/// A running in-process host. Dropping it stops the HTTP server; call
/// [`LocalHost::stop`] to terminate its workers first.
#[derive(Debug)]
pub struct LocalHost {
    pub service: Arc<Service>,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    server: JoinHandle<()>,
    _dir: TempDir,
}

impl LocalHost {
    /// Starts a host with the default configuration as changed by `adjust`,
    /// its data in a scratch directory and no idle timeout. Workers run
    /// `worker_program` (this executable when `None`).
    pub async fn start(worker_program: Option<PathBuf>, adjust: impl FnOnce(&mut Config)) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let mut config = Config {
            data: DataConfig::under(dir.path().join("data")),
            ..Config::default()
        };
        config.isolation.idle_timeout = Duration::ZERO;
        adjust(&mut config);
        let running = crate::service::start(&config, worker_program).await?;
        let service = Arc::clone(&running.service);
        let listener = crate::api::server::bind("127.0.0.1:0".parse()?)?;
        let address = listener.local_addr()?;
        let url = format!("http://{address}");
        let limits = config.server.http.clone();
        let state = AppState::new(config, running, true, address);
        let metrics = state.metrics.clone();
        let server = tokio::spawn(crate::api::server::serve(
            listener,
            router(state),
            limits,
            None,
            metrics,
            std::future::pending(),
        ));
        Ok(Self {
            service,
            url,
            server,
            _dir: dir,
        })
    }

    /// Stops serving and terminates every worker.
    pub async fn stop(self) -> anyhow::Result<()> {
        self.server.abort();
        self.service.shutdown(Instant::now() + Duration::from_secs(30)).await?;
        Ok(())
    }
}

/// A keep-alive HTTP client for measuring a host: statuses are returned, not
/// turned into errors, and every phase of a request (connect, send, receive)
/// is bounded by `timeout`. There is deliberately no overall timeout: with
/// one, ureq resolves the address of every request on a thread of its own,
/// and that thread's start would be timed as the host's latency.
pub fn bench_client(timeout: Duration) -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_connect(Some(timeout))
        .timeout_send_request(Some(timeout))
        .timeout_send_body(Some(timeout))
        .timeout_recv_response(Some(timeout))
        .timeout_recv_body(Some(timeout))
        .build()
        .into()
}

/// The `q`-quantile (0 to 1) of `sorted`, nearest rank: the smallest sample
/// that at least a fraction `q` of the samples do not exceed. Every
/// percentile the benches print is this one.
pub fn percentile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = (sorted.len() as f64 * q.clamp(0.0, 1.0)).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

impl Drop for LocalHost {
    fn drop(&mut self) {
        self.server.abort();
    }
}
