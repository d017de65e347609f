//! The manager's public face: construction, accepting updates, and status,
//! waiting and health queries. Failure reports, reconciliation and shutdown
//! are in `reconcile.rs`; the per-process work happens in `task.rs`.

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::runtime::Handle;
use tokio::sync::{Notify, watch};
use tokio_util::sync::{CancellationToken, DropGuard};

use super::error::ProcmgrError;
use super::health::Health;
use super::options::ProcessManagerOptions;
use super::queue::WorkQueue;
use super::state::{Entry, Recreate, Table};
use super::syncer::ProcessSyncer;
use super::types::{ProcessId, ProcessState, ProcessStatus, ProcessUpdate, UpdateType};
use super::waiter::StatusWatch;
use super::{dispatch, task};

/// State shared by the manager handles, the dispatcher and the process tasks.
pub(crate) struct Shared<S: ProcessSyncer> {
    pub(crate) syncer: S,
    pub(crate) table: Mutex<Table<S::Config, S::Handle>>,
    pub(crate) queue: WorkQueue,
    pub(crate) opts: ProcessManagerOptions,
    /// Parent of every hook token; cancelled when the manager goes away.
    pub(crate) root: CancellationToken,
    pub(crate) runtime: Handle,
}

impl<S: ProcessSyncer> Shared<S> {
    pub(crate) fn lock(&self) -> MutexGuard<'_, Table<S::Config, S::Handle>> {
        self.table.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Remove `id` for good: its queue item and metrics series go too.
    pub(crate) fn purge(&self, table: &mut Table<S::Config, S::Handle>, id: &ProcessId) {
        if table.entries.remove(id).is_some() {
            self.queue.remove(id.as_str());
            self.opts.metrics.process_purged(id);
        }
    }

    /// Insert a fresh entry for `id` and start its task.
    fn create(
        self: &Arc<Self>,
        table: &mut Table<S::Config, S::Handle>,
        id: ProcessId,
        config: S::Config,
        update_type: UpdateType,
    ) -> StatusWatch<S::Handle> {
        let generation = table.generation();
        let (status, rx) = watch::channel(ProcessStatus::starting());
        let watch = StatusWatch::new(id.clone(), rx);
        let wake = Arc::new(Notify::new());
        let mut entry = Entry::new(generation, config, status, Arc::clone(&wake));
        entry.pending = Some(update_type);
        table.entries.insert(id.clone(), entry);
        self.runtime.spawn(task::run(Arc::clone(self), id, generation, wake));
        watch
    }
}

/// Supervises every process: one task per id drives the syncer's
/// hooks through Starting -> Syncing -> Terminating -> Terminated -> Finished.
///
/// Cheap to clone; the manager stops its tasks when the last clone is dropped.
pub struct ProcessManager<S: ProcessSyncer> {
    pub(crate) shared: Arc<Shared<S>>,
    _stop: Arc<DropGuard>,
}

impl<S: ProcessSyncer> Clone for ProcessManager<S> {
    fn clone(&self) -> Self {
        Self {
            shared: Arc::clone(&self.shared),
            _stop: Arc::clone(&self._stop),
        }
    }
}

impl<S: ProcessSyncer> fmt::Debug for ProcessManager<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProcessManager")
            .field("processes", &self.shared.lock().entries.len())
            .field("work_queue_depth", &self.shared.queue.len())
            .field("options", &self.shared.opts)
            .finish_non_exhaustive()
    }
}

impl<S: ProcessSyncer> ProcessManager<S> {
    /// A manager driving `syncer`, running its tasks on the current tokio
    /// runtime.
    ///
    /// # Panics
    /// If called outside a tokio runtime (use [`new_in`](Self::new_in) then).
    pub fn new(syncer: S, options: ProcessManagerOptions) -> Self {
        Self::new_in(Handle::current(), syncer, options)
    }

    /// A manager driving `syncer`, running its tasks on `runtime`.
    pub fn new_in(runtime: Handle, syncer: S, options: ProcessManagerOptions) -> Self {
        let root = CancellationToken::new();
        let shared = Arc::new(Shared {
            syncer,
            table: Mutex::new(Table::default()),
            queue: WorkQueue::new(),
            opts: options,
            root: root.clone(),
            runtime,
        });
        shared.runtime.spawn(dispatch::run(Arc::clone(&shared)));
        Self {
            shared,
            _stop: Arc::new(root.drop_guard()),
        }
    }

    /// The syncer this manager drives.
    pub fn syncer(&self) -> &S {
        &self.shared.syncer
    }

    /// Submit an update; returns a watch on the status of the process
    /// generation the update applies to, taken atomically with the update,
    /// so waiting on it is race-free.
    ///
    /// - An unknown id is created (with the update's config, required).
    /// - A Finished process is purged and created anew by a Create; other
    ///   updates of a Finished process are ignored.
    /// - A Terminate moves the process to Terminating before this returns,
    ///   cancels a sync in flight, and can only shorten the grace period.
    /// - A Create while the process is terminating creates it again as soon
    ///   as it is Finished (the receiver is the new generation's); a later
    ///   Terminate cancels that.
    /// - Otherwise the update replaces the pending one (latest wins).
    pub fn update_process(&self, update: ProcessUpdate<S::Config>) -> Result<StatusWatch<S::Handle>, ProcmgrError> {
        let shared = &self.shared;
        let m = &*shared.opts.metrics;
        let ProcessUpdate {
            id,
            update_type,
            config,
            grace_period,
        } = update;
        let mut table = shared.lock();
        let shutting_down = table.shutting_down;
        let state = table.entries.get(&id).map(|e| e.state);
        match state {
            None | Some(ProcessState::Finished) => {
                if state.is_some() && update_type != UpdateType::Create {
                    let rx = table.entries[&id].status.subscribe();
                    return Ok(StatusWatch::new(id, rx));
                }
                let Some(config) = config else {
                    return Err(ProcmgrError::UnknownProcess { id });
                };
                if shutting_down {
                    return Err(ProcmgrError::ShuttingDown);
                }
                shared.purge(&mut table, &id);
                let rx = shared.create(&mut table, id.clone(), config, update_type);
                if update_type == UpdateType::Terminate
                    && let Some(e) = table.entries.get_mut(&id)
                {
                    let default = shared.opts.default_grace_period;
                    e.begin_termination(&id, grace_period, default, &shared.queue, m);
                    e.publish();
                }
                Ok(rx)
            }
            Some(state) => {
                let default_grace = shared.opts.default_grace_period;
                let Some(e) = table.entries.get_mut(&id) else {
                    return Err(ProcmgrError::UnknownProcess { id });
                };
                match update_type {
                    UpdateType::Terminate => {
                        e.recreate = None;
                        e.begin_termination(&id, grace_period, default_grace, &shared.queue, m);
                        e.publish();
                    }
                    UpdateType::Create if state.is_terminating() => {
                        if shutting_down {
                            return Err(ProcmgrError::ShuttingDown);
                        }
                        let config = config.unwrap_or_else(|| e.config.clone());
                        let recreate = e.recreate.get_or_insert_with(|| Recreate {
                            config: config.clone(),
                            status: watch::Sender::new(ProcessStatus::starting()),
                        });
                        recreate.config = config;
                        return Ok(StatusWatch::new(id, recreate.status.subscribe()));
                    }
                    _ if state.is_terminating() => {}
                    _ => {
                        if let Some(config) = config {
                            e.config = config;
                        }
                        e.pending = Some(update_type);
                        e.wake.notify_one();
                    }
                }
                let rx = e.status.subscribe();
                Ok(StatusWatch::new(id, rx))
            }
        }
    }

    /// The current status of `id`, if the manager knows it.
    pub fn process_status(&self, id: &str) -> Option<ProcessStatus<S::Handle>> {
        self.shared.lock().entries.get(id).map(Entry::snapshot)
    }

    /// A watch on `id`'s status; it holds the current value at once, so a
    /// waiter that subscribes after a change still sees it.
    pub fn subscribe(&self, id: &str) -> Option<StatusWatch<S::Handle>> {
        let table = self.shared.lock();
        let (key, e) = table.entries.get_key_value(id)?;
        Some(StatusWatch::new(key.clone(), e.status.subscribe()))
    }

    /// Wait until `id`'s status satisfies `predicate` (checked on the current
    /// status first), at most `timeout`.
    pub async fn wait_for(
        &self,
        id: &str,
        predicate: impl FnMut(&ProcessStatus<S::Handle>) -> bool,
        timeout: Duration,
    ) -> Result<ProcessStatus<S::Handle>, ProcmgrError> {
        let Some(mut watch) = self.subscribe(id) else {
            return Err(ProcmgrError::UnknownProcess { id: id.into() });
        };
        watch.wait_for_timeout(predicate, timeout).await
    }

    /// True once `id`'s termination hook succeeded (Terminated or Finished).
    pub fn is_process_terminated(&self, id: &str) -> bool {
        self.process_status(id).is_some_and(|s| s.state.is_terminated())
    }

    /// True once `id`'s cleanup hook succeeded.
    pub fn is_process_finished(&self, id: &str) -> bool {
        self.process_status(id)
            .is_some_and(|s| s.state == ProcessState::Finished)
    }

    /// Counts and per-process health of everything not yet purged.
    pub fn health(&self) -> Health {
        let table = self.shared.lock();
        Health::from_entries(&table.entries, self.shared.queue.len())
    }

    /// Number of ids waiting in the work queue.
    pub fn work_queue_len(&self) -> usize {
        self.shared.queue.len()
    }
}
