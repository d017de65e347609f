//! The per-process record (state, update slots, counters, grace, the live
//! handle, watch channel) and the rules that change it: one-way transitions,
//! error and success bookkeeping, the crash streak, termination start and
//! grace decrease, scheduling.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::{Notify, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::backoff::{exponential_backoff, jitter};
use super::error::ProcmgrError;
use super::metrics::{FailurePhase, MetricsCollector};
use super::options::ProcessManagerOptions;
use super::queue::WorkQueue;
use super::types::{ProcessId, ProcessState, ProcessStatus, UpdateType};

/// Base delay of the retry backoff.
pub(crate) const BACKOFF_BASE: Duration = Duration::from_secs(1);
/// Delay before retrying a hook that was cancelled or timed out (+-50%).
pub(crate) const TRANSIENT_RETRY: Duration = Duration::from_secs(1);
/// Consecutive errors from which a process no longer counts as healthy.
pub(crate) const UNHEALTHY_ERRORS: u32 = 5;

/// Every process the manager knows, plus manager-wide flags.
#[derive(Debug)]
pub(crate) struct Table<C, H> {
    pub(crate) entries: HashMap<ProcessId, Entry<C, H>>,
    pub(crate) next_generation: u64,
    pub(crate) shutting_down: bool,
}

impl<C, H> Default for Table<C, H> {
    fn default() -> Self {
        Self {
            entries: HashMap::new(),
            next_generation: 0,
            shutting_down: false,
        }
    }
}

impl<C, H> Table<C, H> {
    pub(crate) fn generation(&mut self) -> u64 {
        self.next_generation += 1;
        self.next_generation
    }
}

/// A Create that arrived while the process was terminating: the process is
/// created again, with this config and channel, as soon as it is Finished.
#[derive(Debug)]
pub(crate) struct Recreate<C, H> {
    pub(crate) config: C,
    pub(crate) status: watch::Sender<ProcessStatus<H>>,
}

/// The manager's record of one process (one generation of an id).
#[derive(Debug)]
pub(crate) struct Entry<C, H> {
    /// Distinguishes this life of the id from earlier and later ones.
    pub(crate) generation: u64,
    pub(crate) state: ProcessState,
    /// The process's own config, handed to every hook.
    pub(crate) config: C,
    /// The newest update not yet picked up by the worker (latest wins).
    pub(crate) pending: Option<UpdateType>,
    /// Token of the `sync_process` call in flight, cancelled by a Terminate.
    pub(crate) sync_token: Option<CancellationToken>,
    /// The grace period, once termination started (only ever decreases).
    pub(crate) grace: Option<watch::Sender<Duration>>,
    pub(crate) terminating_since: Option<Instant>,
    pub(crate) error_count: u32,
    pub(crate) last_error: Option<Arc<str>>,
    pub(crate) restart_count: u32,
    pub(crate) grace_overrun: Option<Duration>,
    pub(crate) last_sync: Option<SystemTime>,
    pub(crate) started_at: Option<Instant>,
    pub(crate) finished_at: Option<Instant>,
    pub(crate) next_sync_at: Option<Instant>,
    /// The handle the last successful sync started, until procmgr sees it
    /// die (or the entry goes).
    pub(crate) handle: Option<H>,
    /// Counts the handles installed, so that the death of a replaced one is
    /// no news.
    pub(crate) handle_seq: u64,
    /// When the current handle was installed.
    pub(crate) live_since: Option<Instant>,
    /// Deaths in a row of handles that each died within `stable_uptime`.
    pub(crate) crash_streak: u32,
    pub(crate) status: watch::Sender<ProcessStatus<H>>,
    pub(crate) wake: Arc<Notify>,
    pub(crate) recreate: Option<Recreate<C, H>>,
    /// Purge the entry as soon as it reaches Finished.
    pub(crate) forget_when_finished: bool,
}

impl<C, H: Clone> Entry<C, H> {
    pub(crate) fn new(generation: u64, config: C, status: watch::Sender<ProcessStatus<H>>, wake: Arc<Notify>) -> Self {
        Self {
            generation,
            state: ProcessState::Starting,
            config,
            pending: Some(UpdateType::Create),
            sync_token: None,
            grace: None,
            terminating_since: None,
            error_count: 0,
            last_error: None,
            restart_count: 0,
            grace_overrun: None,
            last_sync: None,
            started_at: None,
            finished_at: None,
            next_sync_at: None,
            handle: None,
            handle_seq: 0,
            live_since: None,
            crash_streak: 0,
            status,
            wake,
            recreate: None,
            forget_when_finished: false,
        }
    }

    pub(crate) fn snapshot(&self) -> ProcessStatus<H> {
        ProcessStatus {
            state: self.state,
            healthy: self.healthy(),
            last_sync: self.last_sync,
            error_count: self.error_count,
            last_error: self.last_error.clone(),
            restart_count: self.restart_count,
            grace_overrun: self.grace_overrun,
            next_sync_at: self.next_sync_at,
            started_at: self.started_at,
            finished_at: self.finished_at,
            handle: self
                .handle
                .clone()
                .filter(|_| matches!(self.state, ProcessState::Syncing | ProcessState::Terminating)),
        }
    }

    /// Make `handle` the live one; returns its sequence number, which its
    /// death report must carry. Replacing an earlier handle is a restart.
    pub(crate) fn install(&mut self, id: &ProcessId, handle: H, m: &dyn MetricsCollector) -> u64 {
        if self.handle_seq > 0 {
            self.restart_count = self.restart_count.saturating_add(1);
            m.process_restart(id);
        }
        self.handle = Some(handle);
        self.handle_seq += 1;
        self.live_since = Some(Instant::now());
        self.handle_seq
    }

    /// The handle `seq` died: take it down and, unless the process is
    /// terminating anyway, count the failure and back off by the crash
    /// streak (a handle that lived `stable_uptime` or longer starts a new
    /// streak: kubelet's CrashLoopBackOff rule). Returns the backoff, or
    /// `None` when the death was no news.
    pub(crate) fn handle_died(
        &mut self,
        id: &ProcessId,
        seq: u64,
        message: &str,
        opts: &ProcessManagerOptions,
        queue: &WorkQueue,
    ) -> Option<Duration> {
        if seq != self.handle_seq || self.handle.is_none() || self.state.is_terminating() {
            return None;
        }
        self.handle = None;
        let lived = self.live_since.map_or(Duration::ZERO, |since| since.elapsed());
        self.crash_streak = if lived < opts.stable_uptime {
            self.crash_streak.saturating_add(1)
        } else {
            1
        };
        let m = &*opts.metrics;
        self.failed(id, FailurePhase::Sync, message, m);
        let delay = self.backoff_delay(opts.backoff_period, self.crash_streak);
        self.schedule(id, delay, queue, m);
        m.work_queue_backoff_duration(id, delay);
        Some(delay)
    }

    pub(crate) fn healthy(&self) -> bool {
        self.state == ProcessState::Syncing && self.error_count < UNHEALTHY_ERRORS
    }

    /// Tell every waiter the current status.
    pub(crate) fn publish(&self) {
        self.status.send_replace(self.snapshot());
    }

    /// Move forward to `to` (never back), recording the transition.
    pub(crate) fn transition(&mut self, id: &ProcessId, to: ProcessState, m: &dyn MetricsCollector) {
        if to > self.state {
            m.process_state_transition(id, self.state, to);
            self.state = to;
        }
    }

    pub(crate) fn succeeded(&mut self) {
        self.error_count = 0;
        self.last_error = None;
    }

    pub(crate) fn failed(&mut self, id: &ProcessId, kind: FailurePhase, message: &str, m: &dyn MetricsCollector) {
        self.error_count = self.error_count.saturating_add(1);
        self.last_error = Some(Arc::from(message));
        m.process_error(id, kind);
    }

    /// Queue a sync of this process after `delay`, keeping an earlier one.
    pub(crate) fn schedule(&mut self, id: &ProcessId, delay: Duration, queue: &WorkQueue, m: &dyn MetricsCollector) {
        self.next_sync_at = Some(queue.enqueue(id.clone(), delay));
        m.work_queue_add(id, delay);
        m.work_queue_depth(queue.len());
    }

    /// Queue a retry after `error`: quick for cancellations and timeouts,
    /// exponential backoff (by consecutive errors) otherwise. Returns the delay.
    pub(crate) fn schedule_retry(
        &mut self,
        id: &ProcessId,
        error: &ProcmgrError,
        backoff_period: Duration,
        queue: &WorkQueue,
        m: &dyn MetricsCollector,
    ) -> Duration {
        let delay = if error.is_transient() {
            jitter(TRANSIENT_RETRY, 0.5)
        } else {
            self.backoff_delay(backoff_period, 0)
        };
        self.schedule(id, delay, queue, m);
        m.work_queue_backoff_duration(id, delay);
        delay
    }

    /// `exponential_backoff(consecutive errors, 1 s, backoff_period)`, or
    /// by `streak` when the caller counts a longer run of failures.
    pub(crate) fn backoff_delay(&self, backoff_period: Duration, streak: u32) -> Duration {
        let attempt = i32::try_from(self.error_count.max(streak)).unwrap_or(i32::MAX);
        exponential_backoff(attempt, BACKOFF_BASE, backoff_period)
    }

    /// Apply a Terminate: enter Terminating at once (cancelling a sync in
    /// flight and dropping queued resyncs), or shorten the grace of a
    /// termination already under way. The worker then runs the next phase.
    pub(crate) fn begin_termination(
        &mut self,
        id: &ProcessId,
        grace: Option<Duration>,
        default_grace: Duration,
        queue: &WorkQueue,
        m: &dyn MetricsCollector,
    ) {
        if self.state == ProcessState::Finished {
            return;
        }
        if self.state.is_terminating() {
            if let (Some(shorter), Some(tx)) = (grace, &self.grace) {
                tx.send_if_modified(|current| {
                    let decrease = shorter < *current;
                    if decrease {
                        *current = shorter;
                    }
                    decrease
                });
            }
            return;
        }
        self.transition(id, ProcessState::Terminating, m);
        self.terminating_since = Some(Instant::now());
        self.grace = Some(watch::Sender::new(grace.unwrap_or(default_grace)));
        if let Some(token) = self.sync_token.take() {
            token.cancel();
        }
        if queue.remove(id.as_str()) {
            m.work_queue_depth(queue.len());
        }
        self.next_sync_at = None;
        self.pending = Some(UpdateType::Terminate);
        self.wake.notify_one();
    }
}
