//! Builds a running host from a resolved [`Config`]: the sandbox settings,
//! the isolation policies, the plugins (built-in, configured, deployed) and
//! the runtime; and keeps deployed plugins on disk so they survive a restart.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::config::{Config, Limits, PluginSource};
use crate::isolation::{
    AdmissionLimits, ExitHook, IsolationConfig, Runtime, RuntimeError, RuntimeSettings, TenantPolicy,
};
use crate::metrics::HostMetrics;
use crate::names::Namespace;
use crate::procmgr::{ProcessManagerOptions, PrometheusMetrics};
use crate::sandbox::{CallLimits, InstanceMode, SandboxConfig};
use crate::supervisor::{OsLimits, SupervisorConfig, WorkerCommand};

/// Why the host could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("reading plugin {name} from {}: {source}", path.display())]
    PluginFile {
        name: String,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("deployed plugins in {}: {source}", dir.display())]
    PluginStore {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("metrics: {0}")]
    Metrics(String),
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    #[error("worker executable: {0}")]
    WorkerExe(#[source] std::io::Error),
}

/// The pieces of a running host.
#[derive(Debug)]
pub struct Service {
    pub runtime: Arc<Runtime>,
    pub metrics: HostMetrics,
    pub procmgr_metrics: Arc<PrometheusMetrics>,
    pub store: PluginStore,
}

fn call_limits(limits: &Limits) -> CallLimits {
    CallLimits {
        fuel: limits.fuel,
        memory: limits.memory,
        timeout: limits.timeout,
    }
}

fn admission(limits: &Limits) -> AdmissionLimits {
    AdmissionLimits {
        max_concurrent: limits.max_concurrent as usize,
        max_queued: limits.max_queued as usize,
        queue_timeout: limits.queue_timeout,
    }
}

/// The isolation policies of `config`.
pub fn isolation_config(config: &Config, on_exit: Option<ExitHook>) -> IsolationConfig {
    let default_policy = TenantPolicy {
        level: config.isolation.level,
        call: call_limits(&config.limits),
        admission: admission(&config.limits),
        plugins: None,
    };
    let tenants: HashMap<Namespace, TenantPolicy> = config
        .tenants
        .iter()
        .filter_map(|(name, tenant)| {
            let namespace = Namespace::new(name.as_str()).ok()?;
            let policy = TenantPolicy {
                level: tenant.level,
                call: call_limits(&tenant.limits),
                admission: admission(&tenant.limits),
                plugins: tenant.plugins.clone(),
            };
            Some((namespace, policy))
        })
        .collect();
    IsolationConfig {
        default_policy,
        tenants,
        grace_period: config.isolation.grace_period,
        idle_timeout: (!config.isolation.idle_timeout.is_zero()).then_some(config.isolation.idle_timeout),
        max_processes: config.isolation.max_processes as usize,
        start_timeout: config.isolation.start_timeout,
        on_exit,
    }
}

/// The sandbox settings every worker (and the host's compiler) uses.
pub fn sandbox_config(config: &Config) -> SandboxConfig {
    let all_limits = std::iter::once(&config.limits).chain(config.tenants.values().map(|t| &t.limits));
    let (mut max_memory, mut max_concurrent, mut min_timeout) = (0, 1, Duration::MAX);
    for limits in all_limits {
        max_memory = max_memory.max(limits.memory);
        max_concurrent = max_concurrent.max(limits.max_concurrent);
        min_timeout = min_timeout.min(limits.timeout);
    }
    let mut sandbox = SandboxConfig::new(&config.data.cache_dir, &config.data.dir);
    sandbox.max_memory = max_memory;
    // Every running call holds an instance, and each per-process plugin keeps one.
    sandbox.instance_slots = max_concurrent + u32::try_from(config.plugins.len()).unwrap_or(u32::MAX) + 4;
    sandbox.epoch_tick = (min_timeout / 10).clamp(Duration::from_millis(1), Duration::from_millis(100));
    sandbox.max_plugin_size = usize::try_from(config.server.max_plugin_size).unwrap_or(usize::MAX);
    sandbox
}

/// Starts the runtime for `config`; workers run `worker_program`.
pub async fn start(config: &Config, worker_program: Option<PathBuf>) -> Result<Service, ServiceError> {
    let metrics = HostMetrics::new().map_err(|e| ServiceError::Metrics(e.to_string()))?;
    let procmgr_metrics = Arc::new(
        PrometheusMetrics::new(&config.procmgr.metrics_namespace).map_err(|e| ServiceError::Metrics(e.to_string()))?,
    );
    let on_exit: ExitHook = {
        let metrics = metrics.clone();
        Arc::new(move |event| metrics.worker_exit(event))
    };
    let program = match worker_program {
        Some(program) => program,
        None => std::env::current_exe().map_err(ServiceError::WorkerExe)?,
    };
    let store = PluginStore::open(&config.data.plugins_dir)?;
    let mut plugins: Vec<(String, Vec<u8>, InstanceMode)> = Vec::new();
    for (name, plugin) in &config.plugins {
        let bytes = match &plugin.source {
            PluginSource::Builtin => crate::builtin::ALL
                .iter()
                .find(|b| b.name == name)
                .map(|b| b.wasm.to_vec())
                .unwrap_or_default(),
            PluginSource::File(path) => std::fs::read(path).map_err(|source| ServiceError::PluginFile {
                name: name.clone(),
                path: path.clone(),
                source,
            })?,
        };
        plugins.push((name.clone(), bytes, plugin.instance));
    }
    // Deployed plugins win over configured ones of the same name: they are newer.
    for (name, bytes, mode) in store.load()? {
        plugins.retain(|(n, _, _)| *n != name);
        plugins.push((name, bytes, mode));
    }
    let settings = RuntimeSettings {
        isolation: isolation_config(config, Some(on_exit)),
        supervisor: SupervisorConfig {
            command: WorkerCommand {
                program,
                open_files: u64::from(config.worker.open_files),
                log: "info".into(),
            },
            sandbox: sandbox_config(config),
            os_limits: OsLimits {
                memory_max: config.worker.memory_max,
                pids_max: u64::from(config.worker.pids_max),
            },
            warm: config.pool.warm as usize,
            start_timeout: config.isolation.start_timeout,
            cgroups: true,
        },
        procmgr: ProcessManagerOptions::default()
            .with_resync_interval(config.procmgr.resync_interval)
            .with_backoff_period(config.procmgr.backoff_period)
            .with_default_grace_period(config.isolation.grace_period)
            .with_metrics(procmgr_metrics.clone()),
        plugins,
    };
    let runtime = Runtime::start(settings).await?;
    Ok(Service {
        runtime,
        metrics,
        procmgr_metrics,
        store,
    })
}

/// Deployed plugins on disk: `<dir>/<name>.wasm` plus `<name>.mode`.
#[derive(Debug, Clone)]
pub struct PluginStore {
    dir: PathBuf,
}

impl PluginStore {
    /// Opens (creating) the directory.
    pub fn open(dir: &Path) -> Result<Self, ServiceError> {
        std::fs::create_dir_all(dir).map_err(|source| ServiceError::PluginStore {
            dir: dir.to_owned(),
            source,
        })?;
        Ok(Self { dir: dir.to_owned() })
    }

    fn err(&self, source: std::io::Error) -> ServiceError {
        ServiceError::PluginStore {
            dir: self.dir.clone(),
            source,
        }
    }

    /// Every stored plugin.
    pub fn load(&self) -> Result<Vec<(String, Vec<u8>, InstanceMode)>, ServiceError> {
        let mut plugins = Vec::new();
        for entry in std::fs::read_dir(&self.dir).map_err(|e| self.err(e))? {
            let path = entry.map_err(|e| self.err(e))?.path();
            let Some(name) = path
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_suffix(".wasm"))
            else {
                continue;
            };
            let mode = std::fs::read_to_string(path.with_extension("mode"))
                .ok()
                .and_then(|m| m.trim().parse().ok())
                .unwrap_or_default();
            let bytes = std::fs::read(&path).map_err(|e| self.err(e))?;
            plugins.push((name.to_owned(), bytes, mode));
        }
        plugins.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(plugins)
    }

    /// Stores a plugin atomically (write, then rename).
    pub fn save(&self, name: &str, bytes: &[u8], mode: InstanceMode) -> Result<(), ServiceError> {
        let write = |file: &str, data: &[u8]| -> std::io::Result<()> {
            let tmp = self.dir.join(format!(".{file}.tmp"));
            std::fs::write(&tmp, data)?;
            std::fs::rename(&tmp, self.dir.join(file))
        };
        write(&format!("{name}.mode"), mode.as_str().as_bytes()).map_err(|e| self.err(e))?;
        write(&format!("{name}.wasm"), bytes).map_err(|e| self.err(e))
    }

    /// Forgets a plugin.
    pub fn remove(&self, name: &str) -> Result<(), ServiceError> {
        for file in [format!("{name}.wasm"), format!("{name}.mode")] {
            match std::fs::remove_file(self.dir.join(file)) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(self.err(e)),
            }
        }
        Ok(())
    }
}
