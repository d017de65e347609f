//! The warm pool: idle workers with the engine up and every plugin loaded,
//! waiting to be adopted with a single `Assign`. They follow plugin changes
//! like every other worker (the plugin set knows them).
//!
//! A background task keeps the pool at its target size: it refills when a
//! worker is taken and when an idle worker dies, and it sleeps otherwise (no
//! polling). Failing spawns are retried with a growing delay.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

use tokio::sync::{Notify, watch};

use super::{Supervisor, WorkerHandle};
use crate::procmgr::exponential_backoff;

/// Where a process's worker came from; the `source` label of
/// `bulkhead_cold_start_seconds`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PoolSource {
    /// Adopted from the warm pool.
    Pool,
    /// Spawned for the occasion.
    Spawn,
}

impl PoolSource {
    /// The label value.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Pool => "pool",
            Self::Spawn => "spawn",
        }
    }
}

/// How long a refill waits while the pool still has idle workers (see
/// `start_refilling`). An empty pool is refilled at once.
const REFILL_DEFER: Duration = Duration::from_millis(20);

#[derive(Debug)]
pub(crate) struct WarmPool {
    target: usize,
    idle: Mutex<VecDeque<Arc<WorkerHandle>>>,
    wake: Arc<Notify>,
    size: watch::Sender<usize>,
    closed: AtomicBool,
}

impl WarmPool {
    pub(crate) fn new(target: usize) -> Self {
        Self {
            target,
            idle: Mutex::default(),
            wake: Arc::new(Notify::new()),
            size: watch::Sender::new(0),
            closed: AtomicBool::new(false),
        }
    }

    fn idle(&self) -> std::sync::MutexGuard<'_, VecDeque<Arc<WorkerHandle>>> {
        self.idle.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn publish(&self, idle: &VecDeque<Arc<WorkerHandle>>) {
        self.size.send_replace(idle.len());
    }

    pub(crate) fn len(&self) -> usize {
        self.idle().len()
    }

    pub(crate) fn pids(&self) -> Vec<u32> {
        self.idle().iter().map(|w| w.pid()).collect()
    }

    /// An idle, live worker that `fits`, if there is one; the pool refills
    /// behind it. Idle workers that no longer fit (started for a smaller
    /// plugin set than today's) are retired on the way.
    pub(crate) fn take(&self, fits: impl Fn(&WorkerHandle) -> bool) -> Option<Arc<WorkerHandle>> {
        let mut idle = self.idle();
        let mut unfit = Vec::new();
        let taken = loop {
            match idle.pop_front() {
                Some(worker) if !worker.is_alive() => continue,
                Some(worker) if fits(&worker) => break Some(worker),
                Some(worker) => unfit.push(worker),
                None => break None,
            }
        };
        self.publish(&idle);
        drop(idle);
        retire(unfit);
        self.wake.notify_one();
        taken
    }

    /// Wakes the refill task, to look at the idle workers again.
    pub(crate) fn nudge(&self) {
        self.wake.notify_one();
    }

    pub(crate) async fn wait_filled(&self, timeout: Duration) -> bool {
        let mut size = self.size.subscribe();
        let target = self.target;
        tokio::time::timeout(timeout, size.wait_for(|n| *n >= target))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    /// Stops the refill task and drops (kills) every idle worker.
    pub(crate) async fn close(&self) {
        self.closed.store(true, Ordering::Relaxed);
        self.wake.notify_one();
        let workers: Vec<Arc<WorkerHandle>> = self.idle().drain(..).collect();
        self.size.send_replace(0);
        for worker in workers {
            worker.kill();
            worker.exit().await;
        }
    }

    /// Starts the task that keeps the pool full. It holds the supervisor
    /// weakly and ends when the supervisor is dropped or the pool closed.
    pub(crate) fn start_refilling(supervisor: &Arc<Supervisor>) {
        if supervisor.pool.target == 0 {
            return;
        }
        let weak = Arc::downgrade(supervisor);
        tokio::spawn(async move {
            let mut failures = 0;
            let mut deferred = false;
            loop {
                let Some(supervisor) = weak.upgrade() else { return };
                let pool = &supervisor.pool;
                if pool.closed.load(Ordering::Relaxed) {
                    return;
                }
                let needed = supervisor.slots_needed();
                let (idle_now, unfit) = {
                    let mut idle = pool.idle();
                    idle.retain(|w| w.is_alive());
                    let (fit, unfit): (VecDeque<_>, VecDeque<_>) =
                        idle.drain(..).partition(|w| w.instance_slots() >= needed);
                    *idle = fit;
                    pool.publish(&idle);
                    (idle.len(), unfit)
                };
                retire(unfit);
                if idle_now < pool.target && idle_now > 0 && !deferred {
                    // Workers are still idle: starting a replacement now
                    // would compete for the CPU with the request that just
                    // adopted one. Let it finish first.
                    deferred = true;
                    drop(supervisor);
                    tokio::time::sleep(REFILL_DEFER).await;
                    continue;
                }
                deferred = false;
                if idle_now >= pool.target {
                    let wake = Arc::clone(&pool.wake);
                    let woken = wake.notified();
                    drop(supervisor);
                    woken.await;
                    continue;
                }
                let spawned = supervisor.spawn_worker().await;
                match spawned {
                    Ok(worker) => {
                        failures = 0;
                        watch_death(&weak, &worker);
                        let mut idle = pool.idle();
                        if pool.closed.load(Ordering::Relaxed) {
                            return;
                        }
                        idle.push_back(worker);
                        pool.publish(&idle);
                    }
                    Err(e) => {
                        let delay = exponential_backoff(failures, Duration::from_millis(100), Duration::from_secs(10));
                        failures += 1;
                        tracing::warn!("warm pool: cannot start a worker ({e}); retrying in {delay:?}");
                        drop(supervisor);
                        tokio::time::sleep(delay).await;
                    }
                }
            }
        });
    }
}

/// Kills idle workers the pool let go, and reaps them off the caller's path.
fn retire(workers: impl IntoIterator<Item = Arc<WorkerHandle>>) {
    for worker in workers {
        tracing::debug!(
            pid = worker.pid(),
            "retiring an idle worker started for a smaller plugin set"
        );
        worker.kill();
        tokio::spawn(async move {
            worker.exit().await;
        });
    }
}

/// Wakes the refill task when `worker` disconnects (dies or is dropped).
fn watch_death(pool_owner: &Weak<Supervisor>, worker: &Arc<WorkerHandle>) {
    let mut gone = worker.disconnected();
    let owner = Weak::clone(pool_owner);
    tokio::spawn(async move {
        let _ = gone.wait_for(|closed| *closed).await;
        if let Some(supervisor) = owner.upgrade() {
            supervisor.pool.wake.notify_one();
        }
    });
}
