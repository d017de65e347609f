//! The per-process task: picks up the pending update, runs the hook that the
//! process's state calls for (with no lock held), then applies the result:
//! state transition, counters, the live handle, and when to come back. A
//! started handle is watched for death by a task of its own, which takes it
//! down and schedules the restart (see `Entry::handle_died`).
//!
//! Requeue rules: a phase change (terminal sync, Terminate, termination done)
//! runs the next hook at once; a successful sync resyncs after the resync
//! interval +-10%; a cancelled or timed-out hook retries after 1 s +-50%;
//! any other error backs off exponentially by consecutive errors; a handle's
//! death backs off by the crash streak.

use std::any::Any;
use std::future::{Future, poll_fn};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, SystemTime};

use tokio::sync::{Notify, watch};
use tokio::time::Instant;

use super::backoff::jitter;
use super::error::ProcmgrError;
use super::manager::Shared;
use super::metrics::FailurePhase;
use super::state::{Entry, Table};
use super::syncer::{Managed, ProcessSyncer, SyncContext, SyncOutcome, TerminatingContext};
use super::types::{ProcessId, ProcessState, UpdateType};

enum Next<C, H> {
    Run(Job<C, H>),
    Idle,
    Exit,
}

enum Job<C, H> {
    Sync {
        update_type: UpdateType,
        config: C,
        ctx: SyncContext<H>,
        /// The sequence number of the handle the sync was given, if any.
        seen: Option<u64>,
    },
    Terminate {
        config: C,
        ctx: TerminatingContext<H>,
    },
    Cleanup {
        config: C,
        ctx: SyncContext<H>,
    },
}

enum Done<H> {
    Sync {
        update_type: UpdateType,
        result: Result<SyncOutcome<H>, ProcmgrError>,
        elapsed: Duration,
        seen: Option<u64>,
    },
    Terminate {
        result: Result<(), ProcmgrError>,
        elapsed: Duration,
        overrun: Option<Duration>,
    },
    Cleanup {
        result: Result<(), ProcmgrError>,
    },
}

enum After {
    Continue,
    Generation(u64),
    Exit,
}

/// Drive process `id` (generation `generation`) until it is Finished.
pub(crate) async fn run<S: ProcessSyncer>(
    shared: Arc<Shared<S>>,
    id: ProcessId,
    mut generation: u64,
    wake: Arc<Notify>,
) {
    loop {
        match next_job(&shared, &id, generation) {
            Next::Exit => return,
            Next::Idle => {
                tokio::select! {
                    biased;
                    () = shared.root.cancelled() => return,
                    () = wake.notified() => {}
                }
            }
            Next::Run(job) => {
                let done = execute(&shared, job).await;
                match complete(&shared, &id, generation, done) {
                    After::Continue => {}
                    After::Generation(next) => generation = next,
                    After::Exit => return,
                }
            }
        }
    }
}

/// Move the pending update to active and prepare the hook call.
fn next_job<S: ProcessSyncer>(shared: &Shared<S>, id: &ProcessId, generation: u64) -> Next<S::Config, S::Handle> {
    let mut table = shared.lock();
    let Some(e) = table.entries.get_mut(id) else {
        return Next::Exit;
    };
    if e.generation != generation || e.state == ProcessState::Finished {
        return Next::Exit;
    }
    let Some(update_type) = e.pending.take() else {
        return Next::Idle;
    };
    let config = e.config.clone();
    let token = shared.root.child_token();
    let id = id.clone();
    let current = e.handle.clone();
    Next::Run(match e.state {
        ProcessState::Starting | ProcessState::Syncing => {
            e.sync_token = Some(token.clone());
            Job::Sync {
                update_type,
                config,
                seen: current.is_some().then_some(e.handle_seq),
                ctx: SyncContext { id, token, current },
            }
        }
        ProcessState::Terminating => {
            let default = shared.opts.default_grace_period;
            let grace = e.grace.get_or_insert_with(|| watch::Sender::new(default));
            Job::Terminate {
                config,
                ctx: TerminatingContext {
                    id,
                    token,
                    terminating_since: *e.terminating_since.get_or_insert_with(Instant::now),
                    grace: grace.subscribe(),
                    current,
                },
            }
        }
        ProcessState::Terminated | ProcessState::Finished => Job::Cleanup {
            config,
            ctx: SyncContext { id, token, current },
        },
    })
}

/// Run one hook. No lock is held here.
async fn execute<S: ProcessSyncer>(shared: &Shared<S>, job: Job<S::Config, S::Handle>) -> Done<S::Handle> {
    let syncer = &shared.syncer;
    let start = Instant::now();
    match job {
        Job::Sync {
            update_type,
            config,
            ctx,
            seen,
        } => {
            let result = guarded(syncer.sync_process(ctx, update_type, &config)).await;
            Done::Sync {
                update_type,
                result: result.and_then(|r| r),
                elapsed: start.elapsed(),
                seen,
            }
        }
        Job::Terminate { config, ctx } => {
            let token = ctx.token.clone();
            let since = ctx.terminating_since;
            let mut grace = ctx.grace.clone();
            let mut watching = true;
            let mut hook = pin!(guarded(syncer.sync_terminating_process(ctx, &config)));
            // Enforce the grace period: cancel the hook's token at the
            // deadline, moving the deadline when the grace shrinks.
            let result = loop {
                let deadline = since + *grace.borrow_and_update();
                tokio::select! {
                    result = &mut hook => break result.and_then(|r| r),
                    () = tokio::time::sleep_until(deadline), if !token.is_cancelled() => {
                        token.cancel();
                    }
                    changed = grace.changed(), if watching && !token.is_cancelled() => {
                        watching = changed.is_ok();
                    }
                }
            };
            let deadline = since + *grace.borrow();
            let now = Instant::now();
            Done::Terminate {
                result,
                elapsed: now - start,
                overrun: (now > deadline).then(|| now - deadline),
            }
        }
        Job::Cleanup { config, ctx } => Done::Cleanup {
            result: guarded(syncer.sync_terminated_process(ctx, &config))
                .await
                .and_then(|r| r),
        },
    }
}

/// Apply a hook's result; say whether the task goes on.
fn complete<S: ProcessSyncer>(
    shared: &Arc<Shared<S>>,
    id: &ProcessId,
    generation: u64,
    done: Done<S::Handle>,
) -> After {
    let m = &*shared.opts.metrics;
    let backoff_period = shared.opts.backoff_period;
    let queue = &shared.queue;
    let mut table = shared.lock();
    let Some(e) = table.entries.get_mut(id) else {
        return After::Exit;
    };
    if e.generation != generation {
        return After::Exit;
    }
    match done {
        Done::Sync {
            update_type,
            result,
            elapsed,
            seen,
        } => {
            e.sync_token = None;
            // The handle this sync was given died while it ran: its death
            // is already recorded and its restart scheduled, so a sync that
            // found it "running" must not undo that.
            let died_meanwhile = seen.is_some_and(|seq| seq == e.handle_seq && e.handle.is_none());
            m.process_sync_duration(id, update_type, elapsed, result.is_ok());
            if let Ok(outcome) = &result
                && outcome.restarted
            {
                e.restart_count = e.restart_count.saturating_add(1);
                m.process_restart(id);
            }
            let mut result = result;
            if let Ok(SyncOutcome {
                started: Some(handle), ..
            }) = &mut result
            {
                // Installed even when a Terminate arrived meanwhile: the
                // termination hook then gets it, to stop what was started.
                let handle = handle.clone();
                let died = handle.died();
                let seq = e.install(id, handle, m);
                watch_death(shared, id.clone(), generation, seq, died);
            }
            let started_anew = matches!(&result, Ok(SyncOutcome { started: Some(_), .. }));
            if e.state.is_terminating() {
                // A Terminate arrived while the sync ran (and cancelled it):
                // the termination phase takes over at once; a cancellation we
                // caused is not the process's error.
            } else if died_meanwhile && !started_anew {
                // See `died_meanwhile`: the restart is on its way.
            } else {
                match result {
                    Ok(outcome) => {
                        e.succeeded();
                        e.last_sync = Some(SystemTime::now());
                        e.started_at.get_or_insert_with(Instant::now);
                        e.transition(id, ProcessState::Syncing, m);
                        if outcome.terminal {
                            let default = shared.opts.default_grace_period;
                            e.begin_termination(id, None, default, queue, m);
                        } else if e.pending.is_none() {
                            let delay = jitter(shared.opts.resync_interval, 0.1);
                            e.schedule(id, delay, queue, m);
                        }
                    }
                    Err(err) => {
                        e.failed(id, FailurePhase::Sync, &err.to_string(), m);
                        e.schedule_retry(id, &err, backoff_period, queue, m);
                    }
                }
            }
        }
        Done::Terminate {
            result,
            elapsed,
            overrun,
        } => {
            m.process_termination_duration(id, elapsed);
            match result {
                Ok(()) => {
                    e.succeeded();
                    e.transition(id, ProcessState::Terminated, m);
                    e.pending = Some(UpdateType::Sync);
                }
                Err(err) => {
                    e.failed(id, FailurePhase::Termination, &err.to_string(), m);
                    e.schedule_retry(id, &err, backoff_period, queue, m);
                }
            }
            if let Some(overrun) = overrun {
                let message = format!("termination overran its grace period by {overrun:?}");
                tracing::warn!(process_id = %id, "{message}");
                e.last_error = Some(Arc::from(message));
                e.grace_overrun = Some(overrun);
                m.process_error(id, FailurePhase::Termination);
            }
        }
        Done::Cleanup { result } => match result {
            Ok(()) => return finish(shared, &mut table, id),
            Err(err) => {
                e.failed(id, FailurePhase::Cleanup, &err.to_string(), m);
                e.schedule_retry(id, &err, backoff_period, queue, m);
            }
        },
    }
    e.publish();
    After::Continue
}

/// Cleanup succeeded: Finished (the handle is dropped). Then purge, start
/// the next generation, or keep the entry until it is purged.
fn finish<S: ProcessSyncer>(shared: &Shared<S>, table: &mut Table<S::Config, S::Handle>, id: &ProcessId) -> After {
    let m = &*shared.opts.metrics;
    let next_generation = table.generation();
    let Some(e) = table.entries.get_mut(id) else {
        return After::Exit;
    };
    e.succeeded();
    e.transition(id, ProcessState::Finished, m);
    e.finished_at = Some(Instant::now());
    e.next_sync_at = None;
    e.pending = None;
    e.handle = None;
    if shared.queue.remove(id.as_str()) {
        m.work_queue_depth(shared.queue.len());
    }
    e.publish();
    if let Some(recreate) = e.recreate.take() {
        m.process_purged(id);
        let wake = Arc::clone(&e.wake);
        *e = Entry::new(next_generation, recreate.config, recreate.status, wake);
        e.publish();
        return After::Generation(next_generation);
    }
    if e.forget_when_finished {
        shared.purge(table, id);
    }
    After::Exit
}

/// Watches handle `seq` of `id`'s generation `generation` until it dies (or
/// the manager goes away), then tells the entry.
fn watch_death<S: ProcessSyncer>(
    shared: &Arc<Shared<S>>,
    id: ProcessId,
    generation: u64,
    seq: u64,
    died: impl Future<Output = String> + Send + 'static,
) {
    let owner = Arc::clone(shared);
    shared.runtime.spawn(async move {
        let message = tokio::select! {
            biased;
            () = owner.root.cancelled() => return,
            message = died => message,
        };
        let mut table = owner.lock();
        let Some(e) = table.entries.get_mut(&id) else { return };
        if e.generation != generation {
            return;
        }
        if let Some(delay) = e.handle_died(&id, seq, &message, &owner.opts, &owner.queue) {
            tracing::warn!(process_id = %id, "{message}; restarting in {delay:?}");
            e.publish();
        }
    });
}

/// Run a hook, turning a panic into a hook error.
async fn guarded<F: Future>(hook: F) -> Result<F::Output, ProcmgrError> {
    let mut hook = pin!(hook);
    poll_fn(|cx| match catch_unwind(AssertUnwindSafe(|| hook.as_mut().poll(cx))) {
        Ok(Poll::Ready(output)) => Poll::Ready(Ok(output)),
        Ok(Poll::Pending) => Poll::Pending,
        Err(payload) => Poll::Ready(Err(ProcmgrError::hook(format!(
            "hook panicked: {}",
            panic_message(payload.as_ref())
        )))),
    })
    .await
}

fn panic_message(payload: &(dyn Any + Send)) -> &str {
    payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("non-string panic payload")
}
