//! The service with real worker processes (`bulkhead worker`) and
//! real guests: routing, faults in one compartment, supervision, admission
//! and process hygiene.

mod admission;
pub(crate) mod faults;
mod hygiene;
mod plugins;
mod routing;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bulkhead::isolation::{IsolationLevel, IsolationSettings, Load, SessionScope, TenantPolicy};
use bulkhead::procmgr::{ProcessManagerOptions, ProcessState};
use bulkhead::sandbox::{InstanceMode, SandboxConfig};
use bulkhead::service::{InvokeError, InvokeOutput, Process, Service, ServiceSettings};
use bulkhead::supervisor::{CompileLimits, ExitEvent, ExitHook, OsLimits, SupervisorConfig, WorkerCommand};
use bulkhead::worker::SandboxMode;
use tempfile::TempDir;

/// A service whose workers are the real `bulkhead` binary. Shut down (every
/// worker terminated and reaped) when dropped through [`Host::stop`], and
/// killed by the workers' handles otherwise.
pub(crate) struct Host {
    pub service: Arc<Service>,
    /// Every worker exit, as the isolation manager saw it.
    pub exits: Arc<tokio::sync::watch::Sender<Vec<ExitEvent>>>,
    _tmp: TempDir,
}

pub(crate) struct Options {
    pub level: IsolationLevel,
    pub warm: usize,
    pub policy: TenantPolicy,
    pub grace: Duration,
    pub backoff: Duration,
    pub idle_timeout: Option<Duration>,
    pub max_processes: usize,
    pub cgroups: bool,
    pub sandbox: SandboxMode,
    pub memory_max: u64,
    pub sandbox_max_memory: u64,
    /// Tenants with policies of their own (the default level is not applied
    /// to them).
    pub tenants: Vec<(&'static str, TenantPolicy)>,
    pub session_scope: SessionScope,
    pub compile: CompileLimits,
    /// Where deployed plugins are kept; a scratch directory when `None`.
    pub plugins_dir: Option<PathBuf>,
    /// Calls one worker's pool makes room for (the supervisor adds room for
    /// kept instances).
    pub instance_slots: u32,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            level: IsolationLevel::Namespace,
            warm: 1,
            policy: TenantPolicy::default(),
            grace: Duration::from_secs(5),
            backoff: Duration::from_secs(5),
            idle_timeout: None,
            max_processes: 64,
            cgroups: false,
            sandbox: SandboxMode::BestEffort,
            memory_max: 512 << 20,
            sandbox_max_memory: SandboxConfig::DEFAULT_MAX_MEMORY,
            tenants: Vec::new(),
            session_scope: SessionScope::Global,
            compile: CompileLimits::default(),
            plugins_dir: None,
            instance_slots: 32,
        }
    }
}

pub(crate) fn guest(name: &str) -> Vec<u8> {
    std::fs::read(super::sandbox::guest_path(name)).expect("guest artifact")
}

impl Host {
    pub(crate) async fn start(options: Options) -> Self {
        let tmp = tempfile::tempdir().expect("tempdir");
        let data_dir = tmp.path().join("data");
        let cache = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("compile-cache");
        let mut sandbox = SandboxConfig::new(cache, &data_dir);
        sandbox.instance_slots = options.instance_slots;
        sandbox.max_memory = options.sandbox_max_memory;
        let mut policy = options.policy;
        policy.level = options.level;
        let exits = Arc::new(tokio::sync::watch::Sender::new(Vec::new()));
        let on_exit: ExitHook = {
            let exits = Arc::clone(&exits);
            Arc::new(move |event: &ExitEvent| exits.send_modify(|all| all.push(event.clone())))
        };
        let settings = ServiceSettings {
            isolation: IsolationSettings {
                default_policy: policy,
                grace_period: options.grace,
                idle_timeout: options.idle_timeout,
                max_processes: options.max_processes,
                start_timeout: Duration::from_secs(20),
                session_scope: options.session_scope,
                prewarm: Default::default(),
                tenants: options
                    .tenants
                    .into_iter()
                    .map(|(ns, policy)| (ns.parse().unwrap(), policy))
                    .collect(),
            },
            supervisor: SupervisorConfig {
                command: WorkerCommand {
                    program: env!("CARGO_BIN_EXE_bulkhead").into(),
                    log: "warn".into(),
                    sandbox: options.sandbox,
                    identity: (65534, 65534),
                    open_files: 256,
                    file_size: 1 << 30,
                },
                sandbox,
                os_limits: OsLimits {
                    memory_max: options.memory_max,
                    pids_max: 64,
                },
                compile: options.compile,
                warm: options.warm,
                start_timeout: Duration::from_secs(20),
                cgroups: options.cgroups,
                disk_quotas: false,
                egress: Default::default(),
            },
            procmgr: ProcessManagerOptions::default().with_backoff_period(options.backoff),
            plugins: ["echo", "counter", "spin", "hog", "trap", "sleep", "fs", "hostile"]
                .into_iter()
                .map(|name| {
                    let mode = bulkhead::builtin::named(name).map_or(InstanceMode::PerRequest, |b| b.mode);
                    (name.to_owned(), guest(name), mode)
                })
                .collect(),
            plugins_dir: options.plugins_dir.unwrap_or_else(|| tmp.path().join("plugins")),
            on_exit: Some(on_exit),
        };
        let service = Service::start(settings).await.expect("the service starts");
        Self {
            service,
            exits,
            _tmp: tmp,
        }
    }

    /// Waits (at most 20 s) until the manager has seen the exit of `pid`.
    pub(crate) async fn wait_exit(&self, pid: u32) -> ExitEvent {
        let mut exits = self.exits.subscribe();
        let seen = tokio::time::timeout(
            Duration::from_secs(20),
            exits.wait_for(|all| all.iter().any(|e| e.pid == pid)),
        )
        .await
        .unwrap_or_else(|_| panic!("no exit of pid {pid} was reported"))
        .expect("the host is up");
        seen.iter().find(|e| e.pid == pid).cloned().expect("just seen")
    }

    pub(crate) async fn call(
        &self,
        ns: &str,
        session: Option<&str>,
        plugin: &str,
        payload: &str,
    ) -> Result<InvokeOutput, InvokeError> {
        self.service
            .invoke(
                ns.parse().unwrap(),
                session.map(|s| s.parse().unwrap()),
                plugin,
                payload.as_bytes().to_vec(),
            )
            .await
    }

    /// A call that must succeed; its output as text.
    pub(crate) async fn ok(&self, ns: &str, session: Option<&str>, plugin: &str, payload: &str) -> String {
        let out = self
            .call(ns, session, plugin, payload)
            .await
            .unwrap_or_else(|e| panic!("{ns}/{plugin} {payload:?}: {e}"));
        String::from_utf8(out.output).unwrap()
    }

    pub(crate) fn pid_of(&self, process_id: &str) -> u32 {
        self.service
            .process(process_id)
            .and_then(|p| pid(&p))
            .unwrap_or_else(|| panic!("no live worker for {process_id}"))
    }

    /// Waits (woken by each change, at most 30 s) until `process_id`'s
    /// bulkhead load satisfies `predicate`. The compartment must exist (a
    /// first call made it).
    pub(crate) async fn wait_load(&self, process_id: &str, predicate: impl FnMut(&Load) -> bool) {
        let admission = self
            .service
            .manager()
            .admission(process_id)
            .unwrap_or_else(|| panic!("no compartment {process_id}: make a call there first"));
        admission
            .wait_for_load(predicate, Duration::from_secs(30))
            .await
            .unwrap_or_else(|| panic!("{process_id}: the load waited for never came"));
    }

    /// Waits (event-driven, bounded) until the process is Syncing with a
    /// live worker after `restarts` restarts.
    pub(crate) async fn wait_restarted(&self, process_id: &str, restarts: u32) {
        let mut watch = self.service.watch(process_id).expect("process known");
        watch
            .wait_for_timeout(
                |s| s.state == ProcessState::Syncing && s.restart_count >= restarts && s.error_count == 0,
                Duration::from_secs(30),
            )
            .await
            .unwrap_or_else(|e| panic!("{process_id} did not restart: {e}"));
    }

    /// Terminates every worker and checks that none is left.
    pub(crate) async fn stop(self) {
        let pids: Vec<u32> = self.service.processes().iter().filter_map(pid).collect();
        self.service
            .shutdown(Instant::now() + Duration::from_secs(30))
            .await
            .expect("clean shutdown");
        for pid in pids {
            assert!(!is_running(pid), "worker {pid} survived shutdown");
        }
    }
}

/// The pid of `process`'s live worker, if it has one.
pub(crate) fn pid(process: &Process) -> Option<u32> {
    process.live_pid()
}

/// The direct children of `pid`, from /proc.
pub(crate) fn children_of(pid: u32) -> Vec<u32> {
    let parent = pid.to_string();
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .and_then(|stat| stat.rsplit(')').next()?.split_whitespace().nth(1).map(|p| p == parent))
                .unwrap_or(false)
        })
        .collect()
}

/// Whether `pid` names a live (not zombie) process.
pub(crate) fn is_running(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            let state = stat.rsplit(')').next().and_then(|rest| rest.split_whitespace().next());
            !matches!(state, Some("Z" | "X"))
        }
        Err(_) => false,
    }
}

/// Waits until `pid` is gone (bounded); see `hygiene`.
pub(crate) async fn hygiene_wait_gone(pid: u32) -> bool {
    hygiene::wait_gone(pid, Duration::from_secs(20)).await
}

pub(crate) fn sigkill(pid: u32) {
    let pid = rustix::process::Pid::from_raw(pid as i32).expect("pid");
    rustix::process::kill_process(pid, rustix::process::Signal::KILL).expect("kill");
}
