//! [`WorkerSyncer`]: the procmgr syncer that turns process ids into worker
//! processes, and [`AssignedWorker`], the handle procmgr holds for a live
//! process.
//!
//! - sync: with no live worker, adopt a warm one (or spawn one) and assign
//!   it; procmgr publishes it and watches it for death. A resync pings the
//!   live worker and replaces it when it does not answer.
//! - terminating: ask the worker to shut down, kill it at the end of its
//!   grace period, reap it.
//! - terminated: nothing left; procmgr drops the handle (its cgroup goes
//!   with it).
//!
//! The syncer keeps no map of its own: procmgr is the one owner of which
//! worker serves which process, and whether it is live.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{ExitHook, PoolSource, Supervisor, WorkerExit, WorkerHandle};
use crate::ipc::Assignment;
use crate::procmgr::{
    Managed, ProcessId, ProcessSyncer, ProcmgrError, SyncContext, SyncOutcome, TerminatingContext, UpdateType,
};

/// How long a resync waits for a pong before declaring the worker hung.
pub const PING_TIMEOUT: Duration = Duration::from_secs(5);

/// A worker that exited while assigned, and the process id it served.
#[derive(Debug, Clone)]
pub struct ExitEvent {
    pub process_id: ProcessId,
    pub pid: u32,
    /// [`WorkerHandle::serial`] of the worker that exited.
    pub serial: u64,
    /// How long it had been ready when it exited.
    pub uptime: Duration,
    pub exit: WorkerExit,
}

/// The worker serving one process id: procmgr's handle of a live process.
#[derive(Debug, Clone)]
pub struct AssignedWorker {
    worker: Arc<WorkerHandle>,
    source: PoolSource,
    start_time: Duration,
}

impl AssignedWorker {
    /// The worker.
    pub fn worker(&self) -> &Arc<WorkerHandle> {
        &self.worker
    }

    /// Where it came from.
    pub fn source(&self) -> PoolSource {
        self.source
    }

    /// How long it took to get it ready and assigned.
    pub fn start_time(&self) -> Duration {
        self.start_time
    }
}

/// How long a worker whose connection ended may take to exit on its own
/// before it is killed: a worker that dies closes its socket a moment
/// before the kernel reports its exit, and should not be reported killed.
const DISCONNECT_GRACE: Duration = Duration::from_millis(200);

impl Managed for AssignedWorker {
    fn is_live(&self) -> bool {
        self.worker.is_alive()
    }

    /// Resolves when the worker exits, or when its connection ends: a live
    /// worker that can no longer be reached is killed (after
    /// [`DISCONNECT_GRACE`]), so it is restarted like a dead one.
    fn died(&self) -> impl Future<Output = String> + Send + 'static {
        let worker = Arc::clone(&self.worker);
        async move {
            let mut disconnected = worker.disconnected();
            let lost = tokio::select! {
                _ = worker.exit() => false,
                _ = disconnected.wait_for(|closed| *closed) => true,
            };
            if lost && tokio::time::timeout(DISCONNECT_GRACE, worker.exit()).await.is_err() {
                tracing::warn!(
                    pid = worker.pid(),
                    "the worker's connection ended but it lives on; killing it"
                );
                worker.kill();
            }
            let exit = worker.exit().await;
            format!(
                "worker pid {} exited ({}): {}",
                worker.pid(),
                exit.reason.as_str(),
                exit.status
            )
        }
    }
}

/// The procmgr syncer for worker processes.
pub struct WorkerSyncer {
    supervisor: Arc<Supervisor>,
    on_exit: Option<ExitHook>,
}

impl std::fmt::Debug for WorkerSyncer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkerSyncer")
            .field("supervisor", &self.supervisor)
            .finish_non_exhaustive()
    }
}

impl WorkerSyncer {
    /// A syncer starting workers through `supervisor`; `on_exit` is told of
    /// every exit of an assigned worker.
    pub fn new(supervisor: Arc<Supervisor>, on_exit: Option<ExitHook>) -> Self {
        Self { supervisor, on_exit }
    }

    async fn start(
        &self,
        ctx: &SyncContext<AssignedWorker>,
        assignment: &Assignment,
    ) -> Result<AssignedWorker, ProcmgrError> {
        let started = Instant::now();
        let acquire = async {
            let (worker, source) = self.supervisor.acquire().await.map_err(ProcmgrError::hook)?;
            if let Err(e) = worker.assign(assignment.clone()) {
                worker.kill();
                return Err(ProcmgrError::hook(e));
            }
            Ok((worker, source))
        };
        let (worker, source) = tokio::select! {
            acquired = acquire => acquired?,
            () = ctx.token().cancelled() => return Err(ProcmgrError::Cancelled),
        };
        self.report_exit(&assignment.process_id, &worker);
        Ok(AssignedWorker {
            worker,
            source,
            start_time: started.elapsed(),
        })
    }

    /// Tells `on_exit` when `worker` exits.
    fn report_exit(&self, process_id: &ProcessId, worker: &Arc<WorkerHandle>) {
        let Some(hook) = self.on_exit.clone() else { return };
        let process_id = process_id.clone();
        let worker = Arc::clone(worker);
        tokio::spawn(async move {
            let exit = worker.exit().await;
            hook(&ExitEvent {
                uptime: worker.uptime(),
                process_id,
                pid: worker.pid(),
                serial: worker.serial(),
                exit,
            });
        });
    }
}

impl ProcessSyncer for WorkerSyncer {
    type Config = Assignment;
    type Handle = AssignedWorker;

    async fn sync_process(
        &self,
        ctx: SyncContext<AssignedWorker>,
        update_type: UpdateType,
        assignment: &Assignment,
    ) -> Result<SyncOutcome<AssignedWorker>, ProcmgrError> {
        let current = ctx.current();
        if let Some(current) = current
            && current.is_live()
        {
            if update_type != UpdateType::Sync || current.worker.ping(PING_TIMEOUT).await {
                return Ok(SyncOutcome::running());
            }
            tracing::warn!(process_id = %assignment.process_id, pid = current.worker.pid(), "worker did not answer a ping; replacing it");
            current.worker.kill();
        }
        let assigned = self.start(&ctx, assignment).await?;
        tracing::info!(
            process_id = %assignment.process_id,
            pid = assigned.worker.pid(),
            source = assigned.source.as_str(),
            update = ?update_type,
            "worker assigned in {:?}",
            assigned.start_time
        );
        Ok(SyncOutcome::started(assigned))
    }

    async fn sync_terminating_process(
        &self,
        ctx: TerminatingContext<AssignedWorker>,
        assignment: &Assignment,
    ) -> Result<(), ProcmgrError> {
        let Some(assigned) = ctx.current() else {
            return Ok(());
        };
        let exit = assigned
            .worker
            .shutdown(ctx.terminating_since().into_std(), ctx.grace_updates())
            .await;
        tracing::info!(process_id = %assignment.process_id, pid = assigned.worker.pid(), reason = exit.reason.as_str(), "worker stopped: {}", exit.status);
        Ok(())
    }

    async fn sync_terminated_process(
        &self,
        _ctx: SyncContext<AssignedWorker>,
        _assignment: &Assignment,
    ) -> Result<(), ProcmgrError> {
        Ok(())
    }
}
