//! The isolation manager: isolation keys to process ids to live workers.
//!
//! `get_or_create` returns a live worker at once; otherwise it issues one
//! Create and every concurrent caller for that id waits on the same status
//! change (no polling, no duplicate creates). A session's process is bound to
//! the namespace that created it. Idle processes are terminated after
//! `idle_timeout`, and at most `max_processes` live at once (the least
//! recently used idle one is evicted to make room).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::{Duration, Instant};

use tokio::sync::{Notify, mpsc};

use super::admission::Admission;
use super::{IsolationConfig, IsolationError, IsolationKey, IsolationLevel, TenantPolicy};
use crate::ipc::Assign;
use crate::names::{Namespace, SessionId};
use crate::procmgr::{
    Health, ProcessManager, ProcessManagerOptions, ProcessState, ProcessStatus, ProcessUpdate, ProcmgrError,
};
use crate::supervisor::{ExitEvent, PoolSource, Supervisor, Worker, WorkerSyncer};

/// A worker that dies within this time of starting continues its process's
/// crash streak, and each death in a streak backs off longer; one that ran
/// longer starts a new streak.
const STABLE_UPTIME: Duration = Duration::from_secs(10);

/// Extra time `terminate_process` waits beyond the grace period.
const TERMINATE_SLACK: Duration = Duration::from_secs(5);

/// What a caller gets for a key: the worker and its bulkhead.
#[derive(Debug, Clone)]
pub struct Acquired {
    pub process_id: String,
    pub level: IsolationLevel,
    pub worker: Arc<Worker>,
    pub admission: Arc<Admission>,
    /// Set when this call waited for the process to be created: where the
    /// worker came from and how long creating it took.
    pub cold_start: Option<(PoolSource, Duration)>,
}

/// One process as `list_processes` reports it.
#[derive(Debug, Clone)]
pub struct ProcessInfo {
    pub id: String,
    pub level: IsolationLevel,
    pub namespace: Option<Namespace>,
    pub session: Option<SessionId>,
    pub status: ProcessStatus,
    pub pid: Option<u32>,
    pub in_flight: usize,
    pub queued: usize,
}

struct Entry {
    level: IsolationLevel,
    namespace: Option<Namespace>,
    session: Option<SessionId>,
    admission: Arc<Admission>,
    last_used: Instant,
    /// Consecutive worker deaths soon after a start.
    crash_streak: u32,
}

/// Maps keys to supervised worker processes.
pub struct IsolationManager {
    config: IsolationConfig,
    procmgr: ProcessManager<WorkerSyncer>,
    entries: Mutex<HashMap<String, Entry>>,
    reaper: Arc<Notify>,
}

impl std::fmt::Debug for IsolationManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IsolationManager")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl IsolationManager {
    /// A manager whose processes are workers of `supervisor`.
    pub fn new(config: IsolationConfig, supervisor: Arc<Supervisor>, options: ProcessManagerOptions) -> Arc<Self> {
        let (exits_tx, exits) = mpsc::unbounded_channel();
        let procmgr = ProcessManager::new(WorkerSyncer::new(supervisor, exits_tx), options);
        let manager = Arc::new(Self {
            config,
            procmgr,
            entries: Mutex::default(),
            reaper: Arc::new(Notify::new()),
        });
        tokio::spawn(report_exits(Arc::downgrade(&manager), exits));
        if manager.config.idle_timeout.is_some() {
            tokio::spawn(reap_idle(Arc::downgrade(&manager)));
        }
        manager
    }

    fn entries(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The configuration.
    pub fn config(&self) -> &IsolationConfig {
        &self.config
    }

    /// The level (and limits) a namespace is served at.
    pub fn policy(&self, namespace: &Namespace) -> &TenantPolicy {
        self.config.policy(namespace)
    }

    /// The default isolation level.
    pub fn level(&self) -> IsolationLevel {
        self.config.default_policy.level
    }

    /// The process manager (health, metrics, statuses).
    pub fn procmgr(&self) -> &ProcessManager<WorkerSyncer> {
        &self.procmgr
    }

    /// The supervisor that starts the workers.
    pub fn supervisor(&self) -> &Arc<Supervisor> {
        self.procmgr.syncer().supervisor()
    }

    /// The live worker for `key`, creating its process if needed.
    pub async fn get_or_create_process(&self, key: &IsolationKey) -> Result<Acquired, IsolationError> {
        let policy = self.policy(&key.namespace);
        let level = policy.level;
        let id = key.process_id(level);
        let (admission, mut watch, created) = {
            let mut entries = self.entries();
            if let Some(entry) = entries.get(&id)
                && let Some(owner) = &entry.namespace
                && *owner != key.namespace
            {
                return Err(IsolationError::Forbidden(format!(
                    "session {} belongs to another namespace",
                    key.session
                )));
            }
            let admission = match entries.get_mut(&id) {
                Some(entry) => {
                    entry.last_used = Instant::now();
                    Arc::clone(&entry.admission)
                }
                None => {
                    self.make_room(&mut entries)?;
                    let admission = Arc::new(Admission::new(policy.admission.clone()));
                    let (namespace, session) = match level {
                        IsolationLevel::None => (None, None),
                        IsolationLevel::Namespace => (Some(key.namespace.clone()), None),
                        IsolationLevel::Session => (Some(key.namespace.clone()), Some(key.session.clone())),
                    };
                    entries.insert(
                        id.clone(),
                        Entry {
                            level,
                            namespace,
                            session,
                            admission: Arc::clone(&admission),
                            last_used: Instant::now(),
                            crash_streak: 0,
                        },
                    );
                    self.reaper.notify_one();
                    admission
                }
            };
            // Fast path: a live worker, nothing to wait for.
            if let Some(assigned) = self.procmgr.syncer().assigned(&id)
                && assigned.worker.is_alive()
                && self
                    .procmgr
                    .process_status(&id)
                    .is_some_and(|s| s.state == ProcessState::Syncing)
            {
                return Ok(Acquired {
                    process_id: id,
                    level,
                    worker: assigned.worker,
                    admission,
                    cold_start: None,
                });
            }
            let status = self.procmgr.process_status(&id);
            let needs_create = status
                .as_ref()
                .is_none_or(|s| s.state.is_terminating() || s.state.is_terminated());
            let watch = if needs_create {
                let spec = Assign {
                    process_id: id.clone(),
                    level: level.as_str().to_owned(),
                    namespace: (level != IsolationLevel::None).then(|| key.namespace.clone()),
                    session: (level == IsolationLevel::Session).then(|| key.session.clone()),
                };
                self.procmgr.update_process(ProcessUpdate::create(id.clone(), spec))
            } else {
                self.procmgr
                    .subscribe(&id)
                    .ok_or_else(|| ProcmgrError::UnknownProcess { id: id.as_str().into() })
            }
            .map_err(|e| IsolationError::Unavailable {
                message: e.to_string(),
                retry_after: None,
            })?;
            (admission, watch, needs_create)
        };

        let live = |id: &str| self.procmgr.syncer().assigned(id).is_some_and(|a| a.worker.is_alive());
        let mut current = watch.current();
        if !created && current.state == ProcessState::Syncing && current.error_count == 0 && !live(&id) {
            // The worker has just died and procmgr has not heard yet (its
            // exit is on the way): wait for that news, which carries the
            // backoff, or for the restart.
            let restarts = current.restart_count;
            let _ = watch
                .wait_for_timeout(
                    |s| s.error_count > 0 || s.restart_count > restarts || s.state != ProcessState::Syncing,
                    self.config.start_timeout,
                )
                .await;
            current = watch.current();
        }
        if !created && current.error_count > 0 {
            // Starting or restarting after failures: procmgr backs off.
            return Err(unavailable(&id, &current));
        }
        let status = watch
            .wait_for_timeout(
                |s| s.state == ProcessState::Syncing || s.error_count > 0 || s.state.is_terminating(),
                self.config.start_timeout,
            )
            .await
            .map_err(|_| IsolationError::Unavailable {
                message: format!("timeout waiting for process {id} to start"),
                retry_after: Some(Duration::from_secs(1)),
            })?;
        if status.state != ProcessState::Syncing || status.error_count > 0 {
            return Err(unavailable(&id, &status));
        }
        match self.procmgr.syncer().assigned(&id) {
            Some(assigned) if assigned.worker.is_alive() => Ok(Acquired {
                process_id: id,
                level,
                worker: assigned.worker,
                admission,
                cold_start: Some((assigned.source, assigned.start_time)),
            }),
            _ => Err(unavailable(&id, &status)),
        }
    }

    /// Frees a slot when `max_processes` are live: terminates the least
    /// recently used process with nothing running or queued.
    fn make_room(&self, entries: &mut HashMap<String, Entry>) -> Result<(), IsolationError> {
        if entries.len() < self.config.max_processes {
            return Ok(());
        }
        let victim = entries
            .iter()
            .filter(|(_, e)| e.admission.in_flight() == 0 && e.admission.queued() == 0)
            .min_by_key(|(_, e)| e.last_used)
            .map(|(id, _)| id.clone());
        let Some(victim) = victim else {
            return Err(IsolationError::Unavailable {
                message: format!(
                    "all {} processes are busy (isolation.max_processes)",
                    self.config.max_processes
                ),
                retry_after: Some(Duration::from_secs(1)),
            });
        };
        tracing::info!(process_id = %victim, "evicting the least recently used idle process to make room");
        entries.remove(&victim);
        self.begin_terminate(&victim, self.config.grace_period);
        Ok(())
    }

    fn begin_terminate(&self, id: &str, grace: Duration) {
        let update = ProcessUpdate::terminate(id.to_owned()).with_grace_period(grace);
        if self.procmgr.update_process(update).is_ok() {
            self.procmgr.forget(id);
        }
    }

    /// The live process of `id`, if any.
    pub fn get_process(&self, id: &str) -> Option<ProcessInfo> {
        let entries = self.entries();
        self.info(id, entries.get(id))
    }

    fn info(&self, id: &str, entry: Option<&Entry>) -> Option<ProcessInfo> {
        let status = self.procmgr.process_status(id)?;
        if status.state == ProcessState::Finished {
            return None;
        }
        let entry = entry?;
        let pid = self
            .procmgr
            .syncer()
            .assigned(id)
            .filter(|a| a.worker.is_alive())
            .map(|a| a.worker.pid());
        Some(ProcessInfo {
            id: id.to_owned(),
            level: entry.level,
            namespace: entry.namespace.clone(),
            session: entry.session.clone(),
            status,
            pid,
            in_flight: entry.admission.in_flight(),
            queued: entry.admission.queued(),
        })
    }

    /// Every live process, sorted by id.
    pub fn list_processes(&self) -> Vec<ProcessInfo> {
        let entries = self.entries();
        let mut list: Vec<ProcessInfo> = entries.iter().filter_map(|(id, e)| self.info(id, Some(e))).collect();
        list.sort_by(|a, b| a.id.cmp(&b.id));
        list
    }

    /// Terminates `id` and waits until its worker is gone (at most the grace
    /// period plus a few seconds); the id can be created again at once.
    pub async fn terminate_process(&self, id: &str, grace: Option<Duration>) -> Result<(), IsolationError> {
        let grace = grace.unwrap_or(self.config.grace_period);
        let known = self.entries().remove(id).is_some();
        let status = self.procmgr.process_status(id);
        if !known && status.as_ref().is_none_or(|s| s.state == ProcessState::Finished) {
            return Err(IsolationError::NotFound(format!("process ID {id} not found")));
        }
        let mut watch = self
            .procmgr
            .update_process(ProcessUpdate::terminate(id.to_owned()).with_grace_period(grace))
            .map_err(|e| IsolationError::NotFound(e.to_string()))?;
        let waited = watch
            .wait_for_timeout(|s| s.state.is_terminated(), grace + TERMINATE_SLACK)
            .await;
        self.procmgr.forget(id);
        match waited {
            Ok(_) | Err(ProcmgrError::ProcessGone { .. }) => Ok(()),
            Err(_) => Err(IsolationError::Unavailable {
                message: format!("timeout waiting for process {id} to terminate"),
                retry_after: None,
            }),
        }
    }

    /// Marks `id` as used now (the idle timer restarts).
    pub fn touch(&self, id: &str) {
        if let Some(entry) = self.entries().get_mut(id) {
            entry.last_used = Instant::now();
        }
        self.reaper.notify_one();
    }

    /// procmgr's health report.
    pub fn health(&self) -> Health {
        self.procmgr.health()
    }

    /// Terminates every process (termination hooks run, workers get their
    /// grace period) and stops the warm pool; an error if `deadline` passes
    /// first.
    pub async fn shutdown(&self, deadline: Instant) -> Result<(), IsolationError> {
        let result = self.procmgr.shutdown(deadline.into()).await;
        self.entries().clear();
        self.supervisor().shutdown().await;
        result.map_err(|e| IsolationError::Unavailable {
            message: e.to_string(),
            retry_after: None,
        })
    }
}

fn unavailable(id: &str, status: &ProcessStatus) -> IsolationError {
    let reason = status.last_error.as_deref().unwrap_or("it is starting");
    IsolationError::Unavailable {
        message: format!("process {id} is unavailable: {reason}"),
        retry_after: Some(
            status
                .retry_after()
                .unwrap_or(Duration::from_secs(1))
                .max(Duration::from_secs(1)),
        ),
    }
}

/// Tells procmgr about workers that died on their own.
async fn report_exits(manager: Weak<IsolationManager>, mut exits: mpsc::UnboundedReceiver<ExitEvent>) {
    while let Some(event) = exits.recv().await {
        let Some(manager) = manager.upgrade() else { return };
        if let Some(hook) = &manager.config.on_exit {
            hook(&event);
        }
        let terminating = manager
            .procmgr
            .process_status(&event.process_id)
            .is_none_or(|s| s.state.is_terminating() || s.state.is_terminated());
        // A worker of an earlier generation of this id (terminated, and the
        // id created again since) is no news for the current one.
        let current = manager
            .procmgr
            .syncer()
            .assigned(&event.process_id)
            .is_some_and(|a| a.worker.serial() == event.serial);
        if terminating || !current {
            continue;
        }
        tracing::warn!(
            process_id = %event.process_id,
            pid = event.pid,
            reason = event.exit.reason.as_str(),
            "worker exited unexpectedly: {}",
            event.exit.status
        );
        let streak = manager.entries().get_mut(&event.process_id).map_or(1, |entry| {
            entry.crash_streak = if event.uptime < STABLE_UPTIME {
                entry.crash_streak + 1
            } else {
                1
            };
            entry.crash_streak
        });
        let message = format!(
            "worker pid {} exited ({}): {}",
            event.pid,
            event.exit.reason.as_str(),
            event.exit.status
        );
        let _ = manager
            .procmgr
            .report_failure_in_streak(&event.process_id, message, streak);
    }
}

/// Terminates processes idle for `idle_timeout`. Sleeps until the earliest
/// one is due, or until activity changes the picture.
async fn reap_idle(manager: Weak<IsolationManager>) {
    loop {
        let Some(strong) = manager.upgrade() else { return };
        let Some(idle) = strong.config.idle_timeout else { return };
        let now = Instant::now();
        let mut due = Vec::new();
        let mut next: Option<Instant> = None;
        for (id, entry) in strong.entries().iter() {
            if entry.admission.in_flight() > 0 || entry.admission.queued() > 0 {
                continue;
            }
            let at = entry.last_used + idle;
            if at <= now {
                due.push(id.clone());
            } else {
                next = Some(next.map_or(at, |n| n.min(at)));
            }
        }
        for id in due {
            tracing::info!(process_id = %id, "terminating a process idle for {idle:?}");
            strong.entries().remove(&id);
            strong.begin_terminate(&id, strong.config.grace_period);
        }
        let wake = Arc::clone(&strong.reaper);
        drop(strong);
        let woken = wake.notified();
        match next {
            Some(at) => {
                tokio::select! {
                    () = tokio::time::sleep_until(at.into()) => {}
                    () = woken => {}
                }
            }
            None => woken.await,
        }
    }
}
