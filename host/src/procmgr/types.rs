//! The vocabulary of procmgr: process ids, the one-way state machine, update
//! kinds, the update request and the status snapshot published to waiters.

use std::borrow::Borrow;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::time::Instant;

/// Identifies one managed process (`shared`, `ns:<namespace>`, `session:<id>`).
///
/// Cheap to clone: the text is shared. Serialised as its text.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(from = "String", into = "String")]
pub struct ProcessId(Arc<str>);

impl ProcessId {
    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ProcessId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl fmt::Display for ProcessId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Borrow<str> for ProcessId {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl From<&str> for ProcessId {
    fn from(id: &str) -> Self {
        Self(Arc::from(id))
    }
}

impl From<String> for ProcessId {
    fn from(id: String) -> Self {
        Self(Arc::from(id))
    }
}

impl From<ProcessId> for String {
    fn from(id: ProcessId) -> String {
        id.0.as_ref().to_owned()
    }
}

impl PartialEq<str> for ProcessId {
    fn eq(&self, other: &str) -> bool {
        &*self.0 == other
    }
}

impl PartialEq<String> for ProcessId {
    fn eq(&self, other: &String) -> bool {
        *self.0 == **other
    }
}

impl PartialEq<&str> for ProcessId {
    fn eq(&self, other: &&str) -> bool {
        &*self.0 == *other
    }
}

impl From<&ProcessId> for ProcessId {
    fn from(id: &ProcessId) -> Self {
        id.clone()
    }
}

/// Lifecycle state of a process. While an entry exists it only moves forward
/// (the derived order is the lifecycle order).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ProcessState {
    /// Created; no sync has succeeded yet.
    Starting,
    /// At least one sync succeeded; the process is running.
    Syncing,
    /// Termination requested; the termination hook runs (or is retried).
    Terminating,
    /// The termination hook succeeded; the cleanup hook runs next.
    Terminated,
    /// Cleanup succeeded; the entry ignores updates until it is purged.
    Finished,
}

impl ProcessState {
    /// Every state, in lifecycle order.
    pub const ALL: [ProcessState; 5] = [
        ProcessState::Starting,
        ProcessState::Syncing,
        ProcessState::Terminating,
        ProcessState::Terminated,
        ProcessState::Finished,
    ];

    /// The name used in metrics labels and reports (`Starting`, `Syncing`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            ProcessState::Starting => "Starting",
            ProcessState::Syncing => "Syncing",
            ProcessState::Terminating => "Terminating",
            ProcessState::Terminated => "Terminated",
            ProcessState::Finished => "Finished",
        }
    }

    /// True once termination was requested (Terminating or later).
    pub fn is_terminating(self) -> bool {
        self >= ProcessState::Terminating
    }

    /// True once the termination hook succeeded (Terminated or Finished).
    pub fn is_terminated(self) -> bool {
        self >= ProcessState::Terminated
    }
}

impl fmt::Display for ProcessState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The kind of an update request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UpdateType {
    /// Create the process (an update of any kind for an unknown id creates it).
    Create,
    /// The process's config changed.
    Update,
    /// Re-check the process now (also what resyncs and retries use).
    Sync,
    /// Terminate the process.
    Terminate,
}

impl UpdateType {
    /// Every update type.
    pub const ALL: [UpdateType; 4] = [
        UpdateType::Create,
        UpdateType::Update,
        UpdateType::Sync,
        UpdateType::Terminate,
    ];

    /// The name used in the `update_type` metrics label.
    pub fn as_str(self) -> &'static str {
        match self {
            UpdateType::Create => "Create",
            UpdateType::Update => "Update",
            UpdateType::Sync => "Sync",
            UpdateType::Terminate => "Terminate",
        }
    }
}

impl fmt::Display for UpdateType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A request to [`ProcessManager::update_process`](super::ProcessManager::update_process).
#[derive(Debug, Clone)]
pub struct ProcessUpdate<C> {
    /// The process addressed.
    pub id: ProcessId,
    /// What is asked.
    pub update_type: UpdateType,
    /// The process's config. Required to create an unknown id; replaces the
    /// stored config of a running process; ignored once it is terminating
    /// (termination hooks always get the process's own config).
    pub config: Option<C>,
    /// Grace period for a Terminate. It can only shorten the grace already
    /// set; unset, the first Terminate uses the manager's default (10 s).
    pub grace_period: Option<Duration>,
}

impl<C> ProcessUpdate<C> {
    /// Create `id` with `config`.
    pub fn create(id: impl Into<ProcessId>, config: C) -> Self {
        Self::new(id, UpdateType::Create, Some(config))
    }

    /// Replace the config of `id` and sync it.
    pub fn update(id: impl Into<ProcessId>, config: C) -> Self {
        Self::new(id, UpdateType::Update, Some(config))
    }

    /// Sync `id` now.
    pub fn sync(id: impl Into<ProcessId>) -> Self {
        Self::new(id, UpdateType::Sync, None)
    }

    /// Terminate `id` (default grace unless [`with_grace_period`](Self::with_grace_period)).
    pub fn terminate(id: impl Into<ProcessId>) -> Self {
        Self::new(id, UpdateType::Terminate, None)
    }

    /// Set the grace period of a Terminate.
    pub fn with_grace_period(mut self, grace: Duration) -> Self {
        self.grace_period = Some(grace);
        self
    }

    fn new(id: impl Into<ProcessId>, update_type: UpdateType, config: Option<C>) -> Self {
        Self {
            id: id.into(),
            update_type,
            config,
            grace_period: None,
        }
    }
}

/// Snapshot of one process, published on its watch channel at every change.
///
/// `H` is the syncer's [`Managed`](super::Managed) handle: present while the
/// process is Syncing and its handle is not known to have died, so a caller
/// waits on one watch for "live, and here is how to reach it".
#[derive(Debug, Clone, PartialEq)]
pub struct ProcessStatus<H = ()> {
    /// Current state.
    pub state: ProcessState,
    /// Syncing with fewer than 5 consecutive errors.
    pub healthy: bool,
    /// Wall-clock time of the last successful sync.
    pub last_sync: Option<SystemTime>,
    /// Errors since the last success (sync, termination, cleanup or reported).
    pub error_count: u32,
    /// The most recent error message, if the last attempt failed (or the
    /// termination overran its grace period).
    pub last_error: Option<Arc<str>>,
    /// How many times the syncer restarted the thing it manages.
    pub restart_count: u32,
    /// By how much the last termination outlived its grace period, if it did.
    pub grace_overrun: Option<Duration>,
    /// When the next queued sync or retry is due, if one is queued.
    pub next_sync_at: Option<Instant>,
    /// First successful sync (start of uptime).
    pub started_at: Option<Instant>,
    /// When the process reached Finished (uptime stops there).
    pub finished_at: Option<Instant>,
    /// The live handle: set while Syncing (or Terminating: a worker
    /// draining its calls) with a handle procmgr has not seen die. Check
    /// `state` before handing it new work, and
    /// [`Managed::is_live`](super::Managed::is_live) before use: it may have
    /// died a moment before procmgr heard.
    pub handle: Option<H>,
}

impl<H> ProcessStatus<H> {
    pub(crate) fn starting() -> Self {
        Self {
            state: ProcessState::Starting,
            healthy: false,
            last_sync: None,
            error_count: 0,
            last_error: None,
            restart_count: 0,
            grace_overrun: None,
            next_sync_at: None,
            started_at: None,
            finished_at: None,
            handle: None,
        }
    }

    /// Time until the next queued sync (zero if due), for answers such as
    /// "unavailable, retry after N s". `None` when nothing is queued.
    pub fn retry_after(&self) -> Option<Duration> {
        self.next_sync_at.map(|at| at.saturating_duration_since(Instant::now()))
    }

    /// Time since the first successful sync, frozen at Finished; zero if the
    /// process never synced.
    pub fn uptime(&self) -> Duration {
        match self.started_at {
            None => Duration::ZERO,
            Some(start) => self
                .finished_at
                .unwrap_or_else(Instant::now)
                .saturating_duration_since(start),
        }
    }
}
