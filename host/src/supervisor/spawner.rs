//! Spawns worker processes from one dedicated, long-lived thread.
//!
//! A worker asks the kernel for SIGKILL when its parent dies
//! (`PR_SET_PDEATHSIG`), and "parent" there means the *thread* that spawned
//! it: spawning from a tokio blocking-pool thread, which exits when idle,
//! would kill healthy workers. So every spawn happens on this thread, which
//! lives until the host drops its [`Spawner`].
//!
//! The command uses no `pre_exec` hook, so std spawns with `posix_spawn`
//! (vfork) instead of `fork`: a large host does not pay for copying its page
//! tables. The worker sets its own parent-death signal and rlimits first
//! thing. Its environment is empty; its standard input is its end of the
//! socketpair (the only descriptor it inherits from the host), its stdout is
//! /dev/null and its stderr a pipe whose lines the host logs.
//!
//! The thread also creates the worker's cgroup and, with cgroup v1, spawns
//! from inside it, so the worker is born there and never has to be moved;
//! none of that file-system work runs on the async threads.

use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, ChildStderr, Command, Stdio};
use std::sync::{Arc, mpsc};

use tokio::sync::oneshot;

use super::cgroup::{Cgroups, WorkerCgroup};
use crate::sandbox::SandboxConfig;
use crate::worker::jail::Layer;
use crate::worker::{JailSpec, SandboxMode};

/// How to start a worker.
#[derive(Debug, Clone)]
pub struct WorkerCommand {
    /// The `bulkhead` executable (the host's own, normally).
    pub program: PathBuf,
    /// The worker's log filter.
    pub log: String,
    /// `worker.sandbox`.
    pub sandbox: SandboxMode,
    /// The uid and gid workers run as when the host runs as root.
    pub identity: (u32, u32),
    /// RLIMIT_NOFILE the worker sets on itself.
    pub open_files: u64,
    /// RLIMIT_FSIZE the worker sets on itself.
    pub file_size: u64,
}

impl WorkerCommand {
    /// The command for `program` under `config`'s `[worker]` settings.
    pub fn from_config(program: PathBuf, config: &crate::config::Config) -> Self {
        Self {
            program,
            log: "info".into(),
            sandbox: config.worker.sandbox,
            identity: (config.worker.uid, config.worker.gid),
            open_files: u64::from(config.worker.open_files),
            file_size: config.worker.max_file_size,
        }
    }

    /// The uid and gid workers will actually run as: `identity` when the
    /// sandbox is on and the host is root, else the host's own (`None`).
    pub fn effective_identity(&self) -> Option<(u32, u32)> {
        (self.sandbox != SandboxMode::Off && rustix::process::geteuid().is_root()).then_some(self.identity)
    }

    /// The jail of a worker using `sandbox`'s directories.
    pub fn jail(&self, sandbox: &SandboxConfig) -> JailSpec {
        JailSpec {
            mode: self.sandbox,
            cache_dir: sandbox.cache_dir.clone(),
            data_dir: sandbox.data_dir.clone(),
            identity: self.effective_identity(),
            open_files: self.open_files,
            file_size: Some(self.file_size),
            layers: Layer::ALL.to_vec(),
        }
    }
}

/// A just-spawned worker: not yet reaped, not yet spoken to.
#[derive(Debug)]
pub(crate) struct Spawned {
    pub(crate) child: Child,
    pub(crate) socket: UnixStream,
    pub(crate) stderr: ChildStderr,
    pub(crate) cgroup: InCgroup,
}

/// Where a just-spawned worker stands with its cgroup.
#[derive(Debug)]
pub(crate) enum InCgroup {
    /// The host could make none: the worker runs without one.
    None,
    /// Born in it (spawned from inside, with cgroup v1).
    Born(WorkerCgroup),
    /// Spawned outside it: it must be moved in.
    ToMove(WorkerCgroup),
}

/// The cgroup a worker gets: created by the spawner thread.
#[derive(Debug)]
pub(crate) struct Placement {
    pub(crate) cgroups: Arc<Cgroups>,
    pub(crate) memory_max: u64,
    pub(crate) pids_max: u64,
}

struct Job {
    command: Command,
    placement: Placement,
    reply: oneshot::Sender<io::Result<(Child, InCgroup)>>,
}

/// The handle to the spawner thread.
#[derive(Debug, Clone)]
pub(crate) struct Spawner {
    jobs: mpsc::Sender<Job>,
}

impl Spawner {
    /// Starts the spawner thread.
    pub(crate) fn start() -> io::Result<Self> {
        let (jobs, rx) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("bulkhead-spawner".into())
            .spawn(move || {
                for mut job in rx {
                    let Placement {
                        cgroups,
                        memory_max,
                        pids_max,
                    } = &job.placement;
                    let (spawned, cgroup) = match cgroups.create(*memory_max, *pids_max) {
                        Some(cgroup) => match cgroup.spawn_inside(|| job.command.spawn()) {
                            (spawned, true) => (spawned, InCgroup::Born(cgroup)),
                            (spawned, false) => (spawned, InCgroup::ToMove(cgroup)),
                        },
                        None => (job.command.spawn(), InCgroup::None),
                    };
                    let program = job.command.get_program().to_string_lossy().into_owned();
                    let spawned = spawned.map_err(|e| io::Error::new(e.kind(), format!("spawning {program}: {e}")));
                    let _ = job.reply.send(spawned.map(|child| (child, cgroup)));
                }
            })?;
        Ok(Self { jobs })
    }

    /// Spawns `command` from the spawner thread, in a new cgroup when the
    /// host can make one. The command must not use `pre_exec` (see the
    /// module doc).
    pub(crate) async fn spawn(&self, command: Command, placement: Placement) -> io::Result<(Child, InCgroup)> {
        let (reply, rx) = oneshot::channel();
        self.jobs
            .send(Job {
                command,
                placement,
                reply,
            })
            .map_err(|_| io::Error::other("the spawner thread is gone"))?;
        rx.await.map_err(|_| io::Error::other("the spawner thread is gone"))?
    }

    /// Spawns one worker: its end of a socketpair as standard input, its
    /// stderr piped to the host.
    pub(crate) async fn spawn_worker(
        &self,
        command: &WorkerCommand,
        sandbox: &SandboxConfig,
        placement: Placement,
    ) -> io::Result<Spawned> {
        let (host_end, worker_end) = UnixStream::pair()?;
        let mut cmd = Command::new(&command.program);
        cmd.arg("worker")
            .arg("--parent")
            .arg(std::process::id().to_string())
            .args(command.jail(sandbox).args())
            .arg("--log")
            .arg(&command.log)
            .env_clear()
            .stdin(Stdio::from(OwnedFd::from(worker_end)))
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .process_group(0);
        let (mut child, cgroup) = self.spawn(cmd, placement).await?;
        let stderr = child
            .stderr
            .take()
            .ok_or_else(|| io::Error::other("worker stderr was not piped"))?;
        Ok(Spawned {
            child,
            socket: host_end,
            stderr,
            cgroup,
        })
    }
}
