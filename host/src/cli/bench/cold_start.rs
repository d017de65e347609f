//! `bulkhead bench cold-start`: cold start per isolation level and pool mode,
//! end to end over HTTP against a real host (in this process, with real
//! worker processes), beside two baselines measured in the same run: spawning
//! and reaping the worker binary doing nothing (the OS floor), and one
//! in-process sandbox call (no process boundary).
//!
//! Cold start (`CONTRACT.md` section 7) is from the first request for a key
//! with no live worker to its response, for `echo`. Each iteration uses a
//! fresh key; its process is terminated afterwards (not timed), and with the
//! pool on, the next iteration waits until the pool is full again, so every
//! measured request finds the pool as a steady host would. `--idle-ms` adds
//! a quiet time before every measured step (baselines included), for the
//! cost of a request that arrives after a lull rather than back to back.

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::ValueEnum;

use super::Row;

use crate::isolation::{IsolationKey, IsolationLevel};
use crate::local::{LocalHost, bench_client};
use crate::names::{Namespace, SessionId};
use crate::sandbox::{CallLimits, InstanceMode, Request, Sandbox, SandboxConfig};

/// Whether a warm pool is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(super) enum PoolMode {
    On,
    Off,
    Both,
}

/// Measures cold start.
#[derive(Debug, clap::Args)]
pub struct ColdStartCommand {
    /// Levels to measure, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "none,namespace,session")]
    levels: Vec<IsolationLevel>,
    /// First requests per level and pool mode.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    iterations: u32,
    /// With a warm pool, without, or both.
    #[arg(long, value_enum, default_value_t = PoolMode::Both)]
    pool: PoolMode,
    /// With the worker sandbox (`worker.sandbox = "best-effort"`), without
    /// (`off`), or both, each row measured in the same run.
    #[arg(long, value_enum, default_value_t = PoolMode::On)]
    sandbox: PoolMode,
    /// Quiet time before each measured request and baseline step, in
    /// milliseconds: 0 measures back to back; a few hundred shows what a
    /// first request after a lull costs (cold caches, idle CPUs, kernel
    /// locks back on their fast path).
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u64).range(0..=60_000))]
    idle_ms: u64,
    /// Print the rows as JSON.
    #[arg(long)]
    json: bool,
}

impl ColdStartCommand {
    pub(super) async fn run(self) -> anyhow::Result<()> {
        let rows = self.measure().await?;
        if self.json {
            println!("{}", serde_json::to_string_pretty(&rows)?);
        } else {
            print_table(&rows);
        }
        Ok(())
    }

    async fn measure(&self) -> anyhow::Result<Vec<Row>> {
        let n = self.iterations as usize;
        let idle = Duration::from_millis(self.idle_ms);
        let mut rows = Vec::new();
        let on_off = |mode| -> &'static [bool] {
            match mode {
                PoolMode::On => &[true],
                PoolMode::Off => &[false],
                PoolMode::Both => &[true, false],
            }
        };
        let word = |on: bool| if on { "on" } else { "off" };
        for &pool in on_off(self.pool) {
            for &level in &self.levels {
                for &sandbox in on_off(self.sandbox) {
                    let samples = measure_level(level, pool, sandbox, n, idle).await?;
                    rows.push(Row::from_samples(level.as_str(), word(pool), word(sandbox), samples));
                }
            }
        }
        rows.push(Row::from_samples("baseline:spawn", "-", "-", spawn_baseline(n, idle)?));
        rows.push(Row::from_samples(
            "baseline:in-process",
            "-",
            "-",
            in_process_baseline(n, idle).await?,
        ));
        Ok(rows)
    }
}

fn print_table(rows: &[Row]) {
    println!(
        "{:<20} {:<4} {:<7} {:>6} {:>8} {:>8} {:>8} {:>8}",
        "level", "pool", "sandbox", "n", "p50_us", "p90_us", "p99_us", "max_us"
    );
    for r in rows {
        println!(
            "{:<20} {:<4} {:<7} {:>6} {:>8} {:>8} {:>8} {:>8}",
            r.level, r.pool, r.sandbox, r.n, r.p50_us, r.p90_us, r.p99_us, r.max_us
        );
    }
}

/// Cold starts at one level with the pool on or off, the sandbox on or off.
async fn measure_level(
    level: IsolationLevel,
    pool: bool,
    sandbox: bool,
    n: usize,
    idle: Duration,
) -> anyhow::Result<Vec<Duration>> {
    let host = LocalHost::start(None, |config| {
        config.isolation.level = level;
        config.pool.warm = if pool { 2 } else { 0 };
        config.worker.sandbox = if sandbox {
            crate::worker::SandboxMode::BestEffort
        } else {
            crate::worker::SandboxMode::Off
        };
    })
    .await?;
    let (service, url) = (Arc::clone(&host.service), host.url.clone());
    let handle = tokio::runtime::Handle::current();
    let measure = {
        tokio::task::spawn_blocking(move || -> anyhow::Result<Vec<Duration>> {
            let agent = bench_client(Duration::from_secs(30));
            let mut samples = Vec::with_capacity(n);
            for i in 0..n {
                if pool && !handle.block_on(service.wait_pool_filled(Duration::from_secs(30))) {
                    anyhow::bail!("the warm pool did not refill within 30 s");
                }
                std::thread::sleep(idle);
                let (ns, session) = (format!("bench-{i}"), format!("s-{i}"));
                let started = Instant::now();
                let mut response = agent
                    .post(format!("{url}/v1/invoke/echo"))
                    .header("x-bulkhead-namespace", &ns)
                    .header("x-bulkhead-session", &session)
                    .send("ping")?;
                let body = response.body_mut().read_to_vec()?;
                let took = started.elapsed();
                let cold = response
                    .headers()
                    .get("x-bulkhead-cold-start")
                    .and_then(|v| v.to_str().ok());
                anyhow::ensure!(
                    response.status() == 200 && body == b"ping" && cold == Some("true"),
                    "iteration {i}: status {}, cold-start {cold:?}, body {:?}",
                    response.status(),
                    String::from_utf8_lossy(&body)
                );
                samples.push(took);
                let key = IsolationKey {
                    namespace: Namespace::new(ns)?,
                    session: SessionId::new(session)?,
                };
                let id = service.manager().process_id(&key);
                handle.block_on(service.terminate(id.as_str(), None))?;
            }
            Ok(samples)
        })
    };
    let samples = measure.await?;
    host.stop().await?;
    samples
}

/// Spawning and reaping the worker binary doing nothing.
fn spawn_baseline(n: usize, idle: Duration) -> anyhow::Result<Vec<Duration>> {
    let exe = std::env::current_exe()?;
    (0..n)
        .map(|_| {
            std::thread::sleep(idle);
            let started = Instant::now();
            let status = Command::new(&exe)
                .arg("--version")
                .env_clear()
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()?;
            anyhow::ensure!(status.success(), "{} --version failed: {status}", exe.display());
            Ok(started.elapsed())
        })
        .collect()
}

/// One `echo` call with a fresh instance, in this process.
async fn in_process_baseline(n: usize, idle: Duration) -> anyhow::Result<Vec<Duration>> {
    let dir = tempfile::tempdir()?;
    let sandbox = Sandbox::new(SandboxConfig::new(dir.path().join("cache"), dir.path().join("data")))?;
    let echo = sandbox.load_plugin("echo", crate::builtin::ECHO.wasm, InstanceMode::PerRequest)?;
    let limits = CallLimits::default();
    let request = Request {
        namespace: Namespace::new("bench")?,
        session: SessionId::default_session(),
        payload: b"ping".to_vec(),
    };
    let mut samples = Vec::with_capacity(n);
    for _ in 0..n {
        tokio::time::sleep(idle).await;
        let started = Instant::now();
        sandbox.call(&echo, request.clone(), &limits).await?;
        samples.push(started.elapsed());
    }
    Ok(samples)
}
