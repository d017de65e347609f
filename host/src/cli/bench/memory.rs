//! `bulkhead bench memory`: what a worker process costs in memory, read from
//! the kernel (`/proc/PID/smaps_rollup`) for a worker idle in the warm pool,
//! a worker just assigned to a tenant after its first call, and the same
//! worker after many calls. `rss` counts every resident page (shared library
//! and binary pages too), `pss` divides shared pages among their sharers,
//! `private` is what this worker alone holds: the figure that grows with the
//! number of workers.

use std::time::Duration;

use anyhow::Context as _;

use crate::local::LocalHost;
use crate::names::Namespace;

/// Measures the memory of workers.
#[derive(Debug, clap::Args)]
pub struct MemoryCommand {
    /// Calls made on the assigned worker before its last measurement.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    calls: u32,
    /// Print the rows as JSON.
    #[arg(long)]
    json: bool,
}

/// One worker's memory, in KiB.
#[derive(Debug, Clone, serde::Serialize)]
pub(super) struct MemoryRow {
    worker: String,
    rss_kib: u64,
    pss_kib: u64,
    private_kib: u64,
}

impl MemoryCommand {
    pub(super) async fn run(self) -> anyhow::Result<()> {
        let host = LocalHost::start(None, |config| config.pool.warm = 1).await?;
        let rows = self.measure(&host).await;
        host.stop().await?;
        let rows = rows?;
        if self.json {
            println!("{}", serde_json::to_string_pretty(&rows)?);
        } else {
            println!(
                "{:<22} {:>8} {:>8} {:>11}",
                "worker", "rss_kib", "pss_kib", "private_kib"
            );
            for r in &rows {
                println!(
                    "{:<22} {:>8} {:>8} {:>11}",
                    r.worker, r.rss_kib, r.pss_kib, r.private_kib
                );
            }
        }
        Ok(())
    }

    async fn measure(&self, host: &LocalHost) -> anyhow::Result<Vec<MemoryRow>> {
        let service = &host.service;
        anyhow::ensure!(
            service.wait_pool_filled(Duration::from_secs(30)).await,
            "the warm pool did not fill within 30 s"
        );
        let idle = *service.idle_worker_pids().first().context("no idle worker")?;
        let mut rows = vec![read("idle (pool)", idle)?];
        let namespace = Namespace::new("bench-memory")?;
        let call = || service.invoke(namespace.clone(), None, "echo", b"ping".to_vec());
        call().await?;
        let pid = service
            .process("ns:bench-memory")
            .and_then(|p| p.live_pid())
            .context("no live worker for the tenant")?;
        rows.push(read("assigned, 1 call", pid)?);
        for _ in 1..self.calls {
            call().await?;
        }
        rows.push(read(&format!("assigned, {} calls", self.calls), pid)?);
        Ok(rows)
    }
}

/// The memory of `pid`, from its `smaps_rollup`.
fn read(worker: &str, pid: u32) -> anyhow::Result<MemoryRow> {
    let path = format!("/proc/{pid}/smaps_rollup");
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    let field = |name: &str| -> anyhow::Result<u64> {
        text.lines()
            .find_map(|line| line.strip_prefix(name)?.strip_prefix(':'))
            .and_then(|rest| rest.trim().strip_suffix("kB")?.trim().parse().ok())
            .with_context(|| format!("{path} has no {name}"))
    };
    Ok(MemoryRow {
        worker: worker.to_owned(),
        rss_kib: field("Rss")?,
        pss_kib: field("Pss")?,
        private_kib: field("Private_Clean")? + field("Private_Dirty")?,
    })
}
