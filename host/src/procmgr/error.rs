//! The one error type of procmgr: failures of the manager's API and the
//! errors a syncer hook returns.

use std::fmt;
use std::time::Duration;

use super::types::ProcessId;

/// Errors of the process manager and of syncer hooks.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProcmgrError {
    /// A hook gave up because its cancellation token fired. Retried after
    /// 1 s +-50% (not counted as an error when the cancellation came from a
    /// Terminate).
    #[error("context canceled")]
    Cancelled,
    /// A hook ran out of its own time budget. Retried after 1 s +-50%.
    #[error("context deadline exceeded")]
    DeadlineExceeded,
    /// A hook failed; retried with exponential backoff.
    #[error("{message}")]
    Hook {
        /// What went wrong, as the syncer tells it.
        message: String,
    },
    /// An update without a config addressed an id that does not exist.
    #[error("process {id} not found")]
    UnknownProcess {
        /// The id asked for.
        id: ProcessId,
    },
    /// The manager is shutting down and accepts no new processes.
    #[error("process manager is shutting down")]
    ShuttingDown,
    /// A waiter's predicate did not hold within its timeout.
    #[error("timeout waiting for process {id} after {timeout:?}")]
    WaitTimeout {
        /// The process waited on.
        id: ProcessId,
        /// How long the waiter waited.
        timeout: Duration,
    },
    /// The process was purged before a waiter's predicate held.
    #[error("process {id} is gone")]
    ProcessGone {
        /// The process waited on.
        id: ProcessId,
    },
    /// `shutdown` reached its deadline before every process finished.
    #[error("shutdown deadline exceeded: {} process(es) not finished: {unfinished:?}", unfinished.len())]
    ShutdownDeadlineExceeded {
        /// The processes that had not reached Finished.
        unfinished: Vec<ProcessId>,
    },
    /// The Prometheus collector could not be built (invalid namespace).
    #[error("metrics setup failed: {message}")]
    Metrics {
        /// The registry's complaint.
        message: String,
    },
}

impl ProcmgrError {
    /// A hook failure with `message`.
    pub fn hook(message: impl fmt::Display) -> Self {
        ProcmgrError::Hook {
            message: message.to_string(),
        }
    }

    /// True for cancellation and deadline errors, which are retried quickly
    /// rather than backed off.
    pub fn is_transient(&self) -> bool {
        matches!(self, ProcmgrError::Cancelled | ProcmgrError::DeadlineExceeded)
    }
}
