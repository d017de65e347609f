//! The worker's OS sandbox: what stands between an escaped guest (native
//! code running in the worker) and the host, the other tenants and the rest
//! of the machine. wasmtime is the first wall; these are the next ones.
//!
//! One file per mechanism, applied by [`Jail::enter`] in this order, each
//! before guest code can run and each needing what the one before left:
//!
//! 1. `process`: die with the host (`PR_SET_PDEATHSIG`, refusing to run if
//!    it is gone already).
//! 2. `fds`: close every inherited descriptor but standard input (the IPC
//!    socket), output and error (`close_range`).
//! 3. `rlimits`: no core dumps, `RLIMIT_NOFILE`, `RLIMIT_FSIZE` (with
//!    `SIGXFSZ` ignored, so a write past it fails with `EFBIG`).
//! 4. `namespaces` (host is root): new mount, network, IPC and UTS
//!    namespaces; the root becomes an empty read-only tmpfs holding only the
//!    compile cache (read-only) and the data root, at their host paths, so
//!    nothing else of the host's tree exists; the network has only a loopback
//!    interface that is down.
//! 5. `identity` (host is root): drop to the configured unprivileged
//!    uid/gid, with no supplementary groups and so no capabilities.
//! 6. `process` again: not dumpable (no `ptrace` by the same uid, no
//!    `/proc/PID/mem`), `no_new_privs` (no exec gains privileges).
//! 7. `landlock`: reads only in the compile cache, writes only in the data
//!    root, no TCP bind or connect, no signals and no abstract UNIX sockets
//!    outside the worker's own domain. At assignment to a namespace a second
//!    layer narrows writes to that namespace's directory
//!    ([`Jail::confine_to`]).
//! 8. `seccomp`: an allow-list of system calls on every thread, killing the
//!    whole process on anything else.
//!
//! Steps 1-3 and 6 always run (they are the worker's hygiene); 4, 5, 7 and 8
//! are the sandbox proper, governed by `worker.sandbox`: `strict` refuses to
//! start a worker when one of them cannot be applied, `best-effort` applies
//! what the machine allows, `off` none of them.
//!
//! The jail runs first thing in `bulkhead worker`, while the process has a
//! single thread: identity and Landlock apply to the calling thread only,
//! and seccomp is synchronised to all threads anyway. The worker's log
//! writer is synchronous for this reason (no writer thread exists to be
//! left outside a layer). The same code path runs in `bulkhead sandbox
//! probe`, which stands in for an escaped guest in the tests.

mod fds;
mod identity;
mod landlock;
mod namespaces;
mod process;
mod rlimits;
mod seccomp;

use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

pub use self::landlock::landlock_abi;

/// Work to run on another thread of the process (see [`Jail::confine_to`]).
pub type Job = Box<dyn FnOnce() + Send>;

/// `worker.sandbox`: how much of the OS sandbox a worker must have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum SandboxMode {
    /// Every layer, or the worker does not start (naming the missing one).
    Strict,
    /// Every layer the machine allows; the host logs which, once.
    #[default]
    BestEffort,
    /// None of the layers (the hygiene steps still run).
    Off,
}

impl SandboxMode {
    /// Its name in the config.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Strict => "strict",
            Self::BestEffort => "best-effort",
            Self::Off => "off",
        }
    }
}

impl fmt::Display for SandboxMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One layer of the sandbox proper.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Layer {
    /// Mount, network, IPC and UTS namespaces, with a root of only the cache
    /// and the data root.
    Namespaces,
    /// An unprivileged uid/gid.
    Identity,
    /// Landlock file, network and scope rules.
    Landlock,
    /// The seccomp allow-list.
    Seccomp,
}

impl Layer {
    /// Every layer, in the order they are applied.
    pub const ALL: [Layer; 4] = [Layer::Namespaces, Layer::Identity, Layer::Landlock, Layer::Seccomp];

    /// Its name in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Namespaces => "namespaces",
            Self::Identity => "identity",
            Self::Landlock => "landlock",
            Self::Seccomp => "seccomp",
        }
    }
}

impl fmt::Display for Layer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether one layer is in place, and what it is.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case", tag = "state", content = "detail")]
pub enum LayerState {
    /// Applied; what it consists of.
    On(String),
    /// Not applied because the machine cannot (the reason).
    Unavailable(String),
    /// Not applied because `worker.sandbox` is `off`, or (identity) the
    /// host is not root and so has no other uid to give.
    Off(String),
}

impl LayerState {
    /// Whether the layer is applied.
    pub fn is_on(&self) -> bool {
        matches!(self, Self::On(_))
    }
}

/// What [`Jail::enter`] put in place.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Report {
    pub mode: SandboxMode,
    pub layers: Vec<(Layer, LayerState)>,
}

impl Report {
    /// The state of `layer`.
    pub fn layer(&self, layer: Layer) -> Option<&LayerState> {
        self.layers.iter().find(|(l, _)| *l == layer).map(|(_, s)| s)
    }

    /// `{"namespaces": {"state": "on", "detail": "..."}, ...}`, as the
    /// health report and `sandbox check --json` show it.
    pub fn layers_json(&self) -> serde_json::Value {
        self.layers
            .iter()
            .map(|(layer, state)| {
                (
                    layer.as_str().to_owned(),
                    serde_json::to_value(state).unwrap_or_default(),
                )
            })
            .collect::<serde_json::Map<_, _>>()
            .into()
    }

    /// One line: `namespaces on, identity on, landlock on, seccomp on`.
    pub fn summary(&self) -> String {
        let parts: Vec<String> = self
            .layers
            .iter()
            .map(|(layer, state)| match state {
                LayerState::On(_) => format!("{layer} on"),
                LayerState::Unavailable(why) => format!("{layer} unavailable ({why})"),
                LayerState::Off(why) => format!("{layer} off ({why})"),
            })
            .collect();
        parts.join(", ")
    }
}

/// Why a worker could not be jailed.
#[derive(Debug, thiserror::Error)]
pub enum JailError {
    /// A hygiene step failed (these are never optional).
    #[error("{what}: {source}")]
    Hygiene {
        what: &'static str,
        #[source]
        source: std::io::Error,
    },
    /// The host that spawned the worker is gone.
    #[error("parent is {actual:?}, not the host {expected}: the host is gone")]
    Orphaned { expected: u32, actual: Option<i32> },
    /// `strict`, and a layer cannot be applied.
    #[error("worker.sandbox is strict and the {layer} layer is unavailable: {reason}")]
    Missing { layer: Layer, reason: String },
    /// A layer failed half-way, leaving the process in no state to go on.
    #[error("the {layer} layer failed: {reason}")]
    Broken { layer: Layer, reason: String },
    /// Assignment-time confinement failed.
    #[error("cannot confine the worker to {}: {reason}", dir.display())]
    Confine { dir: PathBuf, reason: String },
}

/// How a layer went: applied, not possible here, or failed midway.
pub(crate) enum Outcome {
    On(String),
    /// Applied in part (what the kernel has of it), which `strict` refuses.
    Partial(String),
    Unavailable(String),
    Broken(String),
}

/// What the host tells a worker about its sandbox (on its command line).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JailSpec {
    pub mode: SandboxMode,
    /// The compile cache root: the worker may read (and map) files there.
    pub cache_dir: PathBuf,
    /// The data root: namespaces' directories are inside it.
    pub data_dir: PathBuf,
    /// The uid and gid to become when started as root.
    pub identity: Option<(u32, u32)>,
    /// RLIMIT_NOFILE.
    pub open_files: u64,
    /// RLIMIT_FSIZE: the largest file the worker may write.
    pub file_size: Option<u64>,
    /// The layers to apply (a worker gets [`Layer::ALL`]; the probe may ask
    /// for one alone, to show what that layer stops by itself).
    pub layers: Vec<Layer>,
}

impl JailSpec {
    /// The worker's command-line arguments for this spec (parsed back by
    /// [`crate::worker::WorkerArgs`]).
    pub fn args(&self) -> Vec<OsString> {
        let mut args: Vec<OsString> = vec![
            "--sandbox".into(),
            self.mode.as_str().into(),
            "--cache-dir".into(),
            self.cache_dir.clone().into(),
            "--data-dir".into(),
            self.data_dir.clone().into(),
            "--open-files".into(),
            self.open_files.to_string().into(),
        ];
        if let Some((uid, gid)) = self.identity {
            args.extend([
                "--uid".into(),
                uid.to_string().into(),
                "--gid".into(),
                gid.to_string().into(),
            ]);
        }
        if let Some(size) = self.file_size {
            args.extend(["--file-size".into(), size.to_string().into()]);
        }
        args
    }
}

/// Blocking-pool threads alive in this process (counted by the worker's
/// runtime hooks): a thread that exists before [`Jail::confine_to`] would
/// stay outside the namespace's Landlock layer, so confinement refuses to
/// proceed while one does.
pub static BLOCKING_THREADS: AtomicUsize = AtomicUsize::new(0);

/// The hygiene steps alone (1-3 and 6), for the compile child: it runs no
/// guest code, only the compiler over an upload, under its own limits.
pub fn hygiene(parent: u32, open_files: u64) -> Result<(), JailError> {
    process::die_with_parent(parent)?;
    fds::close_inherited()?;
    rlimits::apply(open_files, None)?;
    process::lock_down()
}

/// A jailed process: what was applied, and the assignment-time step.
#[derive(Debug)]
pub struct Jail {
    spec: JailSpec,
    report: Report,
    /// Whether Landlock is on, wholly or in part: the assignment layer is
    /// then applied too (its file rules exist from ABI 1).
    landlock: bool,
}

impl Jail {
    /// Applies every step in order (see the module doc). `parent` is the
    /// host's pid (`None` for the probe, which has no host).
    pub fn enter(spec: JailSpec, parent: Option<u32>) -> Result<Self, JailError> {
        if let Some(parent) = parent {
            process::die_with_parent(parent)?;
        }
        fds::close_inherited()?;
        rlimits::apply(spec.open_files, spec.file_size)?;
        let mut layers = Vec::new();
        let mut partial = Vec::new();
        let root = rustix::process::geteuid().is_root();
        let mut step = |layer: Layer, run: &mut dyn FnMut() -> Outcome| -> Result<(), JailError> {
            let state = if spec.mode == SandboxMode::Off {
                LayerState::Off("worker.sandbox is off".into())
            } else if !spec.layers.contains(&layer) {
                LayerState::Off("not asked for".into())
            } else {
                match run() {
                    Outcome::On(detail) => LayerState::On(detail),
                    Outcome::Broken(reason) => return Err(JailError::Broken { layer, reason }),
                    Outcome::Unavailable(reason) | Outcome::Partial(reason) if spec.mode == SandboxMode::Strict => {
                        return Err(JailError::Missing { layer, reason });
                    }
                    Outcome::Partial(reason) => {
                        partial.push(layer);
                        LayerState::Unavailable(reason)
                    }
                    Outcome::Unavailable(reason) if layer == Layer::Identity && !root => LayerState::Off(reason),
                    Outcome::Unavailable(reason) => LayerState::Unavailable(reason),
                }
            };
            layers.push((layer, state));
            Ok(())
        };
        step(Layer::Namespaces, &mut || {
            namespaces::enter(&spec.cache_dir, &spec.data_dir)
        })?;
        step(Layer::Identity, &mut || identity::become_user(spec.identity))?;
        process::lock_down()?;
        step(Layer::Landlock, &mut || {
            landlock::restrict_pool(&spec.cache_dir, &spec.data_dir)
        })?;
        step(Layer::Seccomp, &mut seccomp::install)?;
        let report = Report {
            mode: spec.mode,
            layers,
        };
        let landlock =
            partial.contains(&Layer::Landlock) || report.layer(Layer::Landlock).is_some_and(LayerState::is_on);
        Ok(Self { report, spec, landlock })
    }

    /// What was applied.
    pub fn report(&self) -> &Report {
        &self.report
    }

    /// Narrows file access to `dir` (a namespace's directory inside the
    /// data root) for the rest of the process's life: the Landlock layer of
    /// an assignment. Nothing to do when Landlock is not on.
    ///
    /// Landlock restricts one thread at a time (this kernel has no
    /// all-threads flag), so every thread of the process must take the
    /// layer: the caller, and each of `others`, a way to run a job on one of
    /// the process's other threads (the worker's epoch ticker). Any other
    /// thread would stay outside, where an escaped guest could take it
    /// over; the worker has none (its log writer is synchronous; the only
    /// threads it could gain are the runtime's blocking pool, counted here,
    /// whose later threads inherit the layer from the caller).
    pub fn confine_to(&self, dir: &Path, others: &[&dyn Fn(Job) -> Result<(), String>]) -> Result<(), JailError> {
        if !self.landlock {
            return Ok(());
        }
        let fail = |reason: String| JailError::Confine {
            dir: dir.to_owned(),
            reason,
        };
        let blocking = BLOCKING_THREADS.load(Ordering::SeqCst);
        if blocking != 0 {
            return Err(fail(format!(
                "{blocking} blocking thread(s) exist and would stay outside the new layer"
            )));
        }
        let ruleset = landlock::namespace_ruleset(&self.spec.cache_dir, dir).map_err(fail)?;
        for run in others {
            let theirs = ruleset.try_clone().map_err(|e| fail(e.to_string()))?;
            let (done, wait) = std::sync::mpsc::channel();
            run(Box::new(move || {
                let _ = done.send(landlock::restrict(theirs));
            }))
            .map_err(fail)?;
            wait.recv_timeout(std::time::Duration::from_secs(10))
                .map_err(|_| fail("another thread did not take the layer within 10 s".into()))?
                .map_err(fail)?;
        }
        landlock::restrict(ruleset).map_err(fail)
    }
}
