//! A scriptable fake syncer with fake handles, and a recording metrics
//! collector: for procmgr's own tests and for the layers built on procmgr
//! (the isolation manager's unit tests drive it the same way).

use std::collections::{HashMap, VecDeque};
use std::fmt::Debug;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

use crate::procmgr::{
    FailurePhase, Managed, MetricsCollector, ProcessId, ProcessManager, ProcessManagerOptions, ProcessState,
    ProcessSyncer, ProcmgrError, SyncContext, SyncOutcome, TerminatingContext, UpdateType,
};

/// A fake live thing: alive until [`FakeHandle::kill`].
#[derive(Debug, Clone)]
pub(crate) struct FakeHandle {
    serial: u64,
    alive: Arc<watch::Sender<bool>>,
}

impl PartialEq for FakeHandle {
    fn eq(&self, other: &Self) -> bool {
        self.serial == other.serial
    }
}

impl FakeHandle {
    pub(crate) fn new() -> Self {
        static SERIAL: AtomicU64 = AtomicU64::new(1);
        Self {
            serial: SERIAL.fetch_add(1, Ordering::Relaxed),
            alive: Arc::new(watch::Sender::new(true)),
        }
    }

    /// It dies now: `is_live` turns false and `died` resolves.
    pub(crate) fn kill(&self) {
        self.alive.send_replace(false);
    }
}

impl Managed for FakeHandle {
    fn is_live(&self) -> bool {
        *self.alive.borrow()
    }

    fn died(&self) -> impl Future<Output = String> + Send + 'static {
        let mut alive = self.alive.subscribe();
        let serial = self.serial;
        async move {
            let _ = alive.wait_for(|alive| !*alive).await;
            format!("fake {serial} died")
        }
    }
}

/// Which hook a call went to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Hook {
    Sync,
    Terminating,
    Cleanup,
}

/// One hook call, as the fake saw it.
#[derive(Debug, Clone)]
pub(crate) struct Call<C> {
    pub hook: Hook,
    pub id: String,
    pub config: C,
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
    pub(crate) fn ok(value: T) -> Self {
        Self {
            delay: None,
            honour_token: true,
            linger: Duration::ZERO,
            result: Ok(value),
        }
    }

    pub(crate) fn err(error: ProcmgrError) -> Self {
        Self {
            delay: None,
            honour_token: true,
            linger: Duration::ZERO,
            result: Err(error),
        }
    }

    /// Take `d` before returning (cut short by the token unless ignored).
    pub(crate) fn after(mut self, d: Duration) -> Self {
        self.delay = Some(d);
        self
    }

    /// Keep running `d` after the token fires before returning.
    pub(crate) fn lingering(mut self, d: Duration) -> Self {
        self.linger = d;
        self
    }

    pub(crate) fn ignoring_token(mut self) -> Self {
        self.honour_token = false;
        self
    }
}

type Outcome = SyncOutcome<FakeHandle>;

#[derive(Debug, Default)]
struct Script {
    sync: HashMap<String, VecDeque<Step<Outcome>>>,
    terminating: HashMap<String, VecDeque<Step<()>>>,
    cleanup: HashMap<String, VecDeque<Step<()>>>,
    default_sync: Option<Step<Outcome>>,
    default_terminating: Option<Step<()>>,
}

/// A syncer whose hooks follow a script and log every call on a watch
/// channel tests can wait on. Unscripted, a sync succeeds at once: it keeps
/// a live handle, or starts a new [`FakeHandle`] when there is none (or the
/// one procmgr holds is dead); a termination succeeds and kills the handle.
#[derive(Debug)]
pub(crate) struct FakeSyncer<C = String> {
    script: Mutex<Script>,
    log: watch::Sender<Vec<Call<C>>>,
    started: watch::Sender<HashMap<String, Vec<FakeHandle>>>,
}

impl<C> Default for FakeSyncer<C> {
    fn default() -> Self {
        Self {
            script: Mutex::default(),
            log: watch::Sender::new(Vec::new()),
            started: watch::Sender::new(HashMap::new()),
        }
    }
}

impl<C: Clone> FakeSyncer<C> {
    fn script(&self) -> std::sync::MutexGuard<'_, Script> {
        self.script.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The handles started for `id`, oldest first.
    pub(crate) fn started(&self, id: &str) -> Vec<FakeHandle> {
        self.started.borrow().get(id).cloned().unwrap_or_default()
    }

    /// Wait (woken by each start, bounded by [`LONG`]) until `id` had `n`
    /// handles started, and return the `n`th.
    pub(crate) async fn wait_started(&self, id: &str, n: usize) -> FakeHandle {
        let mut rx = self.started.subscribe();
        let waited = tokio::time::timeout(
            LONG,
            rx.wait_for(|started| started.get(id).is_some_and(|h| h.len() >= n)),
        )
        .await;
        assert!(matches!(waited, Ok(Ok(_))), "{id}: fewer than {n} handles started");
        self.started(id)[n - 1].clone()
    }

    pub(crate) fn script_sync(&self, id: &str, step: Step<Outcome>) {
        self.script().sync.entry(id.into()).or_default().push_back(step);
    }

    pub(crate) fn script_termination(&self, id: &str, step: Step<()>) {
        self.script().terminating.entry(id.into()).or_default().push_back(step);
    }

    pub(crate) fn script_cleanup(&self, id: &str, step: Step<()>) {
        self.script().cleanup.entry(id.into()).or_default().push_back(step);
    }

    pub(crate) fn set_default_sync(&self, step: Step<Outcome>) {
        self.script().default_sync = Some(step);
    }

    pub(crate) fn set_default_termination(&self, step: Step<()>) {
        self.script().default_terminating = Some(step);
    }

    /// Every call so far.
    pub(crate) fn calls(&self) -> Vec<Call<C>> {
        self.log.borrow().clone()
    }

    /// Calls of `hook` for `id`.
    pub(crate) fn calls_of(&self, hook: Hook, id: &str) -> Vec<Call<C>> {
        self.log
            .borrow()
            .iter()
            .filter(|c| c.hook == hook && c.id == id)
            .cloned()
            .collect()
    }

    pub(crate) fn count(&self, hook: Hook, id: &str) -> usize {
        self.calls_of(hook, id).len()
    }

    /// Wait (woken by each call, never polling, bounded by [`LONG`]) until
    /// `id` had `n` calls of `hook`.
    pub(crate) async fn wait_calls(&self, hook: Hook, id: &str, n: usize) {
        let mut rx = self.log.subscribe();
        let waited = tokio::time::timeout(
            LONG,
            rx.wait_for(|log| log.iter().filter(|c| c.hook == hook && c.id == id).count() >= n),
        )
        .await;
        assert!(matches!(waited, Ok(Ok(_))), "{id}: fewer than {n} {hook:?} calls");
    }

    fn record(&self, call: Call<C>) -> usize {
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

fn call<C: Clone>(hook: Hook, id: &ProcessId, config: &C, live: bool) -> Call<C> {
    Call {
        hook,
        id: id.to_string(),
        config: config.clone(),
        update_type: None,
        grace: None,
        token_live_at_start: live,
        at: Instant::now(),
        cancelled_at: None,
    }
}

impl<C: Clone + Debug + Send + Sync + 'static> ProcessSyncer for FakeSyncer<C> {
    type Config = C;
    type Handle = FakeHandle;

    async fn sync_process(
        &self,
        ctx: SyncContext<FakeHandle>,
        update_type: UpdateType,
        config: &C,
    ) -> Result<Outcome, ProcmgrError> {
        let mut c = call(Hook::Sync, ctx.id(), config, !ctx.token().is_cancelled());
        c.update_type = Some(update_type);
        let index = self.record(c);
        let step = {
            let mut script = self.script();
            let scripted = script.sync.get_mut(ctx.id().as_str()).and_then(VecDeque::pop_front);
            scripted.or_else(|| script.default_sync.clone()).unwrap_or_else(|| {
                if ctx.current().is_some_and(Managed::is_live) {
                    Step::ok(SyncOutcome::running())
                } else {
                    Step::ok(SyncOutcome::started(FakeHandle::new()))
                }
            })
        };
        match self.play(step, ctx.token(), index).await {
            (_, true) => Err(ProcmgrError::Cancelled),
            (result, false) => {
                if let Ok(SyncOutcome {
                    started: Some(handle), ..
                }) = &result
                {
                    self.started.send_modify(|started| {
                        started.entry(ctx.id().to_string()).or_default().push(handle.clone());
                    });
                }
                result
            }
        }
    }

    async fn sync_terminating_process(
        &self,
        ctx: TerminatingContext<FakeHandle>,
        config: &C,
    ) -> Result<(), ProcmgrError> {
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
        let result = self.play(step, ctx.token(), index).await.0;
        if result.is_ok()
            && let Some(handle) = ctx.current()
        {
            handle.kill();
        }
        result
    }

    async fn sync_terminated_process(&self, ctx: SyncContext<FakeHandle>, config: &C) -> Result<(), ProcmgrError> {
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
    Error(String, FailurePhase),
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
    pub(crate) fn events(&self) -> Vec<Event> {
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
    fn process_error(&self, id: &ProcessId, kind: FailurePhase) {
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

pub(crate) type Manager<C = String> = ProcessManager<FakeSyncer<C>>;

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
