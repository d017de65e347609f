//! The isolation manager: isolation keys to process ids to live workers.
//!
//! `get_or_create_process` returns the live worker procmgr publishes for the
//! key's process at once; otherwise it issues one Create, and every
//! concurrent caller for that id waits on the same status watch (no polling,
//! no duplicate creates). procmgr is the one source of whether a process is
//! live: the manager keeps only what procmgr does not know, each
//! compartment's bulkhead and when it was last used. A session's process is
//! bound to the namespace that created it. Idle ones are terminated after
//! `idle_timeout` (see `idle.rs`).
//!
//! Room: at most `max_processes` live at once, and each tenant holds at most
//! its quota (`[tenants.NS] max_processes`, default a quarter of the host).
//! Making room for a tenant's new process evicts that tenant's own least
//! recently used idle process first; only when it has none does it take the
//! least recently used idle process of the tenant holding the most
//! processes, and only if that is more than the caller holds: a tenant
//! churning session ids can evict only its own processes, and never a tenant
//! that holds as few as it does.
//!
//! Pre-warmed tenants (`IsolationSettings::prewarm`): their processes are
//! created by [`IsolationManager::prewarm`] at start and pinned: the idle
//! reaper and eviction pass them by, and procmgr re-creates them after a
//! crash as it does any process. An operator's terminate ends one until the
//! tenant's next call, which creates it pinned again.
//!
//! Lock order: the manager's compartments, then procmgr's table (procmgr
//! never calls back into the manager).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

use super::admission::Admission;
use super::{IsolationError, IsolationKey, IsolationLevel, IsolationSettings, TenantPolicy};
use crate::ipc::Assignment;
use crate::names::Namespace;
use crate::procmgr::{
    Health, Managed, ProcessId, ProcessManager, ProcessManagerOptions, ProcessState, ProcessStatus, ProcessSyncer,
    ProcessUpdate, ProcmgrError, StatusWatch,
};

/// Extra time `terminate_process` waits beyond the grace period.
pub const TERMINATE_SLACK: Duration = Duration::from_secs(5);

/// What a caller gets for a key: the live worker and its bulkhead.
#[derive(Debug, Clone)]
pub struct Acquired<H> {
    pub process_id: ProcessId,
    pub level: IsolationLevel,
    /// procmgr's handle of the live worker.
    pub handle: H,
    pub admission: Arc<Admission>,
    /// Whether this call waited for the process to be (re)started.
    pub cold: bool,
}

/// One process as `list_processes` reports it.
#[derive(Debug, Clone)]
pub struct ProcessInfo<H> {
    pub assignment: Assignment,
    /// procmgr's status; its handle is set while a live worker serves it.
    pub status: ProcessStatus<H>,
    pub in_flight: usize,
    pub queued: usize,
}

/// What the manager knows of a compartment that procmgr does not.
#[derive(Debug)]
struct Compartment {
    assignment: Assignment,
    admission: Arc<Admission>,
    last_used: Instant,
}

/// A compartment entered by a call: its bulkhead, a watch on its process,
/// and whether this call created the process.
struct Entered<H> {
    admission: Arc<Admission>,
    watch: StatusWatch<H>,
    created: bool,
}

/// Maps keys to supervised processes of syncer `S`.
pub struct IsolationManager<S: ProcessSyncer<Config = Assignment>> {
    settings: IsolationSettings,
    pub(super) procmgr: ProcessManager<S>,
    compartments: Mutex<HashMap<ProcessId, Compartment>>,
    /// The processes of pre-warmed tenants: never idle-reaped or evicted.
    pinned: HashSet<ProcessId>,
    /// Woken when a compartment is used or added, for the idle reaper.
    pub(super) activity: Arc<Notify>,
}

impl<S: ProcessSyncer<Config = Assignment>> std::fmt::Debug for IsolationManager<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IsolationManager")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

/// The live handle in `status`, if the process can serve now.
fn live<H: Managed>(status: &ProcessStatus<H>) -> Option<&H> {
    (status.state == ProcessState::Syncing)
        .then_some(status.handle.as_ref())
        .flatten()
        .filter(|handle| handle.is_live())
}

impl<S: ProcessSyncer<Config = Assignment>> IsolationManager<S> {
    /// A manager whose processes `syncer` starts and stops.
    pub fn new(settings: IsolationSettings, syncer: S, options: ProcessManagerOptions) -> Arc<Self> {
        let pinned = settings
            .prewarm
            .iter()
            .map(|namespace| settings.process_id(&prewarm_key(namespace)))
            .collect();
        let manager = Arc::new(Self {
            settings,
            pinned,
            procmgr: ProcessManager::new(syncer, options),
            compartments: Mutex::default(),
            activity: Arc::new(Notify::new()),
        });
        if let Some(idle) = manager.settings.idle_timeout {
            tokio::spawn(super::idle::reap(Arc::downgrade(&manager), idle));
        }
        manager
    }

    fn compartments(&self) -> MutexGuard<'_, HashMap<ProcessId, Compartment>> {
        self.compartments.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The settings.
    pub fn settings(&self) -> &IsolationSettings {
        &self.settings
    }

    /// The level (and limits) a namespace is served at.
    pub fn policy(&self, namespace: &Namespace) -> &TenantPolicy {
        self.settings.policy(namespace)
    }

    /// The process id `key` maps to.
    pub fn process_id(&self, key: &IsolationKey) -> ProcessId {
        self.settings.process_id(key)
    }

    /// Creates the processes of `namespaces`, pre-warmed tenants of the
    /// settings (others are passed by), unless they exist; returns the ids
    /// created. A create procmgr refuses is logged: the tenant's first call
    /// then starts the process as any other.
    pub fn prewarm(&self, namespaces: &[Namespace]) -> Vec<ProcessId> {
        let mut created = Vec::new();
        for namespace in namespaces.iter().filter(|ns| self.settings.prewarm.contains(*ns)) {
            let key = prewarm_key(namespace);
            let level = self.policy(namespace).level;
            let id = self.process_id(&key);
            match self.enter(&key, level, &id) {
                Ok(entered) => {
                    if entered.created {
                        tracing::info!(process_id = %id, %namespace, "pre-warming the tenant's process");
                        created.push(id);
                    }
                }
                Err(e) => tracing::warn!(process_id = %id, %namespace, "cannot pre-warm the tenant's process: {e}"),
            }
        }
        created
    }

    /// Waits until every pre-warmed process has settled (or `timeout`):
    /// live, or its start failed (logged with why; procmgr retries it, and
    /// one tenant's failing worker must not keep the host unready). `false`
    /// when one is still starting.
    pub async fn wait_prewarmed(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        for id in &self.pinned {
            // Gone (an operator terminated it; the tenant's next call makes
            // it) or never created (its data directory could not be made).
            let Some(mut watch) = self.procmgr.subscribe(id.as_str()) else {
                continue;
            };
            let left = deadline.saturating_duration_since(Instant::now());
            let settled = watch
                .wait_for_timeout(
                    |s| live(s).is_some() || s.error_count > 0 || s.state.is_terminating(),
                    left,
                )
                .await;
            match settled {
                Ok(status) if live(&status).is_none() => {
                    let why = status.last_error.as_deref().unwrap_or("it was terminated");
                    tracing::warn!(process_id = %id, "a pre-warmed process did not start: {why}");
                }
                Ok(_) | Err(ProcmgrError::ProcessGone { .. }) => {}
                Err(_) => {
                    tracing::warn!(process_id = %id, "a pre-warmed process is still starting");
                    return false;
                }
            }
        }
        true
    }

    /// Whether `id` is a pre-warmed tenant's process.
    pub fn is_pinned(&self, id: &str) -> bool {
        self.pinned.contains(id)
    }

    /// The live worker for `key`, creating its process if needed.
    pub async fn get_or_create_process(&self, key: &IsolationKey) -> Result<Acquired<S::Handle>, IsolationError> {
        let level = self.policy(&key.namespace).level;
        let id = self.process_id(key);
        let Entered {
            admission,
            mut watch,
            created,
        } = self.enter(key, level, &id)?;
        let acquired = |handle: &S::Handle, cold| Acquired {
            process_id: id.clone(),
            level,
            handle: handle.clone(),
            admission: Arc::clone(&admission),
            cold,
        };
        let status = watch.current();
        if let Some(handle) = live(&status) {
            // Live already; still a cold start if this call created it (a
            // pool worker can be adopted before we look).
            return Ok(acquired(handle, created));
        }
        if !created && status.error_count > 0 {
            // Restarting after failures: procmgr backs off.
            return Err(unavailable(&id, &status));
        }
        // Starting, or its worker just died and procmgr is about to say so:
        // the next status tells.
        let status = watch
            .wait_for_timeout(
                |s| live(s).is_some() || s.error_count > 0 || s.state.is_terminating(),
                self.settings.start_timeout,
            )
            .await
            .map_err(|e| match e {
                ProcmgrError::ProcessGone { .. } => IsolationError::Unavailable {
                    id: id.clone(),
                    reason: "it was terminated while starting".to_owned(),
                    retry_after: None,
                },
                _ => IsolationError::StartTimeout { id: id.clone() },
            })?;
        match live(&status) {
            Some(handle) => Ok(acquired(handle, true)),
            None => Err(unavailable(&id, &status)),
        }
    }

    /// Finds or adds `id`'s compartment (checking who owns it, making room
    /// for a new one) and watches its process, creating the process when it
    /// has none. Says whether this call created it.
    fn enter(
        &self,
        key: &IsolationKey,
        level: IsolationLevel,
        id: &ProcessId,
    ) -> Result<Entered<S::Handle>, IsolationError> {
        let mut compartments = self.compartments();
        let admission = match compartments.get_mut(id) {
            Some(compartment) => {
                if compartment
                    .assignment
                    .namespace
                    .as_ref()
                    .is_some_and(|owner| *owner != key.namespace)
                {
                    return Err(IsolationError::SessionOfAnotherNamespace {
                        session: key.session.clone(),
                    });
                }
                compartment.last_used = Instant::now();
                Arc::clone(&compartment.admission)
            }
            None => {
                let owner = (level != IsolationLevel::None).then_some(&key.namespace);
                self.make_room(&mut compartments, owner)?;
                let admission = Arc::new(Admission::new(self.policy(&key.namespace).admission.clone()));
                let assignment = Assignment {
                    process_id: id.clone(),
                    level,
                    namespace: (level != IsolationLevel::None).then(|| key.namespace.clone()),
                    session: (level == IsolationLevel::Session).then(|| key.session.clone()),
                    cpu: match level {
                        IsolationLevel::None => self.settings.default_policy.cpu,
                        _ => self.policy(&key.namespace).cpu,
                    },
                };
                compartments.insert(
                    id.clone(),
                    Compartment {
                        assignment,
                        admission: Arc::clone(&admission),
                        last_used: Instant::now(),
                    },
                );
                self.activity.notify_one();
                admission
            }
        };
        let existing = self
            .procmgr
            .subscribe(id.as_str())
            .filter(|watch| !watch.state().is_terminating());
        let (watch, created) = match existing {
            Some(watch) => (watch, false),
            None => {
                let assignment = compartments[id].assignment.clone();
                let watch = self
                    .procmgr
                    .update_process(ProcessUpdate::create(id.clone(), assignment))
                    .map_err(|e| match e {
                        ProcmgrError::ShuttingDown => IsolationError::ShuttingDown,
                        other => IsolationError::Unavailable {
                            id: id.clone(),
                            reason: other.to_string(),
                            retry_after: None,
                        },
                    })?;
                (watch, true)
            }
        };
        Ok(Entered {
            admission,
            watch,
            created,
        })
    }

    /// Frees a slot for a new process of `owner` (`None`: the shared
    /// process), within the tenant's quota and the host's `max_processes`
    /// (see the module doc for whose processes may go).
    fn make_room(
        &self,
        compartments: &mut HashMap<ProcessId, Compartment>,
        owner: Option<&Namespace>,
    ) -> Result<(), IsolationError> {
        let held = |ns: Option<&Namespace>| {
            compartments
                .values()
                .filter(|c| c.assignment.namespace.as_ref() == ns)
                .count()
        };
        let mine = held(owner);
        let idle_lru = |may_take: &dyn Fn(&Compartment) -> bool| {
            compartments
                .iter()
                .filter(|(id, c)| {
                    c.admission.load() == super::Load::default() && !self.pinned.contains(*id) && may_take(c)
                })
                .min_by_key(|(_, c)| c.last_used)
                .map(|(id, _)| id.clone())
        };
        let own = |c: &Compartment| c.assignment.namespace.as_ref() == owner;
        let victim = if let Some(namespace) = owner
            && mine >= self.settings.quota(namespace)
        {
            let max = self.settings.quota(namespace);
            Some(idle_lru(&own).ok_or_else(|| IsolationError::QuotaFull {
                namespace: namespace.clone(),
                max,
            })?)
        } else if compartments.len() >= self.settings.max_processes {
            // The tenant holding the most idle-evictable processes pays,
            // if it holds more than the caller.
            let richest = compartments
                .values()
                .filter(|c| !own(c) && c.admission.load() == super::Load::default())
                .map(|c| held(c.assignment.namespace.as_ref()))
                .max()
                .filter(|most| *most > mine);
            let richest_idle = |c: &Compartment| !own(c) && Some(held(c.assignment.namespace.as_ref())) == richest;
            let victim = idle_lru(&own).or_else(|| richest.and_then(|_| idle_lru(&richest_idle)));
            Some(victim.ok_or(IsolationError::Full {
                max: self.settings.max_processes,
            })?)
        } else {
            None
        };
        if let Some(victim) = victim {
            tracing::info!(process_id = %victim, "evicting the least recently used idle process to make room");
            compartments.remove(&victim);
            self.begin_terminate(&victim);
        }
        Ok(())
    }

    /// Starts terminating `id` with the configured grace, forgetting it
    /// once it is Finished.
    pub(super) fn begin_terminate(&self, id: &ProcessId) {
        let update = ProcessUpdate::terminate(id.clone()).with_grace_period(self.settings.grace_period);
        if self.procmgr.update_process(update).is_ok() {
            self.procmgr.forget(id.as_str());
        }
    }

    /// The compartments with nothing running or queued, and when each was
    /// last used; pre-warmed ones are never idle.
    pub(super) fn idle_compartments(&self) -> Vec<(ProcessId, Instant)> {
        self.compartments()
            .iter()
            .filter(|(id, c)| c.admission.load() == super::Load::default() && !self.pinned.contains(*id))
            .map(|(id, c)| (id.clone(), c.last_used))
            .collect()
    }

    /// Drops `id`'s compartment if it is still idle since `used` and
    /// terminates its process; `false` if it was used meanwhile.
    pub(super) fn terminate_if_idle(&self, id: &ProcessId, used: Instant) -> bool {
        let mut compartments = self.compartments();
        let still_idle = compartments
            .get(id)
            .is_some_and(|c| c.last_used == used && c.admission.load() == super::Load::default());
        if still_idle {
            compartments.remove(id);
            self.begin_terminate(id);
        }
        still_idle
    }

    /// The process of `id`, unless it is unknown or Finished.
    pub fn get_process(&self, id: &str) -> Option<ProcessInfo<S::Handle>> {
        let compartments = self.compartments();
        let (id, compartment) = compartments.get_key_value(id)?;
        self.info(id, compartment)
    }

    fn info(&self, id: &ProcessId, compartment: &Compartment) -> Option<ProcessInfo<S::Handle>> {
        let status = self.procmgr.process_status(id.as_str())?;
        if status.state == ProcessState::Finished {
            return None;
        }
        let load = compartment.admission.load();
        Some(ProcessInfo {
            assignment: compartment.assignment.clone(),
            status,
            in_flight: load.in_flight,
            queued: load.queued,
        })
    }

    /// Every process not yet Finished, sorted by id.
    pub fn list_processes(&self) -> Vec<ProcessInfo<S::Handle>> {
        let compartments = self.compartments();
        let mut list: Vec<_> = compartments
            .iter()
            .filter_map(|(id, compartment)| self.info(id, compartment))
            .collect();
        list.sort_by(|a, b| a.assignment.process_id.cmp(&b.assignment.process_id));
        list
    }

    /// How many processes have a live worker now, serving or draining its
    /// calls during a termination.
    pub fn live_processes(&self) -> usize {
        let compartments = self.compartments();
        compartments
            .keys()
            .filter(|id| {
                self.procmgr
                    .process_status(id.as_str())
                    .is_some_and(|status| status.handle.as_ref().is_some_and(Managed::is_live))
            })
            .count()
    }

    /// The bulkhead of `id`'s compartment, if it has one.
    pub fn admission(&self, id: &str) -> Option<Arc<Admission>> {
        self.compartments().get(id).map(|c| Arc::clone(&c.admission))
    }

    /// A watch on `id`'s status, if procmgr knows it.
    pub fn watch(&self, id: &str) -> Option<StatusWatch<S::Handle>> {
        self.procmgr.subscribe(id)
    }

    /// Terminates `id` and waits until its worker is gone (at most the grace
    /// period plus [`TERMINATE_SLACK`]); the id can be created again at once.
    pub async fn terminate_process(&self, id: &str, grace: Option<Duration>) -> Result<(), IsolationError> {
        let grace = grace.unwrap_or(self.settings.grace_period);
        let id = ProcessId::from(id);
        let known = self.compartments().remove(&id).is_some();
        let status = self.procmgr.process_status(id.as_str());
        if !known && status.as_ref().is_none_or(|s| s.state == ProcessState::Finished) {
            return Err(IsolationError::NotFound { id });
        }
        let mut watch = self
            .procmgr
            .update_process(ProcessUpdate::terminate(id.clone()).with_grace_period(grace))
            .map_err(|e| match e {
                ProcmgrError::ShuttingDown => IsolationError::ShuttingDown,
                _ => IsolationError::NotFound { id: id.clone() },
            })?;
        let waited = watch
            .wait_for_timeout(|s| s.state.is_terminated(), grace + TERMINATE_SLACK)
            .await;
        self.procmgr.forget(id.as_str());
        match waited {
            Ok(_) | Err(ProcmgrError::ProcessGone { .. }) => Ok(()),
            Err(_) => Err(IsolationError::TerminateTimeout { id }),
        }
    }

    /// Marks `id` as used now (the idle timer restarts).
    pub fn touch(&self, id: &ProcessId) {
        if let Some(compartment) = self.compartments().get_mut(id) {
            compartment.last_used = Instant::now();
        }
        self.activity.notify_one();
    }

    /// procmgr's health report.
    pub fn health(&self) -> Health {
        self.procmgr.health()
    }

    /// Terminates every process (termination hooks run, workers get their
    /// grace period); an error if `deadline` passes first.
    pub async fn shutdown(&self, deadline: Instant) -> Result<(), ProcmgrError> {
        let result = self.procmgr.shutdown(deadline).await;
        self.compartments().clear();
        result
    }
}

/// The key of a pre-warmed tenant's process: its calls without a session.
fn prewarm_key(namespace: &Namespace) -> IsolationKey {
    IsolationKey {
        namespace: namespace.clone(),
        session: crate::names::SessionId::default_session(),
    }
}

fn unavailable<H>(id: &ProcessId, status: &ProcessStatus<H>) -> IsolationError {
    IsolationError::Unavailable {
        id: id.clone(),
        reason: status.last_error.as_deref().unwrap_or("it is starting").to_owned(),
        retry_after: status.retry_after(),
    }
}
