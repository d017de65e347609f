//! The syncer trait (the hooks procmgr drives) and the contexts and outcome
//! types the hooks see. procmgr never holds a lock while a hook runs.

use std::future::Future;
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::error::ProcmgrError;
use super::types::{ProcessId, UpdateType};

/// What a successful `sync_process` found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SyncOutcome {
    /// The managed thing reached a terminal state: terminate the process now.
    pub terminal: bool,
    /// The syncer had to restart the managed thing (counted in
    /// `restart_count` and `<ns>_process_restarts_total`).
    pub restarted: bool,
}

impl SyncOutcome {
    /// Running, nothing special.
    pub const fn running() -> Self {
        Self {
            terminal: false,
            restarted: false,
        }
    }

    /// Reached a terminal state.
    pub const fn terminal() -> Self {
        Self {
            terminal: true,
            restarted: false,
        }
    }

    /// Running again after a restart.
    pub const fn restarted() -> Self {
        Self {
            terminal: false,
            restarted: true,
        }
    }
}

/// What `sync_process` and `sync_terminated_process` get besides the config.
#[derive(Debug, Clone)]
pub struct SyncContext {
    pub(crate) id: ProcessId,
    pub(crate) token: CancellationToken,
}

impl SyncContext {
    /// The process this call is for.
    pub fn id(&self) -> &ProcessId {
        &self.id
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
pub struct TerminatingContext {
    pub(crate) id: ProcessId,
    pub(crate) token: CancellationToken,
    pub(crate) terminating_since: Instant,
    pub(crate) grace: watch::Receiver<Duration>,
}

impl TerminatingContext {
    /// The process this call is for.
    pub fn id(&self) -> &ProcessId {
        &self.id
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

    /// Start or re-check the process. Called for Create, Update, Sync and
    /// every resync or retry while the process is Starting or Syncing.
    fn sync_process(
        &self,
        ctx: SyncContext,
        update_type: UpdateType,
        config: &Self::Config,
    ) -> impl Future<Output = Result<SyncOutcome, ProcmgrError>> + Send;

    /// Stop the process within its grace period (see [`TerminatingContext`]).
    /// Success moves it to Terminated; failure is retried.
    fn sync_terminating_process(
        &self,
        ctx: TerminatingContext,
        config: &Self::Config,
    ) -> impl Future<Output = Result<(), ProcmgrError>> + Send;

    /// Release what the stopped process held. Success moves it to Finished;
    /// failure is retried.
    fn sync_terminated_process(
        &self,
        ctx: SyncContext,
        config: &Self::Config,
    ) -> impl Future<Output = Result<(), ProcmgrError>> + Send;
}
