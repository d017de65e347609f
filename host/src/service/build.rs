//! A service from a resolved [`Config`]: the isolation policies, the sandbox
//! settings every worker (and the host's compiler) uses, the plugins
//! (built-in and configured), the metrics, and the worker command.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use super::{Service, ServiceSettings, StartError};
use crate::config::{Config, Limits, PluginSource};
use crate::ipc::CpuLimits;
use crate::isolation::{AdmissionLimits, IsolationSettings, TenantPolicy};
use crate::metrics::HostMetrics;
use crate::names::Namespace;
use crate::procmgr::{ProcessManagerOptions, PrometheusMetrics};
use crate::sandbox::{CallLimits, InstanceMode, SandboxConfig};
use crate::supervisor::DiskLimits;
use crate::supervisor::{CompileLimits, EgressRules, ExitHook, OsLimits, SupervisorConfig, WorkerCommand};

/// Why the host could not be built from its configuration.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("reading plugin {name} from {}: {source}", path.display())]
    PluginFile {
        name: String,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("metrics: {0}")]
    Metrics(#[from] prometheus::Error),
    #[error("metrics: {0}")]
    ProcmgrMetrics(#[from] crate::procmgr::ProcmgrError),
    #[error(transparent)]
    Start(#[from] StartError),
    #[error("worker executable: {0}")]
    WorkerExe(#[source] std::io::Error),
}

/// A running service and the metrics wired into it.
#[derive(Debug)]
pub struct Running {
    pub service: Arc<Service>,
    pub metrics: HostMetrics,
    pub procmgr_metrics: Arc<PrometheusMetrics>,
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
pub fn isolation_settings(config: &Config) -> IsolationSettings {
    let policy = |level, limits: &Limits, plugins, max_processes: Option<u32>| TenantPolicy {
        level,
        call: call_limits(limits),
        admission: admission(limits),
        plugins,
        max_processes: max_processes.map(|n| n as usize),
        cpu: CpuLimits {
            weight: limits.cpu_weight,
            max_millicores: limits.cpu_max_millicores,
        },
        disk: limits.disk.map(|bytes| DiskLimits {
            bytes,
            files: limits.disk_files,
        }),
    };
    let tenants: HashMap<Namespace, TenantPolicy> = config
        .tenants
        .iter()
        .map(|(namespace, tenant)| {
            let policy = policy(
                tenant.level,
                &tenant.limits,
                tenant.plugins.clone(),
                tenant.max_processes,
            );
            (namespace.clone(), policy)
        })
        .collect();
    IsolationSettings {
        default_policy: policy(config.isolation.level, &config.limits, None, None),
        tenants,
        grace_period: config.isolation.grace_period,
        idle_timeout: (!config.isolation.idle_timeout.is_zero()).then_some(config.isolation.idle_timeout),
        max_processes: config.isolation.max_processes as usize,
        start_timeout: config.isolation.start_timeout,
        session_scope: config.isolation.session_scope,
        prewarm: config.pool.prewarm.clone(),
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
    // Every running call holds an instance; the supervisor adds room for the
    // kept instances of the plugin set of each worker it starts.
    sandbox.instance_slots = max_concurrent;
    sandbox.epoch_tick = (min_timeout / 10).clamp(Duration::from_millis(1), Duration::from_millis(100));
    sandbox.max_plugin_size = usize::try_from(config.server.max_plugin_size).unwrap_or(usize::MAX);
    sandbox
}

/// Starts the service for `config`; workers run `worker_program` (this
/// executable when `None`).
pub async fn start(config: &Config, worker_program: Option<PathBuf>) -> Result<Running, BuildError> {
    let metrics = HostMetrics::new()?;
    let procmgr_metrics = Arc::new(
        PrometheusMetrics::new(&config.procmgr.metrics_namespace)?.with_retention(config.procmgr.series_retention),
    );
    let on_exit: ExitHook = {
        let metrics = metrics.clone();
        Arc::new(move |event| metrics.worker_exit(event))
    };
    let program = match worker_program {
        Some(program) => program,
        None => std::env::current_exe().map_err(BuildError::WorkerExe)?,
    };
    let mut plugins: Vec<(String, Vec<u8>, InstanceMode)> = Vec::new();
    for (name, plugin) in &config.plugins {
        let bytes = match &plugin.source {
            PluginSource::Builtin(builtin) => builtin.wasm.to_vec(),
            PluginSource::File(path) => std::fs::read(path).map_err(|source| BuildError::PluginFile {
                name: name.clone(),
                path: path.clone(),
                source,
            })?,
        };
        plugins.push((name.clone(), bytes, plugin.instance));
    }
    let settings = ServiceSettings {
        isolation: isolation_settings(config),
        supervisor: SupervisorConfig {
            command: WorkerCommand::from_config(program, config),
            sandbox: sandbox_config(config),
            os_limits: OsLimits {
                memory_max: config.worker.memory_max,
                pids_max: u64::from(config.worker.pids_max),
            },
            compile: CompileLimits {
                memory_max: config.worker.compile_memory_max,
                timeout: config.worker.compile_timeout,
            },
            warm: config.pool.warm as usize,
            start_timeout: config.isolation.start_timeout,
            cgroups: true,
            disk_quotas: std::iter::once(&config.limits)
                .chain(config.tenants.values().map(|t| &t.limits))
                .any(|l| l.disk.is_some()),
            egress: Arc::new(EgressRules::new(
                config.tenants.iter().map(|(ns, t)| (ns.clone(), t.http_allow.clone())),
            )),
        },
        procmgr: ProcessManagerOptions::default()
            .with_resync_interval(config.procmgr.resync_interval)
            .with_backoff_period(config.procmgr.backoff_period)
            .with_default_grace_period(config.isolation.grace_period)
            .with_metrics(procmgr_metrics.clone()),
        plugins,
        plugins_dir: config.data.plugins_dir.clone(),
        on_exit: Some(on_exit),
    };
    let service = Service::start(settings).await?;
    Ok(Running {
        service,
        metrics,
        procmgr_metrics,
    })
}
