//! A worker as the host sees it: its process, its cgroup, its connection,
//! and the steps of its life (spawn and handshake, assignment, calls,
//! shutdown, exit). The request/reply traffic itself is in `connection.rs`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::watch;

use super::cgroup::{Cgroups, WorkerCgroup};
use super::child::{ChildProcess, describe_status};
use super::connection::Connection;
use super::egress::EgressRules;
use super::relay::relay_stderr;
use super::spawner::{InCgroup, Placement, Spawner, WorkerCommand};
use super::{ExitReason, StartError, WorkerExit};
use crate::ipc::{self, Assignment, CpuLimits, FromWorker, Init, Invoke, Outcome, PluginSpec, ToWorker};
use crate::names::{Namespace, SessionId};
use crate::sandbox::{CallFailure, CallLimits, World};

/// OS limits applied to each worker.
#[derive(Debug, Clone)]
pub struct OsLimits {
    /// cgroup memory limit of the whole worker process, in bytes.
    pub memory_max: u64,
    /// cgroup limit on the worker's tasks (threads).
    pub pids_max: u64,
}

/// Logs, once per host, that tenants' CPU limits cannot be applied.
fn warn_cpu_once(e: &std::io::Error) {
    static WARNED: AtomicBool = AtomicBool::new(false);
    if !WARNED.swap(true, Ordering::Relaxed) {
        tracing::warn!("tenants' cpu_weight and cpu_max are not applied: {e}");
    }
}

/// One worker process and the connection to it.
pub struct WorkerHandle {
    /// Unique for the host's lifetime (pids can be reused).
    serial: u64,
    process: ChildProcess,
    cgroup: Option<WorkerCgroup>,
    connection: Connection,
    started_at: Instant,
    shutting_down: AtomicBool,
    /// The instance slots it was started with (see `Init`): fixed for its life.
    instance_slots: u32,
}

impl std::fmt::Debug for WorkerHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkerHandle")
            .field("serial", &self.serial)
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

/// How long past a call's own timeout the host waits for the worker's
/// answer before it kills the worker: the worker enforces the timeout
/// itself; this is the host's backstop against a worker that does not (a
/// thread stuck in a host call, or a worker that is not what it should be).
pub const CALL_SLACK: Duration = Duration::from_secs(2);

/// A failed call on a worker.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WorkerCallError {
    /// The worker died (or its connection ended) before it answered.
    #[error("the worker process (pid {pid}) died during the call: {detail}")]
    Crashed { pid: u32, detail: String },
    /// The worker did not answer within the call's timeout plus
    /// [`CALL_SLACK`]; it was killed.
    #[error("the worker process (pid {pid}) did not answer within the call's timeout of {} ms (and {} s more); it was killed", timeout.as_millis(), CALL_SLACK.as_secs())]
    Unresponsive { pid: u32, timeout: Duration },
    /// The worker answered: the call failed in the sandbox.
    #[error(transparent)]
    Failed(#[from] CallFailure),
}

impl WorkerHandle {
    /// Spawns a worker, checks its protocol version, and waits until its
    /// engine is up, every plugin is loaded and it is in its cgroup.
    pub(crate) async fn start(
        spawner: &Spawner,
        command: WorkerCommand,
        cgroups: &Arc<Cgroups>,
        limits: &OsLimits,
        init: Init,
        timeout: Duration,
        egress: Arc<EgressRules>,
    ) -> Result<Arc<WorkerHandle>, StartError> {
        let instance_slots = init.sandbox.instance_slots;
        let placement = Placement {
            cgroups: Arc::clone(cgroups),
            memory_max: limits.memory_max,
            pids_max: limits.pids_max,
        };
        let spawned = spawner
            .spawn_worker(&command, &init.sandbox, placement)
            .await
            .map_err(StartError::Spawn)?;
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

        static SERIAL: AtomicU64 = AtomicU64::new(1);
        Ok(Arc::new(WorkerHandle {
            serial: SERIAL.fetch_add(1, Ordering::Relaxed),
            process,
            cgroup,
            connection: Connection::open(pid, recv, send, egress),
            started_at: Instant::now(),
            shutting_down: AtomicBool::new(false),
            instance_slots,
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

    /// The instance slots it was started with.
    pub(crate) fn instance_slots(&self) -> u32 {
        self.instance_slots
    }

    /// Time since it became ready.
    pub fn uptime(&self) -> Duration {
        self.started_at.elapsed()
    }

    /// Whether it can take calls: connected, not exited, not shutting down.
    pub fn is_alive(&self) -> bool {
        self.connection.is_connected()
            && self.process.exit_status().is_none()
            && !self.shutting_down.load(Ordering::Relaxed)
    }

    /// A receiver that turns true when the connection ends.
    pub(crate) fn disconnected(&self) -> watch::Receiver<bool> {
        self.connection.disconnected()
    }

    /// Binds the worker to a process id. The assignment is pipelined: it is
    /// sent and not waited for, because the worker handles messages in
    /// order, so a call sent next runs bound. A worker that refuses it
    /// (only possible if it was bound already) exits, which the host sees
    /// as a crash.
    pub(crate) fn assign(&self, assignment: Assignment) -> Result<(), StartError> {
        if !self.is_alive() {
            return Err(StartError::Protocol("the worker is gone".into()));
        }
        // The host applies the tenant's CPU limits: the worker is not
        // trusted with its own cgroup (it cannot even see it).
        // A new cgroup already has the defaults: nothing to write for them.
        if let Some(cgroup) = &self.cgroup
            && assignment.cpu != CpuLimits::default()
            && let Err(e) = cgroup.set_cpu(&assignment.cpu)
        {
            warn_cpu_once(&e);
        }
        if let Some(namespace) = &assignment.namespace {
            self.connection.bind(namespace);
        }
        self.connection.send(ToWorker::Assign(assignment));
        Ok(())
    }

    /// Runs one call. A worker that dies meanwhile fails it with
    /// [`WorkerCallError::Crashed`]; one that does not answer by the call's
    /// timeout plus [`CALL_SLACK`] is killed, and the call fails with
    /// [`WorkerCallError::Unresponsive`].
    pub async fn invoke(
        &self,
        plugin: &str,
        world: World,
        namespace: &Namespace,
        session: &SessionId,
        payload: Vec<u8>,
        limits: &CallLimits,
    ) -> Result<WorkerOutput, WorkerCallError> {
        let reply = self
            .connection
            .call(|id| Invoke {
                id,
                plugin: plugin.to_owned(),
                world,
                namespace: namespace.clone(),
                session: session.clone(),
                payload,
                limits: limits.clone(),
            })
            .map_err(|_| self.crashed())?;
        let Ok(reply) = tokio::time::timeout(limits.timeout + CALL_SLACK, reply).await else {
            tracing::error!(
                pid = self.pid(),
                "a call got no answer by its deadline; killing the worker"
            );
            self.kill();
            return Err(WorkerCallError::Unresponsive {
                pid: self.pid(),
                timeout: limits.timeout,
            });
        };
        match reply {
            Ok(Outcome::Ok {
                output,
                fuel_consumed,
                duration,
            }) => Ok(WorkerOutput {
                output,
                fuel_consumed,
                duration,
            }),
            Ok(Outcome::Err(failure)) => Err(failure.into()),
            Err(_) => Err(self.crashed()),
        }
    }

    fn crashed(&self) -> WorkerCallError {
        let detail = self
            .process
            .exit_status()
            .map_or_else(|| "its connection closed".to_owned(), describe_status);
        WorkerCallError::Crashed {
            pid: self.pid(),
            detail,
        }
    }

    /// Whether it answers a ping within `timeout`.
    pub async fn ping(&self, timeout: Duration) -> bool {
        self.connection.ping(timeout).await
    }

    /// Enqueues a plugin load (or replacement) now; the future says whether
    /// the worker loaded it.
    pub(crate) fn add_plugin(&self, spec: PluginSpec) -> impl Future<Output = Result<(), String>> + Send + 'static {
        self.connection.add_plugin(spec)
    }

    /// Enqueues a plugin removal now; the future resolves once it is done.
    pub(crate) fn remove_plugin(&self, name: &str) -> impl Future<Output = Result<(), String>> + Send + 'static {
        self.connection.remove_plugin(name)
    }

    /// Asks the worker to finish its calls and exit; kills it when it is
    /// still alive `grace` after `since` (the receiver may shorten the grace
    /// while waiting). Returns how it ended.
    pub(crate) async fn shutdown(&self, since: Instant, mut grace: watch::Receiver<Duration>) -> WorkerExit {
        self.shutting_down.store(true, Ordering::Relaxed);
        let started = since;
        self.connection.send(ToWorker::Shutdown { grace: *grace.borrow() });
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
        // Nothing the worker forked outlives it.
        if let Some(cgroup) = &self.cgroup {
            let killed = cgroup.kill_all();
            if killed > 0 {
                tracing::warn!(
                    pid = self.pid(),
                    killed,
                    "killed processes the worker left in its cgroup"
                );
            }
        }
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
}

impl Drop for WorkerHandle {
    fn drop(&mut self) {
        // The process kills and reaps itself on drop; make sure nothing
        // waits on a reply that can no longer come.
        self.connection.close();
    }
}

fn unexpected(wanted: &str, got: Option<Result<FromWorker, ipc::FrameError>>) -> StartError {
    StartError::Protocol(match got {
        None => format!("the worker closed the connection before {wanted}"),
        Some(Err(e)) => format!("waiting for {wanted}: {e}"),
        Some(Ok(other)) => format!("expected {wanted}, got {other:?}"),
    })
}
