//! [`WorkerSyncer`]: the procmgr syncer that turns process ids into worker
//! processes.
//!
//! - sync: adopt a warm worker (or spawn one) and assign it; a worker found
//!   dead is replaced and counted as a restart; a resync pings the worker and
//!   replaces it when it does not answer.
//! - terminating: ask the worker to shut down, kill it at the end of its
//!   grace period, reap it.
//! - terminated: forget it (its cgroup goes with its handle).
//!
//! A worker's exit is noticed the moment it happens (its pidfd) and reported
//! on the exits channel, whose consumer tells procmgr (`report_failure`), so
//! the restart happens after backoff rather than at the next resync.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use super::{PoolSource, Supervisor, Worker, WorkerExit};
use crate::ipc::Assign;
use crate::procmgr::{ProcessSyncer, ProcmgrError, SyncContext, SyncOutcome, TerminatingContext, UpdateType};

/// How long a resync waits for a pong before declaring the worker hung.
pub const PING_TIMEOUT: Duration = Duration::from_secs(5);

/// A worker that exited, and the process id it served.
#[derive(Debug, Clone)]
pub struct ExitEvent {
    pub process_id: String,
    pub pid: u32,
    /// [`Worker::serial`] of the worker that exited.
    pub serial: u64,
    /// How long it had been ready when it exited.
    pub uptime: Duration,
    pub exit: WorkerExit,
}

/// The worker currently serving one process id.
#[derive(Debug, Clone)]
pub struct Assigned {
    pub worker: Arc<Worker>,
    /// Where it came from and how long it took to get it assigned.
    pub source: PoolSource,
    pub start_time: Duration,
}

/// The procmgr syncer for worker processes.
#[derive(Debug)]
pub struct WorkerSyncer {
    supervisor: Arc<Supervisor>,
    workers: Mutex<HashMap<String, Assigned>>,
    exits: mpsc::UnboundedSender<ExitEvent>,
}

fn hook_error(message: impl std::fmt::Display) -> ProcmgrError {
    ProcmgrError::Hook {
        message: message.to_string(),
    }
}

impl WorkerSyncer {
    /// A syncer starting workers through `supervisor`; exits are sent on `exits`.
    pub fn new(supervisor: Arc<Supervisor>, exits: mpsc::UnboundedSender<ExitEvent>) -> Self {
        Self {
            supervisor,
            workers: Mutex::default(),
            exits,
        }
    }

    /// The supervisor.
    pub fn supervisor(&self) -> &Arc<Supervisor> {
        &self.supervisor
    }

    fn workers(&self) -> std::sync::MutexGuard<'_, HashMap<String, Assigned>> {
        self.workers.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The worker assigned to `process_id`, alive or not.
    pub fn assigned(&self, process_id: &str) -> Option<Assigned> {
        self.workers().get(process_id).cloned()
    }

    /// Every assigned worker, by process id.
    pub fn all_assigned(&self) -> Vec<(String, Assigned)> {
        self.workers().iter().map(|(id, a)| (id.clone(), a.clone())).collect()
    }

    async fn start(&self, ctx: &SyncContext, spec: &Assign) -> Result<Assigned, ProcmgrError> {
        let started = Instant::now();
        let acquire = async {
            let (worker, source) = self.supervisor.acquire().await.map_err(hook_error)?;
            if let Err(e) = worker.assign(spec.clone()) {
                worker.kill();
                return Err(hook_error(e));
            }
            Ok((worker, source))
        };
        let (worker, source) = tokio::select! {
            acquired = acquire => acquired?,
            () = ctx.token().cancelled() => return Err(ProcmgrError::Cancelled),
        };
        let assigned = Assigned {
            worker,
            source,
            start_time: started.elapsed(),
        };
        self.watch_exit(&spec.process_id, &assigned.worker);
        Ok(assigned)
    }

    fn watch_exit(&self, process_id: &str, worker: &Arc<Worker>) {
        let exits = self.exits.clone();
        let process_id = process_id.to_owned();
        let worker = Arc::clone(worker);
        tokio::spawn(async move {
            let exit = worker.exit().await;
            let uptime = worker.uptime();
            let _ = exits.send(ExitEvent {
                uptime,
                process_id,
                pid: worker.pid(),
                serial: worker.serial(),
                exit,
            });
        });
    }
}

impl ProcessSyncer for WorkerSyncer {
    type Config = Assign;

    async fn sync_process(
        &self,
        ctx: SyncContext,
        update_type: UpdateType,
        spec: &Assign,
    ) -> Result<SyncOutcome, ProcmgrError> {
        let current = self.assigned(&spec.process_id);
        if let Some(current) = &current
            && current.worker.is_alive()
        {
            if update_type != UpdateType::Sync || current.worker.ping(PING_TIMEOUT).await {
                return Ok(SyncOutcome::running());
            }
            tracing::warn!(process_id = %spec.process_id, pid = current.worker.pid(), "worker did not answer a ping; replacing it");
            current.worker.kill();
        }
        let restarted = current.is_some();
        let supervisor = Arc::clone(&self.supervisor);
        let _plugin_set = supervisor.plugin_set_shared().await;
        let assigned = self.start(&ctx, spec).await?;
        tracing::info!(
            process_id = %spec.process_id,
            pid = assigned.worker.pid(),
            source = assigned.source.as_str(),
            restarted,
            "worker assigned in {:?}",
            assigned.start_time
        );
        self.workers().insert(spec.process_id.clone(), assigned);
        Ok(SyncOutcome {
            terminal: false,
            restarted,
        })
    }

    async fn sync_terminating_process(&self, ctx: TerminatingContext, spec: &Assign) -> Result<(), ProcmgrError> {
        let Some(assigned) = self.assigned(&spec.process_id) else {
            return Ok(());
        };
        let since = (ctx.deadline() - ctx.grace_period()).into_std();
        let exit = assigned.worker.shutdown(since, ctx.grace_updates()).await;
        tracing::info!(process_id = %spec.process_id, pid = assigned.worker.pid(), reason = exit.reason.as_str(), "worker stopped: {}", exit.status);
        Ok(())
    }

    async fn sync_terminated_process(&self, _ctx: SyncContext, spec: &Assign) -> Result<(), ProcmgrError> {
        self.workers().remove(&spec.process_id);
        Ok(())
    }
}
