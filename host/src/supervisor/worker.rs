//! A live worker as the host sees it: its process, its connection, the calls
//! in flight on it, and the steps of its life (start, assign, shut down).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tokio::io::AsyncBufReadExt;
use tokio::net::unix::OwnedReadHalf;
use tokio::sync::{mpsc, oneshot, watch};

use super::cgroup::{Cgroups, WorkerCgroup};
use super::child::{ChildProcess, describe_status};
use super::spawner::{InCgroup, Placement, Spawner, WorkerCommand};
use super::{ExitReason, StartError, WorkerExit};
use crate::ErrorKind;
use crate::ipc::{self, Assign, FromWorker, Init, Invoke, Outcome, PluginSpec, ToWorker};
use crate::names::{Namespace, SessionId};
use crate::sandbox::CallLimits;

/// OS limits applied to each worker.
#[derive(Debug, Clone)]
pub struct OsLimits {
    /// cgroup memory limit of the whole worker process, in bytes.
    pub memory_max: u64,
    /// cgroup limit on the worker's tasks (threads).
    pub pids_max: u64,
}

/// Replies the reader task hands back to whoever waits for them.
#[derive(Default)]
struct Pending {
    calls: HashMap<u64, oneshot::Sender<Outcome>>,
    pings: HashMap<u64, oneshot::Sender<()>>,
    plugin_acks: HashMap<String, Vec<oneshot::Sender<Option<String>>>>,
    closed: bool,
}

/// One worker process and the connection to it.
pub struct Worker {
    /// Unique for the host's lifetime (pids can be reused).
    serial: u64,
    process: ChildProcess,
    cgroup: Option<WorkerCgroup>,
    out: mpsc::UnboundedSender<ToWorker>,
    pending: Arc<Mutex<Pending>>,
    next_id: AtomicU64,
    in_flight: AtomicU64,
    started_at: Instant,
    shutting_down: AtomicBool,
    /// Closed (true) when the connection ends.
    disconnected: watch::Receiver<bool>,
}

impl std::fmt::Debug for Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker")
            .field("pid", &self.pid())
            .finish_non_exhaustive()
    }
}

/// A successful call on a worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerOutput {
    pub output: Vec<u8>,
    pub fuel_consumed: u64,
    pub duration: Duration,
}

/// A failed call on a worker: one contract kind and a message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind}: {message}")]
pub struct WorkerCallError {
    pub kind: ErrorKind,
    pub message: String,
}

impl Worker {
    /// Spawns a worker, checks its protocol version, and waits until its
    /// engine is up, every plugin is loaded and it is in its cgroup.
    pub(crate) async fn start(
        spawner: &Spawner,
        command: WorkerCommand,
        cgroups: &Arc<Cgroups>,
        limits: &OsLimits,
        init: Init,
        timeout: Duration,
    ) -> Result<Arc<Worker>, StartError> {
        let placement = Placement {
            cgroups: Arc::clone(cgroups),
            memory_max: limits.memory_max,
            pids_max: limits.pids_max,
        };
        let spawned = spawner.spawn(command, placement).await.map_err(StartError::Spawn)?;
        let process = ChildProcess::watch(spawned.child).map_err(StartError::Spawn)?;
        let pid = process.pid();
        // A worker not born in its cgroup is moved there, which can wait for
        // an RCU grace period (about 10 ms on an idle host): on a blocking
        // thread while the worker starts, not on the async threads.
        let (mut cgroup, moving) = match spawned.cgroup {
            InCgroup::Born(cgroup) => (Some(cgroup), None),
            InCgroup::ToMove(cgroup) => (
                None,
                Some(tokio::task::spawn_blocking(move || {
                    cgroup.add_process(pid).map(|()| cgroup)
                })),
            ),
            InCgroup::None => (None, None),
        };
        relay_stderr(pid, spawned.stderr);
        spawned.socket.set_nonblocking(true).map_err(StartError::Spawn)?;
        let socket = tokio::net::UnixStream::from_std(spawned.socket).map_err(StartError::Spawn)?;
        let (read, write) = socket.into_split();
        let (mut recv, mut send) = ipc::channel::<_, _, FromWorker, ToWorker>(read, write);

        let handshake = async {
            match recv.recv().await {
                Some(Ok(FromWorker::Hello { protocol, .. })) if protocol == ipc::PROTOCOL_VERSION => {}
                Some(Ok(FromWorker::Hello { protocol, .. })) => {
                    return Err(StartError::Protocol(format!(
                        "worker speaks protocol {protocol}, the host {}",
                        ipc::PROTOCOL_VERSION
                    )));
                }
                other => return Err(unexpected("Hello", other)),
            }
            send.send(&ToWorker::Init(init))
                .await
                .map_err(|e| StartError::Protocol(e.to_string()))?;
            match recv.recv().await {
                Some(Ok(FromWorker::Ready)) => Ok(()),
                Some(Ok(FromWorker::InitFailed { message })) => Err(StartError::Init(message)),
                other => Err(unexpected("Ready", other)),
            }
        };
        let outcome = tokio::select! {
            outcome = tokio::time::timeout(timeout, handshake) => outcome.unwrap_or(Err(StartError::Timeout(timeout))),
            status = process.exited() => Err(StartError::Exited(describe_status(status))),
        };
        // The worker is not handed out before it is in its cgroup, so no
        // call runs outside its limits.
        if let Some(moving) = moving {
            cgroup = match moving.await {
                Ok(Ok(moved)) => Some(moved),
                Ok(Err(e)) => {
                    cgroups.warn_once(&e);
                    None
                }
                Err(e) => {
                    tracing::warn!(pid, "moving the worker into its cgroup failed: {e}");
                    None
                }
            };
        }
        if let Err(e) = outcome {
            process.kill();
            return Err(e);
        }

        let pending = Arc::new(Mutex::new(Pending::default()));
        let (disconnected_tx, disconnected) = watch::channel(false);
        let (out, _writer) = send.spawn_writer();
        spawn_reader(pid, recv, Arc::clone(&pending), disconnected_tx);
        static SERIAL: AtomicU64 = AtomicU64::new(1);
        Ok(Arc::new(Worker {
            serial: SERIAL.fetch_add(1, Ordering::Relaxed),
            process,
            cgroup,
            out,
            pending,
            next_id: AtomicU64::new(1),
            in_flight: AtomicU64::new(0),
            started_at: Instant::now(),
            shutting_down: AtomicBool::new(false),
            disconnected,
        }))
    }

    /// An id unique among the host's workers, unlike the pid.
    pub fn serial(&self) -> u64 {
        self.serial
    }

    /// The worker's pid.
    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    /// Time since it became ready.
    pub fn uptime(&self) -> Duration {
        self.started_at.elapsed()
    }

    /// Calls running on it now.
    pub fn in_flight(&self) -> u64 {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// Whether it can take calls: connected, not exited, not shutting down.
    pub fn is_alive(&self) -> bool {
        !*self.disconnected.borrow()
            && self.process.exit_status().is_none()
            && !self.shutting_down.load(Ordering::Relaxed)
    }

    /// A receiver that turns true when the connection ends.
    pub(crate) fn disconnected(&self) -> watch::Receiver<bool> {
        self.disconnected.clone()
    }

    /// Binds the worker to a process id. The assignment is pipelined: it is
    /// sent and not waited for, because the worker handles messages in
    /// order, so a call sent next runs bound. A worker that refuses it
    /// (only possible if it was bound already) exits, which the host sees
    /// as a crash.
    pub(crate) fn assign(&self, assign: Assign) -> Result<(), StartError> {
        if !self.is_alive() {
            return Err(StartError::Protocol("the worker is gone".into()));
        }
        self.send(ToWorker::Assign(assign));
        Ok(())
    }

    /// Runs one call. A worker that dies meanwhile fails it with `worker_crashed`.
    pub async fn invoke(
        &self,
        plugin: &str,
        namespace: &Namespace,
        session: &SessionId,
        payload: Vec<u8>,
        limits: &CallLimits,
    ) -> Result<WorkerOutput, WorkerCallError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        if self.register(|p| p.calls.insert(id, tx)).is_err() {
            return Err(self.crashed());
        }
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        let _done = InFlight(&self.in_flight);
        self.send(ToWorker::Invoke(Invoke {
            id,
            plugin: plugin.to_owned(),
            namespace: namespace.clone(),
            session: session.clone(),
            payload,
            limits: limits.clone(),
        }));
        match rx.await {
            Ok(Outcome::Ok {
                output,
                fuel_consumed,
                duration,
            }) => Ok(WorkerOutput {
                output,
                fuel_consumed,
                duration,
            }),
            Ok(Outcome::Err { kind, message }) => Err(WorkerCallError { kind, message }),
            Err(_) => Err(self.crashed()),
        }
    }

    fn crashed(&self) -> WorkerCallError {
        let detail = self
            .process
            .exit_status()
            .map_or_else(|| "its connection closed".to_owned(), describe_status);
        WorkerCallError {
            kind: ErrorKind::WorkerCrashed,
            message: format!("the worker process (pid {}) died during the call: {detail}", self.pid()),
        }
    }

    /// Whether it answers a ping within `timeout`.
    pub async fn ping(&self, timeout: Duration) -> bool {
        let nonce = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        if self.register(|p| p.pings.insert(nonce, tx)).is_err() {
            return false;
        }
        self.send(ToWorker::Ping { nonce });
        matches!(tokio::time::timeout(timeout, rx).await, Ok(Ok(())))
    }

    /// Loads (or replaces) a plugin; `Err` says why the worker refused it.
    pub async fn add_plugin(&self, spec: PluginSpec) -> Result<(), String> {
        let (tx, rx) = oneshot::channel();
        let name = spec.name.clone();
        self.register(|p| p.plugin_acks.entry(name).or_default().push(tx))
            .map_err(|()| "the worker is gone".to_owned())?;
        self.send(ToWorker::PluginAdd(spec));
        match rx.await {
            Ok(None) => Ok(()),
            Ok(Some(error)) => Err(error),
            Err(_) => Err("the worker went away".into()),
        }
    }

    /// Stops serving a plugin.
    pub async fn remove_plugin(&self, name: &str) {
        let (tx, rx) = oneshot::channel();
        if self
            .register(|p| p.plugin_acks.entry(name.to_owned()).or_default().push(tx))
            .is_ok()
        {
            self.send(ToWorker::PluginRemove { name: name.to_owned() });
            let _ = rx.await;
        }
    }

    /// Asks the worker to finish its calls and exit; kills it when it is
    /// still alive `grace` after `since` (the receiver may shorten the grace
    /// while waiting). Returns how it ended.
    pub(crate) async fn shutdown(&self, since: Instant, mut grace: watch::Receiver<Duration>) -> WorkerExit {
        self.shutting_down.store(true, Ordering::Relaxed);
        let started = since;
        self.send(ToWorker::Shutdown { grace: *grace.borrow() });
        loop {
            let deadline = started + *grace.borrow_and_update();
            tokio::select! {
                _ = self.process.exited() => break,
                _ = tokio::time::sleep_until(deadline.into()) => {
                    tracing::warn!(pid = self.pid(), "worker still alive after its grace period; killing it");
                    self.process.kill();
                    break;
                }
                changed = grace.changed() => if changed.is_err() {
                    // Nobody can shorten the grace any more: wait it out.
                    tokio::select! {
                        _ = self.process.exited() => {}
                        _ = tokio::time::sleep_until(deadline.into()) => self.process.kill(),
                    }
                    break;
                },
            }
        }
        self.exit().await
    }

    /// Kills the worker at once.
    pub(crate) fn kill(&self) {
        self.process.kill();
    }

    /// Waits for the process to be gone and says why it went.
    pub(crate) async fn exit(&self) -> WorkerExit {
        let status = self.process.exited().await;
        let reason = if self.cgroup.as_ref().is_some_and(WorkerCgroup::oom_killed) {
            ExitReason::Oom
        } else if self.process.was_killed() {
            ExitReason::Killed
        } else if self.shutting_down.load(Ordering::Relaxed) && status.success() {
            ExitReason::Shutdown
        } else {
            ExitReason::Crashed
        };
        WorkerExit {
            reason,
            status: describe_status(status),
        }
    }

    fn send(&self, message: ToWorker) {
        // A failed send means the connection is gone; the reader fails
        // every pending reply when that happens.
        let _ = self.out.send(message);
    }

    /// Registers a waiter for a reply, unless the connection is closed.
    fn register<R>(&self, add: impl FnOnce(&mut Pending) -> R) -> Result<R, ()> {
        let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
        if pending.closed {
            return Err(());
        }
        Ok(add(&mut pending))
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        // The process kills and reaps itself on drop; make sure nothing
        // waits on a reply that can no longer come.
        let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
        pending.closed = true;
        pending.calls.clear();
    }
}

struct InFlight<'a>(&'a AtomicU64);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

fn unexpected(wanted: &str, got: Option<Result<FromWorker, ipc::FrameError>>) -> StartError {
    StartError::Protocol(match got {
        None => format!("the worker closed the connection before {wanted}"),
        Some(Err(e)) => format!("waiting for {wanted}: {e}"),
        Some(Ok(other)) => format!("expected {wanted}, got {other:?}"),
    })
}

fn spawn_reader(
    pid: u32,
    mut recv: ipc::Receiver<OwnedReadHalf, FromWorker>,
    pending: Arc<Mutex<Pending>>,
    disconnected: watch::Sender<bool>,
) {
    tokio::spawn(async move {
        loop {
            let message = match recv.recv().await {
                Some(Ok(message)) => message,
                Some(Err(e)) => {
                    tracing::error!(pid, "worker broke the protocol: {e}");
                    break;
                }
                None => break,
            };
            let mut p = pending.lock().unwrap_or_else(PoisonError::into_inner);
            match message {
                FromWorker::Result { id, outcome } => {
                    if let Some(tx) = p.calls.remove(&id) {
                        let _ = tx.send(outcome);
                    }
                }
                FromWorker::Pong { nonce } => {
                    if let Some(tx) = p.pings.remove(&nonce) {
                        let _ = tx.send(());
                    }
                }
                FromWorker::PluginAdded { name, error } => {
                    if let Some(tx) = take_ack(&mut p.plugin_acks, &name) {
                        let _ = tx.send(error);
                    }
                }
                FromWorker::PluginRemoved { name } => {
                    if let Some(tx) = take_ack(&mut p.plugin_acks, &name) {
                        let _ = tx.send(None);
                    }
                }
                FromWorker::Assigned => {}
                FromWorker::AssignFailed { message } => {
                    // The worker exits after this; its exit is the crash.
                    tracing::error!(pid, "worker refused its assignment: {message}");
                }
                other => {
                    tracing::error!(pid, "unexpected message from worker: {other:?}");
                    break;
                }
            }
        }
        // Every waiter learns at once that no reply will come.
        let mut p = pending.lock().unwrap_or_else(PoisonError::into_inner);
        p.closed = true;
        p.calls.clear();
        p.pings.clear();
        p.plugin_acks.clear();
        let _ = disconnected.send(true);
    });
}

fn take_ack(
    acks: &mut HashMap<String, Vec<oneshot::Sender<Option<String>>>>,
    name: &str,
) -> Option<oneshot::Sender<Option<String>>> {
    let waiters = acks.get_mut(name)?;
    let first = (!waiters.is_empty()).then(|| waiters.remove(0));
    if waiters.is_empty() {
        acks.remove(name);
    }
    first
}

/// Logs each line the worker writes to stderr, tagged with its pid.
fn relay_stderr(pid: u32, stderr: std::process::ChildStderr) {
    let Ok(pipe) = tokio::net::unix::pipe::Receiver::from_owned_fd(std::os::fd::OwnedFd::from(stderr)) else {
        return;
    };
    tokio::spawn(async move {
        let mut lines = tokio::io::BufReader::new(pipe).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            tracing::info!(target: "bulkhead::worker", pid, "{line}");
        }
    });
}
