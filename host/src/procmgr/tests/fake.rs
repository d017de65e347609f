//! A scriptable fake syncer and a recording metrics collector for the tests.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

use crate::procmgr::{
    ErrorKind, MetricsCollector, ProcessId, ProcessManager, ProcessManagerOptions, ProcessState, ProcessSyncer,
    ProcmgrError, SyncContext, SyncOutcome, TerminatingContext, UpdateType,
};

/// Which hook a call went to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Hook {
    Sync,
    Terminating,
    Cleanup,
}

/// One hook call, as the fake saw it.
#[derive(Debug, Clone)]
pub(crate) struct Call {
    pub hook: Hook,
    pub id: String,
    pub config: String,
    pub update_type: Option<UpdateType>,
    pub grace: Option<Duration>,
    pub token_live_at_start: bool,
    pub at: Instant,
    /// When the hook saw its token cancelled, if it did.
    pub cancelled_at: Option<Instant>,
}

/// How one hook call behaves.
#[derive(Debug, Clone)]
pub(crate) struct Step<T> {
    delay: Option<Duration>,
    honour_token: bool,
    /// After the token fires, keep going this long before returning.
    linger: Duration,
    result: Result<T, ProcmgrError>,
}

impl<T> Step<T> {
    pub fn ok(value: T) -> Self {
        Self {
            delay: None,
            honour_token: true,
            linger: Duration::ZERO,
            result: Ok(value),
        }
    }

    pub fn err(error: ProcmgrError) -> Self {
        Self {
            delay: None,
            honour_token: true,
            linger: Duration::ZERO,
            result: Err(error),
        }
    }

    /// Take `d` before returning (cut short by the token unless ignored).
    pub fn after(mut self, d: Duration) -> Self {
        self.delay = Some(d);
        self
    }

    /// Keep running `d` after the token fires before returning.
    pub fn lingering(mut self, d: Duration) -> Self {
        self.linger = d;
        self
    }

    pub fn ignoring_token(mut self) -> Self {
        self.honour_token = false;
        self
    }
}

#[derive(Debug, Default)]
struct Script {
    sync: HashMap<String, VecDeque<Step<SyncOutcome>>>,
    terminating: HashMap<String, VecDeque<Step<()>>>,
    cleanup: HashMap<String, VecDeque<Step<()>>>,
    default_sync: Option<Step<SyncOutcome>>,
    default_terminating: Option<Step<()>>,
}

/// A syncer whose hooks follow a script (default: succeed at once) and log
/// every call on a watch channel tests can wait on.
#[derive(Debug)]
pub(crate) struct FakeSyncer {
    script: Mutex<Script>,
    log: watch::Sender<Vec<Call>>,
}

impl Default for FakeSyncer {
    fn default() -> Self {
        Self {
            script: Mutex::default(),
            log: watch::Sender::new(Vec::new()),
        }
    }
}

impl FakeSyncer {
    fn script(&self) -> std::sync::MutexGuard<'_, Script> {
        self.script.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn script_sync(&self, id: &str, step: Step<SyncOutcome>) {
        self.script().sync.entry(id.into()).or_default().push_back(step);
    }

    pub fn script_termination(&self, id: &str, step: Step<()>) {
        self.script().terminating.entry(id.into()).or_default().push_back(step);
    }

    pub fn script_cleanup(&self, id: &str, step: Step<()>) {
        self.script().cleanup.entry(id.into()).or_default().push_back(step);
    }

    pub fn set_default_sync(&self, step: Step<SyncOutcome>) {
        self.script().default_sync = Some(step);
    }

    pub fn set_default_termination(&self, step: Step<()>) {
        self.script().default_terminating = Some(step);
    }

    /// Every call so far.
    pub fn calls(&self) -> Vec<Call> {
        self.log.borrow().clone()
    }

    /// Calls of `hook` for `id`.
    pub fn calls_of(&self, hook: Hook, id: &str) -> Vec<Call> {
        self.log
            .borrow()
            .iter()
            .filter(|c| c.hook == hook && c.id == id)
            .cloned()
            .collect()
    }

    pub fn count(&self, hook: Hook, id: &str) -> usize {
        self.calls_of(hook, id).len()
    }

    /// Wait (woken by each call, never polling) until `id` had `n` calls of `hook`.
    pub async fn wait_calls(&self, hook: Hook, id: &str, n: usize) {
        let mut rx = self.log.subscribe();
        let waited = tokio::time::timeout(
            Duration::from_secs(3600),
            rx.wait_for(|log| log.iter().filter(|c| c.hook == hook && c.id == id).count() >= n),
        )
        .await;
        assert!(matches!(waited, Ok(Ok(_))), "{id}: fewer than {n} {hook:?} calls");
    }

    fn record(&self, call: Call) -> usize {
        let mut index = 0;
        self.log.send_modify(|log| {
            index = log.len();
            log.push(call);
        });
        index
    }

    fn mark_cancelled(&self, index: usize) {
        let now = Instant::now();
        self.log.send_modify(|log| log[index].cancelled_at = Some(now));
    }

    /// Play `step`; also say whether the token cut it short.
    async fn play<T>(
        &self,
        step: Step<T>,
        token: &tokio_util::sync::CancellationToken,
        index: usize,
    ) -> (Result<T, ProcmgrError>, bool) {
        if let Some(delay) = step.delay {
            tokio::select! {
                () = tokio::time::sleep(delay) => {}
                () = token.cancelled(), if step.honour_token => {
                    self.mark_cancelled(index);
                    tokio::time::sleep(step.linger).await;
                    return (step.result, true);
                }
            }
        }
        (step.result, false)
    }
}

fn call(hook: Hook, id: &ProcessId, config: &str, live: bool) -> Call {
    Call {
        hook,
        id: id.to_string(),
        config: config.to_owned(),
        update_type: None,
        grace: None,
        token_live_at_start: live,
        at: Instant::now(),
        cancelled_at: None,
    }
}

impl ProcessSyncer for FakeSyncer {
    type Config = String;

    async fn sync_process(
        &self,
        ctx: SyncContext,
        update_type: UpdateType,
        config: &String,
    ) -> Result<SyncOutcome, ProcmgrError> {
        let mut c = call(Hook::Sync, ctx.id(), config, !ctx.token().is_cancelled());
        c.update_type = Some(update_type);
        let index = self.record(c);
        let step = {
            let mut script = self.script();
            let scripted = script.sync.get_mut(ctx.id().as_str()).and_then(VecDeque::pop_front);
            scripted
                .or_else(|| script.default_sync.clone())
                .unwrap_or(Step::ok(SyncOutcome::running()))
        };
        match self.play(step, ctx.token(), index).await {
            (_, true) => Err(ProcmgrError::Cancelled),
            (result, false) => result,
        }
    }

    async fn sync_terminating_process(&self, ctx: TerminatingContext, config: &String) -> Result<(), ProcmgrError> {
        let mut c = call(Hook::Terminating, ctx.id(), config, !ctx.token().is_cancelled());
        c.grace = Some(ctx.grace_period());
        let index = self.record(c);
        let step = {
            let mut script = self.script();
            let scripted = script
                .terminating
                .get_mut(ctx.id().as_str())
                .and_then(VecDeque::pop_front);
            scripted
                .or_else(|| script.default_terminating.clone())
                .unwrap_or(Step::ok(()))
        };
        // Cut short by the grace deadline, the fake has "killed" the thing
        // and returns its scripted result.
        self.play(step, ctx.token(), index).await.0
    }

    async fn sync_terminated_process(&self, ctx: SyncContext, config: &String) -> Result<(), ProcmgrError> {
        let index = self.record(call(Hook::Cleanup, ctx.id(), config, !ctx.token().is_cancelled()));
        let step = self
            .script()
            .cleanup
            .get_mut(ctx.id().as_str())
            .and_then(VecDeque::pop_front)
            .unwrap_or(Step::ok(()));
        self.play(step, ctx.token(), index).await.0
    }
}

/// One measurement seen by [`Recorder`].
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Event {
    Transition(String, ProcessState, ProcessState),
    SyncDuration(String, UpdateType, bool),
    TerminationDuration(String),
    Error(String, ErrorKind),
    Restart(String),
    QueueAdd(String),
    QueueRetry(String),
    Backoff(String, Duration),
    Purged(String),
}

/// A metrics collector that remembers every callback.
#[derive(Debug, Default)]
pub(crate) struct Recorder {
    events: Mutex<Vec<Event>>,
}

impl Recorder {
    pub fn events(&self) -> Vec<Event> {
        self.events.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    fn push(&self, e: Event) {
        self.events.lock().unwrap_or_else(PoisonError::into_inner).push(e);
    }
}

impl MetricsCollector for Recorder {
    fn process_state_transition(&self, id: &ProcessId, from: ProcessState, to: ProcessState) {
        self.push(Event::Transition(id.to_string(), from, to));
    }
    fn process_sync_duration(&self, id: &ProcessId, t: UpdateType, _d: Duration, ok: bool) {
        self.push(Event::SyncDuration(id.to_string(), t, ok));
    }
    fn process_termination_duration(&self, id: &ProcessId, _d: Duration) {
        self.push(Event::TerminationDuration(id.to_string()));
    }
    fn process_error(&self, id: &ProcessId, kind: ErrorKind) {
        self.push(Event::Error(id.to_string(), kind));
    }
    fn process_restart(&self, id: &ProcessId) {
        self.push(Event::Restart(id.to_string()));
    }
    fn work_queue_add(&self, id: &ProcessId, _delay: Duration) {
        self.push(Event::QueueAdd(id.to_string()));
    }
    fn work_queue_retry(&self, id: &ProcessId) {
        self.push(Event::QueueRetry(id.to_string()));
    }
    fn work_queue_backoff_duration(&self, id: &ProcessId, delay: Duration) {
        self.push(Event::Backoff(id.to_string(), delay));
    }
    fn process_purged(&self, id: &ProcessId) {
        self.push(Event::Purged(id.to_string()));
    }
}

pub(crate) type Manager = ProcessManager<FakeSyncer>;

/// A manager with a fresh fake syncer and `options`.
pub(crate) fn manager_with(options: ProcessManagerOptions) -> Manager {
    ProcessManager::new(FakeSyncer::default(), options)
}

/// A manager with default options.
pub(crate) fn manager() -> Manager {
    manager_with(ProcessManagerOptions::default())
}

/// A manager recording its metrics.
pub(crate) fn recorded_manager(options: ProcessManagerOptions) -> (Manager, Arc<Recorder>) {
    let recorder = Arc::new(Recorder::default());
    let pm = manager_with(options.with_metrics(recorder.clone()));
    (pm, recorder)
}

/// A long timeout for waits in paused-time tests (virtual time is free).
pub(crate) const LONG: Duration = Duration::from_secs(600);

/// Wait until `id` is in `state` (or later), panicking after [`LONG`].
pub(crate) async fn wait_state(pm: &Manager, id: &str, state: ProcessState) {
    let result = pm.wait_for(id, |s| s.state >= state, LONG).await;
    assert!(result.is_ok(), "{id} never reached {state}: {result:?}");
}
