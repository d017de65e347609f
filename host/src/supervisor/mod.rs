//! Worker processes: spawning them with a clean slate, watching them, pooling
//! warm ones, keeping every one of them on the current plugin set, and (in
//! [`syncer`]) driving their lives from procmgr.
//!
//! Process caveats this module takes care of: every spawned worker is reaped
//! (its exit is noticed through a pidfd the moment it happens); dropping a
//! worker's handle kills and reaps it; a worker dies with the host even when
//! the host is SIGKILLed (parent-death signal); a worker still alive at the
//! end of its grace period is killed.
//!
//! Files: `handle.rs` (one worker: spawn, handshake, assignment, calls,
//! shutdown), `connection.rs` (its requests and replies), `plugins.rs` (the
//! plugin set every worker follows), `pool.rs` (the warm pool), `syncer.rs`
//! (procmgr's syncer), `spawner.rs` (the spawner thread), `child.rs` (the OS
//! process), `cgroup.rs` (per-worker cgroups).

mod cgroup;
mod child;
mod compiler;
mod connection;
mod dirs;
mod egress;
mod handle;
mod jail_check;
mod plugins;
mod pool;
mod quota;
mod relay;
mod spawner;
mod syncer;

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use self::cgroup::Cgroups;
pub use self::cgroup::cgroup_layout;
pub use self::compiler::{CompileLimits, Compiler};
pub use self::egress::{EGRESS_PER_WORKER, EGRESS_TIMEOUT, EgressRules};
pub use self::handle::{CALL_SLACK, OsLimits, WorkerCallError, WorkerHandle, WorkerOutput};
pub use self::jail_check::check as check_sandbox;
use self::plugins::PluginSet;
pub use self::pool::PoolSource;
use self::pool::WarmPool;
use self::quota::DiskQuotas;
pub use self::quota::{DiskLimits, DiskUsage};
use self::spawner::Spawner;
pub use self::spawner::WorkerCommand;
pub use self::syncer::{AssignedWorker, ExitEvent, PING_TIMEOUT, WorkerSyncer};
use crate::ipc::Init;
/// What a worker is given: the types of the supervisor's public API.
pub use crate::ipc::{Assignment, CpuLimits, PluginSpec};
use crate::sandbox::{Compiled, PluginError, SandboxConfig};
use crate::worker::SandboxMode;
use crate::worker::jail::Report;

/// A hook told about every exit of an assigned worker (for metrics).
pub type ExitHook = Arc<dyn Fn(&ExitEvent) + Send + Sync>;

/// Why a worker could not be started.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The process could not be spawned.
    #[error("spawning the worker: {0}")]
    Spawn(#[source] std::io::Error),
    /// It spoke something other than the protocol.
    #[error("worker protocol: {0}")]
    Protocol(String),
    /// Its sandbox or plugins failed to load, or it refused the assignment.
    #[error("worker init: {0}")]
    Init(String),
    /// It did not get ready in time.
    #[error("the worker was not ready within {0:?}")]
    Timeout(Duration),
    /// It exited while starting.
    #[error("the worker exited while starting: {0}")]
    Exited(String),
}

/// Why a worker process ended; the `reason` label of `bulkhead_worker_exits_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitReason {
    /// It exited cleanly after being asked to.
    Shutdown,
    /// The host killed it (grace period over, eviction, failed start).
    Killed,
    /// The kernel's OOM killer killed it (cgroup memory limit).
    Oom,
    /// It died on its own.
    Crashed,
}

impl ExitReason {
    /// The label value.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Shutdown => "shutdown",
            Self::Killed => "killed",
            Self::Oom => "oom",
            Self::Crashed => "crash",
        }
    }
}

/// How a worker ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerExit {
    pub reason: ExitReason,
    /// The exit status, described (`exit code 0`, `signal 9 (status 137)`).
    pub status: String,
}

/// Everything needed to start workers and compile plugins.
#[derive(Debug, Clone)]
pub struct SupervisorConfig {
    pub command: WorkerCommand,
    pub sandbox: SandboxConfig,
    pub os_limits: OsLimits,
    /// The bounds of each compile child.
    pub compile: CompileLimits,
    /// Idle, ready workers kept for adoption.
    pub warm: usize,
    /// How long a worker may take from spawn to ready.
    pub start_timeout: Duration,
    /// Whether to put workers in cgroups (when the host can).
    pub cgroups: bool,
    /// Whether some tenant has a disk quota (see `quota.rs`).
    pub disk_quotas: bool,
    /// Where each tenant's components may send HTTP requests (`http_allow`).
    pub egress: Arc<EgressRules>,
}

/// Pool slots a worker keeps for the kept instances of `per-process`
/// plugins deployed after it started.
pub const RESIDENT_HEADROOM: u32 = 8;

/// The instance slots of a worker started with `plugins`, whose calls run
/// `calls` at once: one per call, one per `per-process` plugin (its kept
/// instance), [`RESIDENT_HEADROOM`] more, and one for the warm-up.
fn instance_slots(calls: u32, plugins: &plugins::Specs) -> u32 {
    let resident = plugins
        .values()
        .filter(|p| p.mode == crate::sandbox::InstanceMode::PerProcess)
        .count();
    calls
        .saturating_add(u32::try_from(resident).unwrap_or(u32::MAX))
        .saturating_add(RESIDENT_HEADROOM + 1)
}

/// Starts workers (fresh or from the warm pool), keeps every one of them
/// on the current plugin set, and compiles plugins in child processes.
#[derive(Debug)]
pub struct Supervisor {
    config: SupervisorConfig,
    spawner: Spawner,
    cgroups: Arc<Cgroups>,
    compiler: Compiler,
    plugins: PluginSet,
    warmup: OnceLock<PluginSpec>,
    pool: WarmPool,
    sandbox_report: Option<Report>,
    quotas: Option<Arc<DiskQuotas>>,
    /// Namespaces whose data directory is ready.
    prepared: std::sync::Mutex<std::collections::HashSet<crate::names::Namespace>>,
}

/// Why the supervisor could not start.
#[derive(Debug, thiserror::Error)]
pub enum SupervisorError {
    /// Its directories, its compiler or its spawner thread.
    #[error(transparent)]
    Plugin(#[from] PluginError),
    /// `worker.sandbox` is `strict` and a layer cannot be had (named).
    #[error("worker sandbox: {0}")]
    Sandbox(String),
}

impl Supervisor {
    /// Starts the spawner thread and the compiler; no worker runs until
    /// [`Supervisor::start`].
    pub fn new(mut config: SupervisorConfig) -> Result<Arc<Self>, SupervisorError> {
        dirs::absolutize(&mut config.sandbox)?;
        let cgroups = Arc::new(if config.cgroups {
            Cgroups::detect()
        } else {
            Cgroups::disabled()
        });
        cgroups.remove_stale();
        let compiler = Compiler::new(
            config.command.program.clone(),
            config.sandbox.clone(),
            config.compile.clone(),
            Arc::clone(&cgroups),
        )?;
        dirs::share(&config.sandbox, config.command.effective_identity())?;
        let sandbox_report = match jail_check::check(&config.command, &config.sandbox) {
            Ok(report) => {
                tracing::info!("worker sandbox ({}): {}", report.mode, report.summary());
                let mounts = report.layer(crate::worker::jail::Layer::Namespaces);
                if !mounts.is_some_and(crate::worker::jail::LayerState::is_on)
                    && config.sandbox.cache_dir.starts_with(&config.sandbox.data_dir)
                {
                    tracing::warn!(
                        "without the mount namespace the compile cache inside data.dir is open to a worker \
                         of level none that an escaped guest controls; set data.cache_dir and \
                         data.plugins_dir outside data.dir"
                    );
                }
                Some(report)
            }
            Err(e) if config.command.sandbox == SandboxMode::Strict => return Err(SupervisorError::Sandbox(e)),
            Err(e) => {
                tracing::error!("worker sandbox: the probe could not enter it: {e}");
                None
            }
        };
        let quotas = if config.disk_quotas {
            match DiskQuotas::start(&config.sandbox.data_dir, config.command.effective_identity()) {
                Ok(quotas) => Some(Arc::new(quotas)),
                Err(e) if config.command.sandbox == SandboxMode::Strict => {
                    return Err(SupervisorError::Sandbox(format!("worker.sandbox is strict and {e}")));
                }
                Err(e) => {
                    tracing::error!("limits.disk is set but {e}: tenants' /data has no quota");
                    None
                }
            }
        } else {
            None
        };
        Ok(Arc::new(Self {
            spawner: Spawner::start()
                .map_err(|e| PluginError::Compiler(format!("starting the spawner thread: {e}")))?,
            cgroups,
            compiler,
            plugins: PluginSet::new(Vec::new()),
            warmup: OnceLock::new(),
            pool: WarmPool::new(config.warm),
            config,
            sandbox_report,
            quotas,
            prepared: std::sync::Mutex::default(),
        }))
    }

    /// Makes `namespace`'s data directory ready before any worker of it is
    /// assigned or called (its first call pays for it): created and handed
    /// to the workers' uid, or, with a disk quota, its own filesystem
    /// mounted there.
    pub async fn prepare_namespace(
        &self,
        namespace: &crate::names::Namespace,
        disk: Option<DiskLimits>,
    ) -> Result<(), String> {
        if self
            .prepared
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .contains(namespace)
        {
            return Ok(());
        }
        match (&self.quotas, disk) {
            (Some(quotas), Some(limits)) => {
                let (quotas, ns) = (Arc::clone(quotas), namespace.clone());
                tokio::task::spawn_blocking(move || quotas.ensure(&ns, limits).map_err(|e| e.to_string()))
                    .await
                    .map_err(|e| e.to_string())??;
            }
            _ => dirs::namespace_dir(
                &self.config.sandbox.data_dir,
                namespace,
                self.config.command.effective_identity(),
            )
            .map_err(|e| e.to_string())?,
        }
        self.prepared
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(namespace.clone());
        Ok(())
    }

    /// Usage of each namespace's quota filesystem.
    pub fn disk_usage(&self) -> Vec<(crate::names::Namespace, DiskUsage)> {
        self.quotas.as_ref().map_or_else(Vec::new, |q| q.usage())
    }

    /// What the workers' sandbox consists of on this machine, as found at
    /// start (`None` if the probe could not tell).
    pub fn sandbox_report(&self) -> Option<&Report> {
        self.sandbox_report.as_ref()
    }

    /// Serves `plugins` (compiled with [`Supervisor::compile`]) and starts
    /// filling the warm pool; `warmup` is the host's own plugin each new
    /// worker instantiates once (see `ipc::Init`).
    pub fn start(self: &Arc<Self>, plugins: Vec<PluginSpec>, warmup: Option<PluginSpec>) {
        self.plugins.replace(plugins);
        if let Some(warmup) = warmup {
            let _ = self.warmup.set(warmup);
        }
        WarmPool::start_refilling(self);
    }

    /// Validates and compiles a plugin in a limited child process (or finds
    /// it in the compile cache); runs none of its code.
    pub async fn compile(&self, bytes: &[u8]) -> Result<Compiled, PluginError> {
        self.compiler.compile(bytes).await
    }

    /// Spawns a worker with the current plugin set and waits until it is
    /// ready (not assigned); from then on it follows every plugin change.
    pub(crate) async fn spawn_worker(&self) -> Result<Arc<WorkerHandle>, StartError> {
        let loaded = self.plugins.snapshot();
        let mut sandbox = self.config.sandbox.clone();
        sandbox.instance_slots = instance_slots(sandbox.instance_slots, &loaded);
        let init = Init {
            sandbox,
            plugins: loaded.values().cloned().collect(),
            warmup: self.warmup.get().cloned(),
        };
        let worker = WorkerHandle::start(
            &self.spawner,
            self.config.command.clone(),
            &self.cgroups,
            &self.config.os_limits,
            init,
            self.config.start_timeout,
            Arc::clone(&self.config.egress),
        )
        .await?;
        self.plugins.register(&worker, &loaded);
        Ok(worker)
    }

    /// A ready worker: adopted from the pool when one is idle, else spawned.
    pub(crate) async fn acquire(&self) -> Result<(Arc<WorkerHandle>, PoolSource), StartError> {
        let needed = self.slots_needed();
        if let Some(worker) = self.pool.take(|w| w.instance_slots() >= needed) {
            return Ok((worker, PoolSource::Pool));
        }
        Ok((self.spawn_worker().await?, PoolSource::Spawn))
    }

    /// The instance slots a worker started now gets. Pool workers with
    /// fewer (started before `per-process` plugins were deployed) are
    /// replaced rather than handed out short of room.
    fn slots_needed(&self) -> u32 {
        instance_slots(self.config.sandbox.instance_slots, &self.plugins.snapshot())
    }

    /// Idle workers in the pool now.
    pub fn idle_workers(&self) -> usize {
        self.pool.len()
    }

    /// The pids of the idle workers in the pool now.
    pub fn idle_pids(&self) -> Vec<u32> {
        self.pool.pids()
    }

    /// Waits until the pool holds its target of idle workers (or `timeout`).
    pub async fn wait_pool_filled(&self, timeout: Duration) -> bool {
        self.pool.wait_filled(timeout).await
    }

    /// Whether a plugin of that name exists.
    pub fn has_plugin(&self, name: &str) -> bool {
        self.plugins.contains(name)
    }

    /// The world of the plugin of that name, if there is one.
    pub fn plugin_world(&self, name: &str) -> Option<crate::sandbox::World> {
        self.plugins.world(name)
    }

    /// Every plugin, by name.
    pub fn plugins(&self) -> Vec<PluginSpec> {
        self.plugins.list()
    }

    /// Adds (or atomically replaces) a plugin in every worker, idle and
    /// assigned, and in every worker started from now on. Returns once each
    /// live worker has loaded it; one that cannot (or does not answer in
    /// time) is killed, and procmgr restarts it with the new set. Calls in
    /// flight finish on the version they started with.
    pub async fn install(&self, spec: PluginSpec) {
        self.plugins.set(spec).await;
        // Idle workers too short of instance slots for the new set are replaced.
        self.pool.nudge();
    }

    /// Removes a plugin from every worker; `false` if there was none of that name.
    pub async fn remove(&self, name: &str) -> bool {
        self.plugins.remove(name).await
    }

    /// Stops refilling the pool and kills its idle workers.
    pub async fn shutdown(&self) {
        self.pool.close().await;
        self.cgroups.remove_host_dirs();
        if let Some(quotas) = &self.quotas {
            quotas.unmount_all();
        }
    }
}
