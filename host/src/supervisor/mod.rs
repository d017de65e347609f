//! Worker processes: spawning them with a clean slate, watching them, pooling
//! warm ones, and (in [`syncer`]) driving their lives from procmgr.
//!
//! Process caveats this module takes care of: every spawned worker is reaped
//! (its exit is noticed through a pidfd the moment it happens); dropping a
//! worker's handle kills and reaps it; a worker dies with the host even when
//! the host is SIGKILLed (parent-death signal); a worker still alive at the
//! end of its grace period is killed.

mod cgroup;
mod child;
mod pool;
mod spawner;
mod syncer;
mod worker;

use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use self::cgroup::Cgroups;
pub use self::pool::PoolSource;
use self::pool::WarmPool;
use self::spawner::Spawner;
pub use self::spawner::WorkerCommand;
pub use self::syncer::{Assigned, ExitEvent, PING_TIMEOUT, WorkerSyncer};
pub use self::worker::{OsLimits, Worker, WorkerCallError, WorkerOutput};
use crate::ipc::{Init, PluginSpec};
use crate::sandbox::SandboxConfig;

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

/// Everything needed to start workers.
#[derive(Debug, Clone)]
pub struct SupervisorConfig {
    pub command: WorkerCommand,
    pub sandbox: SandboxConfig,
    pub os_limits: OsLimits,
    /// Idle, ready workers kept for adoption.
    pub warm: usize,
    /// How long a worker may take from spawn to ready.
    pub start_timeout: Duration,
    /// Whether to put workers in cgroups (when the host can).
    pub cgroups: bool,
}

/// Starts workers (fresh or from the warm pool) with the current plugin set.
#[derive(Debug)]
pub struct Supervisor {
    config: SupervisorConfig,
    spawner: Spawner,
    cgroups: Arc<Cgroups>,
    plugins: RwLock<Vec<PluginSpec>>,
    /// Held shared while a worker is started, taken from the pool or
    /// assigned, and exclusively while the plugin set changes: a change then
    /// reaches every worker, none can slip between the template and the
    /// live set.
    plugin_set: tokio::sync::RwLock<()>,
    pool: WarmPool,
}

impl Supervisor {
    /// Starts the spawner thread and the warm pool.
    pub fn new(config: SupervisorConfig, plugins: Vec<PluginSpec>) -> std::io::Result<Arc<Self>> {
        let cgroups = Arc::new(if config.cgroups {
            Cgroups::detect()
        } else {
            Cgroups::disabled()
        });
        cgroups.remove_stale();
        let supervisor = Arc::new(Self {
            spawner: Spawner::start()?,
            cgroups,
            plugins: RwLock::new(plugins),
            plugin_set: tokio::sync::RwLock::new(()),
            pool: WarmPool::new(config.warm),
            config,
        });
        WarmPool::start_refilling(&supervisor);
        Ok(supervisor)
    }

    /// The configuration.
    pub fn config(&self) -> &SupervisorConfig {
        &self.config
    }

    fn init(&self) -> Init {
        Init {
            sandbox: self.config.sandbox.clone(),
            plugins: self.plugins.read().unwrap_or_else(PoisonError::into_inner).clone(),
        }
    }

    /// Spawns a worker and waits until it is ready (not assigned).
    pub async fn spawn_worker(&self) -> Result<Arc<Worker>, StartError> {
        Worker::start(
            &self.spawner,
            self.config.command.clone(),
            &self.cgroups,
            &self.config.os_limits,
            self.init(),
            self.config.start_timeout,
        )
        .await
    }

    /// A ready worker: adopted from the pool when one is idle, else spawned.
    pub async fn acquire(&self) -> Result<(Arc<Worker>, PoolSource), StartError> {
        if let Some(worker) = self.pool.take() {
            return Ok((worker, PoolSource::Pool));
        }
        Ok((self.spawn_worker().await?, PoolSource::Spawn))
    }

    /// Idle workers in the pool now.
    pub fn idle_workers(&self) -> usize {
        self.pool.len()
    }

    /// Waits until the pool holds its target of idle workers (or `timeout`).
    pub async fn wait_pool_filled(&self, timeout: Duration) -> bool {
        self.pool.wait_filled(timeout).await
    }

    /// Holds the plugin set steady while a worker is started or assigned.
    pub async fn plugin_set_shared(&self) -> tokio::sync::RwLockReadGuard<'_, ()> {
        self.plugin_set.read().await
    }

    /// Holds off every start and assignment while the plugin set changes.
    pub async fn plugin_set_exclusive(&self) -> tokio::sync::RwLockWriteGuard<'_, ()> {
        self.plugin_set.write().await
    }

    /// Records a plugin added or replaced: new workers load it, and the
    /// pool's idle workers get it now. Assigned workers are updated by the
    /// caller, who knows them, while holding [`Supervisor::plugin_set_exclusive`].
    pub async fn set_plugin(&self, spec: PluginSpec) {
        {
            let mut plugins = self.plugins.write().unwrap_or_else(PoisonError::into_inner);
            plugins.retain(|p| p.name != spec.name);
            plugins.push(spec.clone());
        }
        self.pool
            .update_idle(|worker| {
                let spec = spec.clone();
                async move { worker.add_plugin(spec).await.is_ok() }
            })
            .await;
    }

    /// Records a plugin removed; the pool's idle workers drop it now.
    pub async fn remove_plugin(&self, name: &str) {
        self.plugins
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(|p| p.name != name);
        self.pool
            .update_idle(|worker| {
                let name = name.to_owned();
                async move {
                    worker.remove_plugin(&name).await;
                    true
                }
            })
            .await;
    }

    /// Stops refilling the pool and kills its idle workers.
    pub async fn shutdown(&self) {
        self.pool.close().await;
        self.cgroups.remove_host_dirs();
    }
}
