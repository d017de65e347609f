//! The service layer: the one entry point the HTTP API (and the benches and
//! tests) call.
//!
//! [`Service::invoke`] resolves the tenant's level and limits, finds (or
//! creates) the process, passes its bulkhead and runs the call on its
//! worker. [`Service::deploy`] and [`Service::remove`] compile once in the
//! host, persist, and reach every worker; calls in flight finish on the
//! version they started with.
//!
//! Files: `error.rs` (the failures), `store.rs` (deployed plugins on disk),
//! `build.rs` (a service from a resolved [`Config`](crate::config::Config)).

mod build;
mod error;
mod store;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub use self::build::{BuildError, Running, isolation_settings, sandbox_config, start};
pub use self::error::{DeployError, InvokeError, InvokeFailure, RemoveError};
pub use self::store::{PluginStore, StoreError, Stored};
use crate::compartment::IsolationLevel;
use crate::ipc::PluginSpec;
use crate::isolation::{Acquired, IsolationError, IsolationKey, IsolationManager, IsolationSettings, ProcessInfo};
use crate::names::{Namespace, PluginName, SessionId};
use crate::procmgr::{Health, ProcessId, ProcessManagerOptions, ProcmgrError, StatusWatch};
use crate::sandbox::{CallFailure, Compiled, HostFailure, HttpRequest, HttpResponse, InstanceMode, PluginError, World};
use crate::supervisor::WorkerCallError;
use crate::supervisor::{AssignedWorker, ExitHook, PoolSource, Supervisor, SupervisorConfig, WorkerSyncer};

/// A successful call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvokeOutput {
    pub output: Vec<u8>,
    pub fuel_consumed: u64,
    pub process_id: ProcessId,
    pub level: IsolationLevel,
    /// Set when the call waited for its process to be created: where the
    /// worker came from and how long getting it ready took.
    pub cold_start: Option<(PoolSource, Duration)>,
    /// Wall-clock time of the whole call, creation included.
    pub duration: Duration,
}

/// A deployed plugin, as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginInfo {
    pub name: String,
    pub mode: InstanceMode,
    pub sha256: [u8; 32],
    pub size: usize,
    /// `bulkhead:plugin` or `wasi:http/proxy`.
    pub world: World,
}

/// A plugin just deployed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deployed {
    pub name: PluginName,
    pub mode: InstanceMode,
    pub compiled: Compiled,
}

/// One process, as listed: the isolation manager's view of it.
pub type Process = ProcessInfo<AssignedWorker>;

impl Process {
    /// The pid of its worker while one lives (also while it drains its
    /// calls during a termination).
    pub fn live_pid(&self) -> Option<u32> {
        let handle = self
            .status
            .handle
            .as_ref()
            .filter(|h| crate::procmgr::Managed::is_live(*h))?;
        Some(handle.worker().pid())
    }
}

/// Everything a service is built from.
#[derive(Clone)]
pub struct ServiceSettings {
    pub isolation: IsolationSettings,
    pub supervisor: SupervisorConfig,
    pub procmgr: ProcessManagerOptions,
    /// Plugins served from the start (built-in and configured): name,
    /// component bytes, instance mode. A deployed plugin of the same name
    /// wins.
    pub plugins: Vec<(String, Vec<u8>, InstanceMode)>,
    /// Where deployed plugins are kept across restarts.
    pub plugins_dir: PathBuf,
    /// Told of every exit of an assigned worker.
    pub on_exit: Option<ExitHook>,
}

impl std::fmt::Debug for ServiceSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceSettings")
            .field("isolation", &self.isolation)
            .field("supervisor", &self.supervisor)
            .field("procmgr", &self.procmgr)
            .field("plugins_dir", &self.plugins_dir)
            .finish_non_exhaustive()
    }
}

/// Why a service could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A configured plugin is invalid or could not be compiled, or the
    /// host's compiler could not start.
    #[error("plugin {name}: {source}")]
    Plugin {
        name: String,
        #[source]
        source: PluginError,
    },
    /// The store of deployed plugins could not be read.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The supervisor (its spawner thread or its compiler) could not start.
    /// (Its message includes the supervisor's error, so it is not also
    /// given as the source: the chain would print it twice.)
    #[error("starting the supervisor: {0}")]
    Supervisor(crate::supervisor::SupervisorError),
}

/// A stored plugin that could not be served: listed with why, its calls
/// refused, until it is deployed again or removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quarantined {
    pub mode: InstanceMode,
    pub sha256: [u8; 32],
    pub size: usize,
    pub reason: String,
}

/// The name the host's warm-up plugin is loaded under in a worker (a name
/// no deploy can take: plugin names start with a letter or digit).
const WARMUP_PLUGIN: &str = ".warmup";

/// The service: tenants' calls, the plugin set, and the processes.
#[derive(Debug)]
pub struct Service {
    manager: Arc<IsolationManager<WorkerSyncer>>,
    supervisor: Arc<Supervisor>,
    store: PluginStore,
    /// The instance mode each configured plugin has, the default of a
    /// deploy of that name.
    configured_modes: HashMap<String, InstanceMode>,
    quarantined: Mutex<BTreeMap<String, Quarantined>>,
    /// Held while a deploy or a removal changes the store and the workers'
    /// set, so that concurrent changes of one name land on disk and in
    /// memory in the same order (compiles run before, outside it).
    changes: tokio::sync::Mutex<()>,
}

impl Service {
    /// Compiles the plugins (configured, then stored) in compile children,
    /// starts the supervisor (and its warm pool) and the isolation manager.
    /// A configured plugin that is invalid stops the start (the operator's
    /// file is wrong); a stored one is quarantined and the rest served.
    pub async fn start(settings: ServiceSettings) -> Result<Arc<Self>, StartError> {
        let store = PluginStore::open(&settings.plugins_dir)?;
        let supervisor = Supervisor::new(settings.supervisor).map_err(StartError::Supervisor)?;
        let warmup = supervisor
            .compile(crate::builtin::ECHO.wasm)
            .await
            .map_err(|source| StartError::Plugin {
                name: WARMUP_PLUGIN.into(),
                source,
            })?;
        let warmup = PluginSpec {
            name: WARMUP_PLUGIN.into(),
            mode: InstanceMode::PerRequest,
            artifact: warmup.artifact,
        };
        let configured_modes = settings
            .plugins
            .iter()
            .map(|(name, _, mode)| (name.clone(), *mode))
            .collect();
        let stored = store.load()?;
        let mut specs = Vec::with_capacity(settings.plugins.len() + stored.len());
        for (name, bytes, mode) in settings.plugins {
            if stored.iter().any(|s| s.name == name) {
                continue; // deployed plugins win over configured ones: they are newer
            }
            let compiled = supervisor.compile(&bytes).await.map_err(|source| StartError::Plugin {
                name: name.clone(),
                source,
            })?;
            specs.push(PluginSpec {
                name,
                mode,
                artifact: compiled.artifact,
            });
        }
        let mut quarantined = BTreeMap::new();
        for Stored {
            name,
            mode,
            bytes,
            damage,
        } in stored
        {
            let compiled = match damage {
                Some(damage) => Err(damage),
                None => supervisor.compile(&bytes).await.map_err(|e| e.to_string()),
            };
            match compiled {
                Ok(compiled) => specs.push(PluginSpec {
                    name,
                    mode,
                    artifact: compiled.artifact,
                }),
                Err(e) => {
                    tracing::error!(plugin = %name, "quarantined: the stored plugin cannot be served: {e}");
                    let entry = Quarantined {
                        mode,
                        sha256: crate::sandbox::sha256(&bytes),
                        size: bytes.len(),
                        reason: e,
                    };
                    quarantined.insert(name, entry);
                }
            }
        }
        supervisor.start(specs, Some(warmup));
        let syncer = WorkerSyncer::new(Arc::clone(&supervisor), settings.on_exit);
        // A pre-warmed tenant's worker is confined to its data directory at
        // assignment, as on a call: the directory is made first. A tenant
        // whose directory cannot be made is left to its first call, which
        // reports why.
        let mut prepared = Vec::new();
        for namespace in &settings.isolation.prewarm {
            let disk = settings.isolation.policy(namespace).disk;
            match supervisor.prepare_namespace(namespace, disk).await {
                Ok(()) => prepared.push(namespace.clone()),
                Err(message) => {
                    tracing::warn!(%namespace, "cannot pre-warm the tenant's process: its data directory: {message}");
                }
            }
        }
        let manager = IsolationManager::new(settings.isolation, syncer, settings.procmgr);
        manager.prewarm(&prepared);
        Ok(Arc::new(Self {
            manager,
            supervisor,
            store,
            configured_modes,
            quarantined: Mutex::new(quarantined),
            changes: tokio::sync::Mutex::new(()),
        }))
    }

    fn quarantined(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Quarantined>> {
        self.quarantined
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The stored plugins that could not be served, and why.
    pub fn quarantine(&self) -> BTreeMap<String, Quarantined> {
        self.quarantined().clone()
    }

    /// The isolation manager (processes, health, statuses).
    pub fn manager(&self) -> &Arc<IsolationManager<WorkerSyncer>> {
        &self.manager
    }

    /// Runs `plugin` for a tenant. `session` is required when the tenant's
    /// level is `session`, and defaults to `default` otherwise.
    pub async fn invoke(
        &self,
        namespace: Namespace,
        session: Option<SessionId>,
        plugin: &str,
        payload: Vec<u8>,
    ) -> Result<InvokeOutput, InvokeError> {
        self.call(World::Plugin, namespace, session, plugin, payload).await
    }

    /// Serves one HTTP request with `plugin`, a `wasi:http/proxy` app, for a
    /// tenant, exactly as [`Service::invoke`] runs a call (the same
    /// admission, compartments, limits and errors); the app's response.
    pub async fn serve_http(
        &self,
        namespace: Namespace,
        session: Option<SessionId>,
        plugin: &str,
        request: &HttpRequest,
    ) -> Result<(HttpResponse, InvokeOutput), InvokeError> {
        let level = self.manager.policy(&namespace).level;
        let mut out = self
            .call(World::HttpProxy, namespace, session, plugin, request.encode())
            .await?;
        let response = HttpResponse::decode(&out.output).map_err(|message| InvokeError {
            failure: InvokeFailure::Worker(WorkerCallError::Failed(CallFailure::Host(HostFailure::BadRequest(
                message,
            )))),
            process_id: Some(out.process_id.clone()),
            level,
        })?;
        out.output = Vec::new();
        Ok((response, out))
    }

    /// Runs a call of `world` (see [`Service::invoke`]).
    async fn call(
        &self,
        world: World,
        namespace: Namespace,
        session: Option<SessionId>,
        plugin: &str,
        payload: Vec<u8>,
    ) -> Result<InvokeOutput, InvokeError> {
        let started = Instant::now();
        let policy = self.manager.policy(&namespace);
        let level = policy.level;
        let refuse = |failure: InvokeFailure, process_id: Option<ProcessId>| InvokeError {
            failure,
            process_id,
            level,
        };
        let session = match (session, level) {
            (Some(session), _) => session,
            (None, IsolationLevel::Session) => {
                return Err(refuse(InvokeFailure::SessionRequired { namespace }, None));
            }
            (None, _) => SessionId::default_session(),
        };
        if !policy.allows(plugin) {
            let plugin = plugin.to_owned();
            return Err(refuse(InvokeFailure::PluginNotAllowed { plugin, namespace }, None));
        }
        if !self.supervisor.has_plugin(plugin) {
            let plugin = plugin.to_owned();
            if let Some(entry) = self.quarantined().get(&plugin) {
                let reason = entry.reason.clone();
                return Err(refuse(InvokeFailure::PluginQuarantined { plugin, reason }, None));
            }
            return Err(refuse(InvokeFailure::PluginNotFound { plugin }, None));
        }
        if let Some(actual) = self.supervisor.plugin_world(plugin)
            && actual != world
        {
            let plugin = plugin.to_owned();
            return Err(refuse(InvokeFailure::WrongWorld { plugin, actual }, None));
        }
        let limits = policy.call.clone();
        if let Err(message) = self.supervisor.prepare_namespace(&namespace, policy.disk).await {
            let failure = HostFailure::DataDir { message };
            let failure = InvokeFailure::Worker(WorkerCallError::Failed(failure.into()));
            return Err(refuse(failure, None));
        }
        let key = IsolationKey { namespace, session };
        let Acquired {
            process_id,
            handle,
            admission,
            cold,
            ..
        } = self
            .manager
            .get_or_create_process(&key)
            .await
            .map_err(|e| refuse(e.into(), Some(self.manager.process_id(&key))))?;
        let admitted = admission.admit().await.map_err(|rejection| {
            let failure = InvokeFailure::Rejected {
                process_id: process_id.clone(),
                rejection,
                limits: admission.limits().clone(),
            };
            refuse(failure, Some(process_id.clone()))
        })?;
        let result = handle
            .worker()
            .invoke(plugin, world, &key.namespace, &key.session, payload, &limits)
            .await;
        drop(admitted);
        self.manager.touch(&process_id);
        match result {
            Ok(done) => Ok(InvokeOutput {
                output: done.output,
                fuel_consumed: done.fuel_consumed,
                cold_start: cold.then(|| (handle.source(), handle.start_time())),
                process_id,
                level,
                duration: started.elapsed(),
            }),
            Err(e) => Err(refuse(e.into(), Some(process_id))),
        }
    }

    /// Whether `name` is a plugin of the host, served or quarantined: the
    /// names a metric label may carry.
    pub fn is_known_plugin(&self, name: &str) -> bool {
        self.supervisor.has_plugin(name) || self.quarantined().contains_key(name)
    }

    /// Whether `namespace` may call `plugin` (its `plugins` allow-list).
    pub fn may_call(&self, namespace: &Namespace, plugin: &str) -> bool {
        self.manager.policy(namespace).allows(plugin)
    }

    /// The plugins, by name.
    pub fn plugins(&self) -> Vec<PluginInfo> {
        self.supervisor
            .plugins()
            .into_iter()
            .map(|p| PluginInfo {
                name: p.name,
                mode: p.mode,
                sha256: p.artifact.sha256,
                size: p.artifact.size,
                world: p.artifact.world,
            })
            .collect()
    }

    /// Deploys (or atomically replaces) a plugin: validated and compiled
    /// once (off the async threads), stored so it survives a restart, then
    /// loaded by every worker, idle and assigned. A live worker that cannot
    /// load it is killed, and procmgr restarts it with the new set. `mode`
    /// defaults to the configured mode of that name, else `per-request`.
    pub async fn deploy(
        self: &Arc<Self>,
        name: PluginName,
        bytes: Vec<u8>,
        mode: Option<InstanceMode>,
    ) -> Result<Deployed, DeployError> {
        let mode = mode
            .or_else(|| self.configured_modes.get(name.as_str()).copied())
            .unwrap_or_default();
        let compiled = self.supervisor.compile(&bytes).await?;
        let _changing = self.changes.lock().await;
        // Persist first: a plugin that is live survives a restart. The
        // fsyncs run off the async threads.
        let store = self.store.clone();
        let file = name.to_string();
        let saved = tokio::task::spawn_blocking(move || store.save(&file, &bytes, mode)).await;
        saved.unwrap_or_else(|e| Err(self.store.failed(std::io::Error::other(e))))?;
        self.quarantined().remove(name.as_str());
        self.supervisor
            .install(PluginSpec {
                name: name.to_string(),
                mode,
                artifact: compiled.artifact.clone(),
            })
            .await;
        Ok(Deployed { name, mode, compiled })
    }

    /// Removes a plugin from the store, then from every worker (or from the
    /// quarantine).
    pub async fn remove(&self, name: &str) -> Result<(), RemoveError> {
        let _changing = self.changes.lock().await;
        if !self.supervisor.has_plugin(name) {
            if self.quarantined().contains_key(name) {
                self.store.remove(name)?;
                self.quarantined().remove(name);
                return Ok(());
            }
            return Err(RemoveError::NotFound { name: name.to_owned() });
        }
        self.store.remove(name)?;
        if !self.supervisor.remove(name).await {
            return Err(RemoveError::NotFound { name: name.to_owned() });
        }
        Ok(())
    }

    /// Every process not yet Finished, sorted by id.
    pub fn processes(&self) -> Vec<Process> {
        self.manager.list_processes()
    }

    /// The process of `id`, unless it is unknown or Finished.
    pub fn process(&self, id: &str) -> Option<Process> {
        self.manager.get_process(id)
    }

    /// A watch on `id`'s status, if procmgr knows it.
    pub fn watch(&self, id: &str) -> Option<StatusWatch<AssignedWorker>> {
        self.manager.watch(id)
    }

    /// Terminates `id`, waiting until its worker is gone.
    pub async fn terminate(&self, id: &str, grace: Option<Duration>) -> Result<(), IsolationError> {
        self.manager.terminate_process(id, grace).await
    }

    /// procmgr's health report.
    /// Usage of each namespace's disk quota.
    pub fn disk_usage(&self) -> Vec<(Namespace, crate::supervisor::DiskUsage)> {
        self.supervisor.disk_usage()
    }

    /// The workers' OS sandbox on this machine, as found at start.
    pub fn sandbox_report(&self) -> Option<&crate::worker::jail::Report> {
        self.supervisor.sandbox_report()
    }

    pub fn health(&self) -> Health {
        self.manager.health()
    }

    /// Workers by state: idle in the warm pool, and assigned and live.
    pub fn workers(&self) -> (usize, usize) {
        (self.supervisor.idle_workers(), self.manager.live_processes())
    }

    /// The pids of the idle workers in the warm pool.
    pub fn idle_worker_pids(&self) -> Vec<u32> {
        self.supervisor.idle_pids()
    }

    /// Waits until the warm pool holds its target of idle workers (or
    /// `timeout`).
    pub async fn wait_pool_filled(&self, timeout: Duration) -> bool {
        self.supervisor.wait_pool_filled(timeout).await
    }

    /// Waits until the pre-warmed tenants' processes are live (or
    /// `timeout`).
    pub async fn wait_prewarmed(&self, timeout: Duration) -> bool {
        self.manager.wait_prewarmed(timeout).await
    }

    /// Terminates every process (termination hooks run, workers get their
    /// grace period) and stops the warm pool; an error if `deadline` passes
    /// first.
    pub async fn shutdown(&self, deadline: Instant) -> Result<(), ProcmgrError> {
        let result = self.manager.shutdown(deadline.into()).await;
        self.supervisor.shutdown().await;
        result
    }
}
