//! The syncer trait (the hooks procmgr drives), the handle of a live process
//! ([`Managed`]), and the contexts and outcome types the hooks see. procmgr
//! never holds a lock while a hook runs.

use std::future::Future;
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::error::ProcmgrError;
use super::types::{ProcessId, UpdateType};

/// The handle of the thing a live process is (a worker process, say): what
/// procmgr publishes with the status while the process is Syncing, and
/// watches for death.
///
/// procmgr is the one owner of "is this process live, and since when": when
/// [`died`](Managed::died) resolves for the published handle, procmgr takes
/// the handle down at once, counts the failure and schedules the restart
/// after a backoff that grows with the crash streak (see
/// [`ProcessManagerOptions::stable_uptime`](super::ProcessManagerOptions::stable_uptime)).
pub trait Managed: Clone + Send + Sync + 'static {
    /// Whether it can serve right now. It may turn false a moment before
    /// procmgr hears of the death; a caller holding a handle that is not
    /// live waits for the next published status.
    fn is_live(&self) -> bool;

    /// Resolves once it has died (or can no longer serve), with what
    /// happened, for `last_error`.
    fn died(&self) -> impl Future<Output = String> + Send + 'static;
}

/// For syncers whose processes have no handle: never dies.
impl Managed for () {
    fn is_live(&self) -> bool {
        true
    }

    fn died(&self) -> impl Future<Output = String> + Send + 'static {
        std::future::pending()
    }
}

/// What a successful `sync_process` found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyncOutcome<H = ()> {
    /// The managed thing reached a terminal state: terminate the process now.
    pub terminal: bool,
    /// The syncer restarted the managed thing without handing a new handle
    /// (counted in `restart_count` and `<ns>_process_restarts_total`).
    pub restarted: bool,
    /// The syncer started the managed thing (again): procmgr publishes this
    /// handle, watches it for death, and counts a restart when it replaces
    /// an earlier one.
    pub started: Option<H>,
}

impl<H> SyncOutcome<H> {
    /// Running, nothing special.
    pub const fn running() -> Self {
        Self {
            terminal: false,
            restarted: false,
            started: None,
        }
    }

    /// Reached a terminal state.
    pub const fn terminal() -> Self {
        Self {
            terminal: true,
            restarted: false,
            started: None,
        }
    }

    /// Running again after a restart the syncer did on its own.
    pub const fn restarted() -> Self {
        Self {
            terminal: false,
            restarted: true,
            started: None,
        }
    }

    /// Running, as the new `handle`.
    pub const fn started(handle: H) -> Self {
        Self {
            terminal: false,
            restarted: false,
            started: Some(handle),
        }
    }
}

/// What `sync_process` and `sync_terminated_process` get besides the config.
#[derive(Debug, Clone)]
pub struct SyncContext<H = ()> {
    pub(crate) id: ProcessId,
    pub(crate) token: CancellationToken,
    pub(crate) current: Option<H>,
}

impl<H> SyncContext<H> {
    /// The process this call is for.
    pub fn id(&self) -> &ProcessId {
        &self.id
    }

    /// The handle procmgr holds for the process, if any: the one the last
    /// successful sync started, unless procmgr has seen it die. It may have
    /// died a moment ago ([`Managed::is_live`] tells).
    pub fn current(&self) -> Option<&H> {
        self.current.as_ref()
    }

    /// Cancelled when the call should give up: a `sync_process` is cancelled
    /// by a Terminate; every hook when the manager is dropped or a shutdown
    /// passes its deadline. Return [`ProcmgrError::Cancelled`] then.
    pub fn token(&self) -> &CancellationToken {
        &self.token
    }
}

/// What `sync_terminating_process` gets besides the config.
///
/// The grace period runs from the Terminate request. Its token is cancelled
/// when the grace deadline passes (re-armed when a shorter grace arrives):
/// the hook must then stop the managed thing forcefully and return. A hook
/// that returns after the deadline is reported as a grace overrun.
#[derive(Debug, Clone)]
pub struct TerminatingContext<H = ()> {
    pub(crate) id: ProcessId,
    pub(crate) token: CancellationToken,
    pub(crate) terminating_since: Instant,
    pub(crate) grace: watch::Receiver<Duration>,
    pub(crate) current: Option<H>,
}

impl<H> TerminatingContext<H> {
    /// The process this call is for.
    pub fn id(&self) -> &ProcessId {
        &self.id
    }

    /// The handle of the thing to stop, if it was ever started (it may be
    /// dead already).
    pub fn current(&self) -> Option<&H> {
        self.current.as_ref()
    }

    /// When the termination began (the grace period runs from here).
    pub fn terminating_since(&self) -> Instant {
        self.terminating_since
    }

    /// Cancelled at the grace deadline (or when the manager gives up).
    pub fn token(&self) -> &CancellationToken {
        &self.token
    }

    /// The current grace period (it can only shrink).
    pub fn grace_period(&self) -> Duration {
        *self.grace.borrow()
    }

    /// When the grace period ends.
    pub fn deadline(&self) -> Instant {
        self.terminating_since + self.grace_period()
    }

    /// A receiver that sees every grace decrease, for hooks that want to
    /// re-plan a graceful stop when the grace shrinks.
    pub fn grace_updates(&self) -> watch::Receiver<Duration> {
        self.grace.clone()
    }
}

/// The lifecycle hooks of the managed things, driven by the manager.
///
/// Every hook gets the process's own current config. The hooks of one
/// process never run concurrently; hooks of different processes do.
pub trait ProcessSyncer: Send + Sync + 'static {
    /// The per-process config handed to every hook.
    type Config: Clone + Send + Sync + 'static;
    /// The handle of a live process (`()` for syncers that have none).
    type Handle: Managed;

    /// Start or re-check the process. Called for Create, Update, Sync and
    /// every resync or retry while the process is Starting or Syncing. A
    /// syncer that starts the thing returns its handle
    /// ([`SyncOutcome::started`]).
    fn sync_process(
        &self,
        ctx: SyncContext<Self::Handle>,
        update_type: UpdateType,
        config: &Self::Config,
    ) -> impl Future<Output = Result<SyncOutcome<Self::Handle>, ProcmgrError>> + Send;

    /// Stop the process within its grace period (see [`TerminatingContext`]).
    /// Success moves it to Terminated; failure is retried.
    fn sync_terminating_process(
        &self,
        ctx: TerminatingContext<Self::Handle>,
        config: &Self::Config,
    ) -> impl Future<Output = Result<(), ProcmgrError>> + Send;

    /// Release what the stopped process held. Success moves it to Finished
    /// (and procmgr drops the handle); failure is retried.
    fn sync_terminated_process(
        &self,
        ctx: SyncContext<Self::Handle>,
        config: &Self::Config,
    ) -> impl Future<Output = Result<(), ProcmgrError>> + Send;
}
