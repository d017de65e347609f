//! Attacks by a hostile plugin, each with a neighbour tenant calling
//! steadily at the same time: the attacker gets its own typed error, and the
//! neighbour sees zero errors. One module per point of the hostile-plugin
//! issue; `storm.rs` runs them all at once, many times.

mod compile_bomb;
mod connection;
mod disk;
mod escaped;
mod host_memory;
mod jail;
mod logs;
mod quotas;
mod replies;
mod shared_level;
mod slots;
mod start_code;
mod storm;

mod wat;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bulkhead::isolation::TenantPolicy;
use bulkhead::sandbox::CallLimits;

use crate::isolation::Host;

/// What a neighbour saw.
#[derive(Debug)]
pub(crate) struct Report {
    pub ns: &'static str,
    pub calls: usize,
    pub errors: Vec<String>,
    pub p99: Duration,
}

impl Report {
    /// Zero errors, and it was calling all along. Prints what it saw (with
    /// `--nocapture`, for the record of each attack).
    pub(crate) fn assert_untouched(&self) {
        eprintln!(
            "neighbour {} under {}: {} calls, {} errors, p99 {:?}",
            self.ns,
            std::thread::current().name().unwrap_or("?"),
            self.calls,
            self.errors.len(),
            self.p99
        );
        assert!(self.calls > 0, "{} made no call", self.ns);
        assert!(
            self.errors.is_empty(),
            "{} saw {} errors in {} calls: {:?}",
            self.ns,
            self.errors.len(),
            self.calls,
            &self.errors[..self.errors.len().min(3)]
        );
    }
}

/// A tenant calling `echo` back to back until stopped.
pub(crate) struct Neighbour {
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<Report>,
}

impl Neighbour {
    /// Makes one call first (so its worker is up), then streams.
    pub(crate) async fn start(host: &Arc<Host>, ns: &'static str) -> Self {
        host.ok(ns, None, "echo", "warm").await;
        let stop = Arc::new(AtomicBool::new(false));
        let task = {
            let (host, stop) = (Arc::clone(host), Arc::clone(&stop));
            tokio::spawn(async move {
                let (mut calls, mut errors, mut took) = (0, Vec::new(), Vec::new());
                while !stop.load(Ordering::Relaxed) {
                    calls += 1;
                    let started = Instant::now();
                    match host.call(ns, None, "echo", "steady").await {
                        Ok(out) if out.output == b"steady" => took.push(started.elapsed()),
                        Ok(out) => errors.push(format!("wrong output {:?}", out.output)),
                        Err(e) => errors.push(e.to_string()),
                    }
                }
                took.sort_unstable();
                let p99 = bulkhead::local::percentile(&took, 0.99);
                Report { ns, calls, errors, p99 }
            })
        };
        Self { stop, task }
    }

    pub(crate) async fn stop(self) -> Report {
        self.stop.store(true, Ordering::Relaxed);
        self.task.await.expect("the neighbour's task")
    }
}

/// A policy whose calls run under tight limits (fast faults).
pub(crate) fn tight(timeout: Duration) -> TenantPolicy {
    TenantPolicy {
        call: CallLimits {
            fuel: Some(200_000_000),
            memory: 64 << 20,
            timeout,
        },
        ..TenantPolicy::default()
    }
}
