//! The runtime: the one entry point of the service layer.
//!
//! `invoke(namespace, session, plugin, payload)` resolves the tenant's level
//! and limits, finds (or creates) the process, passes its bulkhead and runs
//! the call on its worker, returning the output or one error kind. Plugin
//! deploy/replace/remove compile once in the host and reach every live
//! worker; calls in flight finish on the version they started with.

use std::collections::BTreeMap;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};

use super::{IsolationError, IsolationKey, IsolationLevel, IsolationManager, Rejection};
use crate::ErrorKind;
use crate::ipc::PluginSpec;
use crate::names::{Namespace, SessionId};
use crate::procmgr::ProcessManagerOptions;
use crate::sandbox::{Compiled, InstanceMode, PluginError, Sandbox};
use crate::supervisor::{PoolSource, Supervisor, SupervisorConfig};

/// A successful call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvokeOutput {
    pub output: Vec<u8>,
    pub fuel_consumed: u64,
    pub process_id: String,
    pub level: IsolationLevel,
    /// Set when the call waited for its process to be created.
    pub cold_start: Option<(PoolSource, Duration)>,
    /// Wall-clock time of the whole call, creation included.
    pub duration: Duration,
}

/// A failed call: one contract kind, a message, the process id when one was
/// chosen, and when to retry for kinds that carry `Retry-After`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind}: {message}")]
pub struct InvokeError {
    pub kind: ErrorKind,
    pub message: String,
    pub process_id: Option<String>,
    pub retry_after: Option<Duration>,
    /// Why the bulkhead refused the call, for `bulkhead_full`.
    pub rejection: Option<Rejection>,
}

impl InvokeError {
    fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            process_id: None,
            retry_after: None,
            rejection: None,
        }
    }

    fn at(mut self, process_id: &str) -> Self {
        self.process_id = Some(process_id.to_owned());
        self
    }
}

impl From<IsolationError> for InvokeError {
    fn from(e: IsolationError) -> Self {
        let retry_after = match &e {
            IsolationError::Unavailable { retry_after, .. } => *retry_after,
            _ => None,
        };
        Self {
            kind: e.kind(),
            message: e.to_string(),
            process_id: None,
            retry_after,
            rejection: None,
        }
    }
}

/// A deployed plugin, as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginInfo {
    pub name: String,
    pub mode: InstanceMode,
    pub compiled: Compiled,
}

/// The service layer's entry point.
#[derive(Debug)]
pub struct Runtime {
    manager: Arc<IsolationManager>,
    compiler: Sandbox,
    plugins: RwLock<BTreeMap<String, PluginSpec>>,
}

/// Everything a runtime is built from.
#[derive(Debug, Clone)]
pub struct RuntimeSettings {
    pub isolation: super::IsolationConfig,
    pub supervisor: SupervisorConfig,
    pub procmgr: ProcessManagerOptions,
    /// Plugins served from the start: name, component bytes, instance mode.
    pub plugins: Vec<(String, Vec<u8>, InstanceMode)>,
}

/// Why a runtime could not start.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// The host-side compiler sandbox could not be built.
    #[error(transparent)]
    Sandbox(#[from] crate::sandbox::SandboxError),
    /// A configured plugin is invalid or could not be compiled.
    #[error("plugin {name}: {source}")]
    Plugin {
        name: String,
        #[source]
        source: PluginError,
    },
    /// The spawner thread could not be started.
    #[error("starting the worker spawner: {0}")]
    Spawner(#[source] std::io::Error),
}

/// How long a call refused by the bulkhead should wait before retrying.
const BULKHEAD_RETRY_AFTER: Duration = Duration::from_secs(1);

impl Runtime {
    /// Compiles the plugins, starts the supervisor (and its warm pool) and
    /// the isolation manager.
    pub async fn start(settings: RuntimeSettings) -> Result<Arc<Self>, RuntimeError> {
        let compiler = Sandbox::new(settings.supervisor.sandbox.clone())?;
        let mut specs = Vec::with_capacity(settings.plugins.len());
        for (name, bytes, mode) in settings.plugins {
            let compiled = compiler.compile(&bytes).map_err(|source| RuntimeError::Plugin {
                name: name.clone(),
                source,
            })?;
            specs.push(PluginSpec { name, mode, compiled });
        }
        let supervisor = Supervisor::new(settings.supervisor, specs.clone()).map_err(RuntimeError::Spawner)?;
        let manager = IsolationManager::new(settings.isolation, supervisor, settings.procmgr);
        Ok(Arc::new(Self::new(manager, compiler, specs)))
    }

    /// Terminates every process and stops the pool (see
    /// [`IsolationManager::shutdown`]).
    pub async fn shutdown(&self, deadline: Instant) -> Result<(), IsolationError> {
        self.manager.shutdown(deadline).await
    }

    /// A runtime over `manager`, compiling uploads with `compiler` (whose
    /// configuration must match the workers' so artifacts are compatible),
    /// serving `plugins`.
    pub fn new(manager: Arc<IsolationManager>, compiler: Sandbox, plugins: Vec<PluginSpec>) -> Self {
        let plugins = plugins.into_iter().map(|p| (p.name.clone(), p)).collect();
        Self {
            manager,
            compiler,
            plugins: RwLock::new(plugins),
        }
    }

    /// The isolation manager.
    pub fn manager(&self) -> &Arc<IsolationManager> {
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
        let started = Instant::now();
        let policy = self.manager.policy(&namespace);
        let session = match (session, policy.level) {
            (Some(session), _) => session,
            (None, IsolationLevel::Session) => {
                return Err(InvokeError::new(
                    ErrorKind::InvalidRequest,
                    format!("namespace {namespace} is isolated per session: the x-bulkhead-session header is required"),
                ));
            }
            (None, _) => SessionId::default_session(),
        };
        if let Some(allowed) = &policy.plugins
            && !allowed.contains(plugin)
        {
            return Err(InvokeError::new(
                ErrorKind::Forbidden,
                format!("plugin {plugin:?} is not allowed for namespace {namespace}"),
            ));
        }
        if !self
            .plugins
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .contains_key(plugin)
        {
            return Err(InvokeError::new(
                ErrorKind::PluginNotFound,
                format!("no plugin named {plugin:?}"),
            ));
        }
        let limits = policy.call.clone();
        let key = IsolationKey { namespace, session };
        let acquired = self
            .manager
            .get_or_create_process(&key)
            .await
            .map_err(|e| InvokeError::from(e).at(&key.process_id(policy.level)))?;
        let id = acquired.process_id.as_str();
        let admitted = acquired.admission.admit().await.map_err(|rejection| InvokeError {
            kind: ErrorKind::BulkheadFull,
            message: format!(
                "process {id} is full ({}): at most {} calls run and {} wait",
                rejection.as_str(),
                acquired.admission.limits().max_concurrent,
                acquired.admission.limits().max_queued
            ),
            process_id: Some(id.to_owned()),
            retry_after: Some(BULKHEAD_RETRY_AFTER),
            rejection: Some(rejection),
        })?;
        let result = acquired
            .worker
            .invoke(plugin, &key.namespace, &key.session, payload, &limits)
            .await;
        drop(admitted);
        self.manager.touch(id);
        match result {
            Ok(done) => Ok(InvokeOutput {
                output: done.output,
                fuel_consumed: done.fuel_consumed,
                process_id: acquired.process_id,
                level: acquired.level,
                cold_start: acquired.cold_start,
                duration: started.elapsed(),
            }),
            Err(e) => Err(InvokeError::new(e.kind, e.message).at(id)),
        }
    }

    /// The deployed plugins, by name.
    pub fn plugins(&self) -> Vec<PluginInfo> {
        self.plugins
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .map(|p| PluginInfo {
                name: p.name.clone(),
                mode: p.mode,
                compiled: p.compiled.clone(),
            })
            .collect()
    }

    /// Validates and precompiles `bytes` (off the async threads).
    pub async fn compile(self: &Arc<Self>, bytes: Vec<u8>) -> Result<Compiled, PluginError> {
        let this = Arc::clone(self);
        tokio::task::spawn_blocking(move || this.compiler.compile(&bytes))
            .await
            .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))
    }

    /// Deploys (or atomically replaces) a plugin: compiled once, then loaded
    /// by new workers, the warm pool and every live worker. A live worker
    /// that cannot load it is killed, and procmgr restarts it with the new set.
    pub async fn deploy(
        self: &Arc<Self>,
        name: &str,
        bytes: Vec<u8>,
        mode: InstanceMode,
    ) -> Result<Compiled, PluginError> {
        let compiled = self.compile(bytes).await?;
        self.install(PluginSpec {
            name: name.to_owned(),
            mode,
            compiled: compiled.clone(),
        })
        .await;
        Ok(compiled)
    }

    /// Makes an already compiled plugin live everywhere.
    pub async fn install(&self, spec: PluginSpec) {
        let supervisor = self.manager.supervisor();
        let _exclusive = supervisor.plugin_set_exclusive().await;
        supervisor.set_plugin(spec.clone()).await;
        let updates = self
            .manager
            .procmgr()
            .syncer()
            .all_assigned()
            .into_iter()
            .map(|(id, assigned)| {
                let spec = spec.clone();
                async move {
                    if let Err(e) = assigned.worker.add_plugin(spec).await {
                        tracing::error!(process_id = %id, "worker cannot load the new plugin ({e}); killing it");
                        assigned.worker.kill();
                    }
                }
            });
        futures_util::future::join_all(updates).await;
        self.plugins
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(spec.name.clone(), spec);
    }

    /// Removes a plugin everywhere; `false` if there was none of that name.
    pub async fn remove(&self, name: &str) -> bool {
        if self
            .plugins
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(name)
            .is_none()
        {
            return false;
        }
        let supervisor = self.manager.supervisor();
        let _exclusive = supervisor.plugin_set_exclusive().await;
        supervisor.remove_plugin(name).await;
        let removals = self
            .manager
            .procmgr()
            .syncer()
            .all_assigned()
            .into_iter()
            .map(|(_, assigned)| async move { assigned.worker.remove_plugin(name).await });
        futures_util::future::join_all(removals).await;
        true
    }
}
