//! Reconciliation and lifecycle control from outside: failures reported by
//! the supervisor, forgetting finished ids, reconciling against the desired
//! set, and shutdown.

use std::collections::{HashMap, HashSet};
use std::fmt;

use tokio::sync::watch;
use tokio::time::Instant;

use super::error::ProcmgrError;
use super::manager::ProcessManager;
use super::metrics::FailurePhase;
use super::syncer::ProcessSyncer;
use super::types::{ProcessId, ProcessState, ProcessStatus};

impl<S: ProcessSyncer> ProcessManager<S> {
    /// Report that the thing `id` manages failed, for syncers that do not
    /// hand procmgr a [`Managed`](super::Managed) handle (whose death
    /// procmgr notices itself). Counts an error and schedules a sync after
    /// `exponential_backoff(consecutive errors, 1 s, backoff_period)` (or
    /// earlier if one is already due sooner). The returned status says when
    /// (`next_sync_at`, `retry_after()`). Ignored once the process is
    /// terminating: its termination proceeds.
    pub fn report_failure(&self, id: &str, error: impl fmt::Display) -> Result<ProcessStatus<S::Handle>, ProcmgrError> {
        let shared = &self.shared;
        let m = &*shared.opts.metrics;
        let mut table = shared.lock();
        let Some(key) = table.entries.get_key_value(id).map(|(k, _)| k.clone()) else {
            return Err(ProcmgrError::UnknownProcess { id: id.into() });
        };
        let Some(e) = table.entries.get_mut(&key) else {
            return Err(ProcmgrError::UnknownProcess { id: key });
        };
        if !e.state.is_terminating() {
            e.failed(&key, FailurePhase::Sync, &error.to_string(), m);
            let delay = e.backoff_delay(shared.opts.backoff_period, 0);
            e.schedule(&key, delay, &shared.queue, m);
            m.work_queue_backoff_duration(&key, delay);
            e.publish();
        }
        Ok(e.snapshot())
    }

    /// Purge `id` now if it is Finished, or as soon as it finishes. Returns
    /// false if the id is unknown.
    pub fn forget(&self, id: &str) -> bool {
        let mut table = self.shared.lock();
        let Some(key) = table.entries.get_key_value(id).map(|(k, _)| k.clone()) else {
            return false;
        };
        match table.entries.get_mut(&key) {
            Some(e) if e.state != ProcessState::Finished => e.forget_when_finished = true,
            _ => self.shared.purge(&mut table, &key),
        }
        true
    }

    /// Reconcile against the ids that should exist: a Finished process not
    /// desired is purged (its id reusable); a process not desired and not yet
    /// terminating is terminated now. Returns the status of every process
    /// that is not Finished.
    pub fn sync_known_processes<I>(&self, desired: I) -> HashMap<ProcessId, ProcessStatus<S::Handle>>
    where
        I: IntoIterator,
        I::Item: Into<ProcessId>,
    {
        let desired: HashSet<ProcessId> = desired.into_iter().map(Into::into).collect();
        let shared = &self.shared;
        let m = &*shared.opts.metrics;
        let default_grace = shared.opts.default_grace_period;
        let mut table = shared.lock();
        let finished: Vec<ProcessId> = table
            .entries
            .iter()
            .filter(|(id, e)| e.state == ProcessState::Finished && !desired.contains(*id))
            .map(|(id, _)| id.clone())
            .collect();
        for id in &finished {
            shared.purge(&mut table, id);
        }
        let mut result = HashMap::new();
        for (id, e) in table.entries.iter_mut() {
            if !desired.contains(id) {
                e.recreate = None;
                if !e.state.is_terminating() {
                    e.begin_termination(id, None, default_grace, &shared.queue, m);
                    e.publish();
                }
            }
            if e.state != ProcessState::Finished {
                result.insert(id.clone(), e.snapshot());
            }
        }
        result
    }

    /// Terminate every process, let the termination and cleanup hooks run
    /// (with live tokens), and wait until all are Finished. The grace of each
    /// termination ends at `deadline` at the latest. Returns
    /// [`ProcmgrError::ShutdownDeadlineExceeded`] if `deadline` passes first;
    /// either way the manager's tasks are stopped afterwards and no new
    /// process can be created.
    pub async fn shutdown(&self, deadline: Instant) -> Result<(), ProcmgrError> {
        let shared = &self.shared;
        let mut waiters: Vec<(ProcessId, watch::Receiver<ProcessStatus<S::Handle>>)> = {
            let m = &*shared.opts.metrics;
            let grace = deadline.saturating_duration_since(Instant::now());
            let mut table = shared.lock();
            table.shutting_down = true;
            table
                .entries
                .iter_mut()
                .map(|(id, e)| {
                    e.recreate = None;
                    e.begin_termination(id, Some(grace), grace, &shared.queue, m);
                    e.publish();
                    (id.clone(), e.status.subscribe())
                })
                .collect()
        };
        let all_finished = async {
            for (_, rx) in &mut waiters {
                // A closed channel means the entry was purged: done too.
                let _ = rx.wait_for(|s| s.state == ProcessState::Finished).await;
            }
        };
        let outcome = tokio::time::timeout_at(deadline, all_finished).await;
        shared.root.cancel();
        match outcome {
            Ok(()) => Ok(()),
            Err(_elapsed) => {
                let unfinished: Vec<ProcessId> = waiters
                    .iter()
                    .filter(|(_, rx)| rx.borrow().state != ProcessState::Finished)
                    .map(|(id, _)| id.clone())
                    .collect();
                tracing::warn!(count = unfinished.len(), "procmgr shutdown deadline exceeded");
                Err(ProcmgrError::ShutdownDeadlineExceeded { unfinished })
            }
        }
    }
}
