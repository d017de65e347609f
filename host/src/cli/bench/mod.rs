//! `bulkhead bench`: measurements of a real host run in this process, with
//! real worker processes. `cold-start` (`CONTRACT.md` section 7) times the
//! first request of a new isolation key per level and pool mode beside two
//! baselines; `memory` (an addition) reads what a worker costs in memory.

mod cold_start;
mod memory;

use std::process::ExitCode;
use std::time::Duration;

use clap::Subcommand;

pub use self::cold_start::ColdStartCommand;
pub use self::memory::MemoryCommand;
use crate::local::percentile;

/// Benchmarks.
#[derive(Debug, clap::Args)]
pub struct BenchCommand {
    #[command(subcommand)]
    what: BenchWhat,
}

#[derive(Debug, Subcommand)]
enum BenchWhat {
    /// Cold start per isolation level and pool mode.
    ColdStart(ColdStartCommand),
    /// Resident memory of a worker, idle in the pool and assigned.
    Memory(MemoryCommand),
}

impl BenchCommand {
    pub fn execute(self) -> ExitCode {
        let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
            Ok(runtime) => runtime,
            Err(e) => {
                eprintln!("error: cannot start the async runtime: {e}");
                return ExitCode::FAILURE;
            }
        };
        let done = match self.what {
            BenchWhat::ColdStart(cmd) => runtime.block_on(cmd.run()),
            BenchWhat::Memory(cmd) => runtime.block_on(cmd.run()),
        };
        match done {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e:#}");
                ExitCode::FAILURE
            }
        }
    }
}

/// One row of the cold-start table.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Row {
    pub level: String,
    pub pool: String,
    /// `on` (the worker sandbox as configured: best-effort), `off`, or `-`.
    pub sandbox: String,
    pub n: usize,
    pub p50_us: u64,
    pub p90_us: u64,
    pub p99_us: u64,
    pub max_us: u64,
}

impl Row {
    fn from_samples(level: &str, pool: &str, sandbox: &str, mut samples: Vec<Duration>) -> Self {
        samples.sort_unstable();
        let micros = |d: Duration| u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        Self {
            level: level.to_owned(),
            pool: pool.to_owned(),
            sandbox: sandbox.to_owned(),
            n: samples.len(),
            p50_us: micros(percentile(&samples, 0.50)),
            p90_us: micros(percentile(&samples, 0.90)),
            p99_us: micros(percentile(&samples, 0.99)),
            max_us: micros(samples.last().copied().unwrap_or_default()),
        }
    }
}
