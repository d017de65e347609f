//! procmgr: the reconciliation engine that supervises every worker.
//!
//! A port of the memo's RFC-034 process manager (kubelet pod-worker style)
//! that knows nothing about WASM or OS processes: it drives a
//! [`ProcessSyncer`]. Each process id gets one task that moves it
//! through a one-way state machine (Starting -> Syncing -> Terminating ->
//! Terminated -> Finished), calling the syncer's hooks with no lock held.
//! Updates land in a pending slot (latest wins); resyncs and retries come
//! from a timer-ordered work queue with jittered exponential backoff.
//! Waiters subscribe to a per-process watch channel and are woken by the
//! change itself; nothing polls.
//!
//! procmgr owns liveness: a sync that starts the managed thing hands back
//! its [`Managed`] handle, which procmgr publishes with the status while the
//! process is Syncing (and while Terminating, so a draining worker stays
//! visible) and watches for death. A death takes the handle down
//! at once and schedules the restart after a backoff that grows with the
//! crash streak (a handle that lived `stable_uptime` starts a new streak).
//!
//! Differences from the reference implementation (its defects, fixed): a
//! terminal sync or an orphan is terminated at once; `shutdown` terminates
//! every process (termination and cleanup hooks run) before reporting; a
//! Finished id is purged on its next Create, so it can be created again at
//! once; completion is a state on the watch channel, so a failed first
//! termination attempt cannot lose it; termination hooks get the process's
//! own config; delayed work runs when due (no tick, no polling); restarts
//! are counted and the grace period is enforced (the termination hook's
//! token is cancelled at the grace deadline, and an overrun is reported).
//!
//! Files: `types.rs` (ids, states, updates, status), `syncer.rs` (the hook
//! trait and the handle), `manager.rs` (the API: updates, queries), `reconcile.rs`
//! (failure reports, reconciliation, shutdown), `task.rs` (per-process task),
//! `dispatch.rs` (work queue -> tasks), `state.rs` (per-process record and
//! its rules), `queue.rs` (work queue), `backoff.rs` (jitter, backoff),
//! `waiter.rs` (bounded waits), `health.rs`, `metrics.rs` (collector trait),
//! `prometheus.rs` (Prometheus collector), `options.rs`, `error.rs`;
//! `testing.rs` (a scripted fake syncer for the tests under `tests/`).

mod backoff;
mod dispatch;
mod error;
mod health;
mod manager;
mod metrics;
mod options;
mod prometheus;
mod queue;
mod reconcile;
mod state;
mod syncer;
mod task;
mod types;
mod waiter;

#[cfg(test)]
pub(crate) mod testing;
#[cfg(test)]
mod tests;

pub use backoff::{exponential_backoff, jitter};
pub use error::ProcmgrError;
pub use health::{Health, ProcessHealth};
pub use manager::ProcessManager;
pub use metrics::{FailurePhase, MetricsCollector, NoopMetrics};
pub use options::{
    DEFAULT_BACKOFF_PERIOD, DEFAULT_GRACE_PERIOD, DEFAULT_RESYNC_INTERVAL, DEFAULT_STABLE_UPTIME, ProcessManagerOptions,
};
pub use prometheus::{DEFAULT_NAMESPACE, MAX_RETAINED, PrometheusMetrics};
pub use queue::{Pop, WorkQueue};
pub use syncer::{Managed, ProcessSyncer, SyncContext, SyncOutcome, TerminatingContext};
pub use types::{ProcessId, ProcessState, ProcessStatus, ProcessUpdate, UpdateType};
pub use waiter::StatusWatch;
