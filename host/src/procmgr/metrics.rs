//! The metrics callbacks the manager makes, and a collector that ignores them.
//! The Prometheus collector lives in `prometheus.rs`.

use std::fmt;
use std::time::Duration;

use super::types::{ProcessId, ProcessState, UpdateType};

/// In which phase of its life a process failed: which hook (or report) the
/// error came from. The `error_type` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FailurePhase {
    /// `sync_process` failed, or the syncer reported the process failed.
    Sync,
    /// `sync_terminating_process` failed or overran its grace period.
    Termination,
    /// `sync_terminated_process` failed.
    Cleanup,
}

impl FailurePhase {
    /// Every kind.
    pub const ALL: [FailurePhase; 3] = [FailurePhase::Sync, FailurePhase::Termination, FailurePhase::Cleanup];

    /// `sync_error`, `termination_error` or `cleanup_error`.
    pub fn as_str(self) -> &'static str {
        match self {
            FailurePhase::Sync => "sync_error",
            FailurePhase::Termination => "termination_error",
            FailurePhase::Cleanup => "cleanup_error",
        }
    }
}

impl fmt::Display for FailurePhase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Receives the manager's measurements. Every method defaults to doing
/// nothing. Called while the manager holds internal locks: implementations
/// must be quick and must not call back into the manager.
pub trait MetricsCollector: Send + Sync + fmt::Debug {
    /// A process moved from `from` to `to`.
    fn process_state_transition(&self, _id: &ProcessId, _from: ProcessState, _to: ProcessState) {}
    /// A `sync_process` call took `duration` and succeeded or not.
    fn process_sync_duration(&self, _id: &ProcessId, _update_type: UpdateType, _duration: Duration, _ok: bool) {}
    /// One `sync_terminating_process` attempt took `duration`.
    fn process_termination_duration(&self, _id: &ProcessId, _duration: Duration) {}
    /// A process error of `kind`.
    fn process_error(&self, _id: &ProcessId, _kind: FailurePhase) {}
    /// The syncer restarted the thing it manages.
    fn process_restart(&self, _id: &ProcessId) {}
    /// The work queue now holds `depth` ids.
    fn work_queue_depth(&self, _depth: usize) {}
    /// `id` was queued to be ready after `delay`.
    fn work_queue_add(&self, _id: &ProcessId, _delay: Duration) {}
    /// `id` came out of the work queue (a resync or a retry is due).
    fn work_queue_retry(&self, _id: &ProcessId) {}
    /// `id` backs off for `delay` after a failure.
    fn work_queue_backoff_duration(&self, _id: &ProcessId, _delay: Duration) {}
    /// `id` was purged: forget every series it used.
    fn process_purged(&self, _id: &ProcessId) {}
}

/// A collector that records nothing (the default).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoopMetrics;

impl MetricsCollector for NoopMetrics {}
