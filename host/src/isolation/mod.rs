//! The isolation layer: which compartment (process) serves a request, and
//! whether the call may run there now.
//!
//! - [`manager`]: isolation keys to process ids to live workers, through
//!   procmgr; eviction when `max_processes` are live.
//! - [`admission`]: the per-process bulkhead (concurrency + bounded queue).
//! - `idle.rs`: the task that terminates processes idle for `idle_timeout`.
//!
//! The levels, keys and process ids themselves are in [`crate::compartment`].

pub mod admission;
mod idle;
pub mod manager;

#[cfg(test)]
mod tests;

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

pub use self::admission::{Admission, AdmissionLimits, Load, Rejection};
pub use self::manager::{Acquired, IsolationManager, ProcessInfo};
use crate::ErrorKind;
pub use crate::compartment::{IsolationKey, IsolationLevel, SessionScope};
use crate::names::{Namespace, SessionId};
use crate::procmgr::{DEFAULT_GRACE_PERIOD, ProcessId};
use crate::sandbox::CallLimits;

/// How one tenant is served.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TenantPolicy {
    pub level: IsolationLevel,
    /// Fuel, memory and timeout of each call.
    pub call: CallLimits,
    /// The bulkhead of each of the tenant's processes.
    pub admission: AdmissionLimits,
    /// The plugins the tenant may call; `None` is all.
    pub plugins: Option<BTreeSet<String>>,
    /// The most processes the tenant may hold at once (its quota); `None`
    /// is [`IsolationSettings::default_quota`].
    pub max_processes: Option<usize>,
    /// The CPU weight and cap of each of the tenant's workers.
    pub cpu: crate::ipc::CpuLimits,
    /// The quota of the tenant's `/data`, if it has one.
    pub disk: Option<crate::supervisor::DiskLimits>,
}

impl TenantPolicy {
    /// Whether the tenant may call `plugin` (its `plugins` allow-list).
    pub fn allows(&self, plugin: &str) -> bool {
        self.plugins.as_ref().is_none_or(|allowed| allowed.contains(plugin))
    }
}

/// The isolation manager's settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IsolationSettings {
    /// Tenants without an entry of their own.
    pub default_policy: TenantPolicy,
    /// Per-tenant overrides.
    pub tenants: HashMap<Namespace, TenantPolicy>,
    /// Time a worker gets to finish its calls when terminated.
    pub grace_period: Duration,
    /// Processes unused this long are terminated; `None` keeps them.
    pub idle_timeout: Option<Duration>,
    /// Live processes at most.
    pub max_processes: usize,
    /// How long a first call waits for its process to start.
    pub start_timeout: Duration,
    /// How far session ids reach.
    pub session_scope: SessionScope,
    /// Tenants whose process (that of their calls without a session) is
    /// created at start and kept: never reaped as idle, never evicted, and
    /// re-created by procmgr after a crash. None is at level `session`.
    pub prewarm: BTreeSet<Namespace>,
}

impl IsolationSettings {
    /// 64 processes: about 0.8 GB of idle workers (about 13 MB resident each).
    pub const DEFAULT_MAX_PROCESSES: usize = 64;
    /// 5 s: a fresh worker is ready in a few milliseconds; seconds mean it
    /// is stuck.
    pub const DEFAULT_START_TIMEOUT: Duration = Duration::from_secs(5);

    /// The policy of `namespace`.
    pub fn policy(&self, namespace: &Namespace) -> &TenantPolicy {
        self.tenants.get(namespace).unwrap_or(&self.default_policy)
    }

    /// The quota of a tenant that names none: a quarter of
    /// `max_processes` (at least 1), so no one tenant can take the host.
    pub fn default_quota(&self) -> usize {
        (self.max_processes / 4).max(1)
    }

    /// The most processes `namespace` may hold at once.
    pub fn quota(&self, namespace: &Namespace) -> usize {
        self.policy(namespace)
            .max_processes
            .unwrap_or_else(|| self.default_quota())
            .min(self.max_processes)
    }

    /// The process id `key` maps to.
    pub fn process_id(&self, key: &IsolationKey) -> ProcessId {
        key.process_id(self.policy(&key.namespace).level, self.session_scope)
    }
}

impl Default for IsolationSettings {
    fn default() -> Self {
        Self {
            default_policy: TenantPolicy::default(),
            tenants: HashMap::new(),
            grace_period: DEFAULT_GRACE_PERIOD,
            idle_timeout: None,
            max_processes: Self::DEFAULT_MAX_PROCESSES,
            start_timeout: Self::DEFAULT_START_TIMEOUT,
            session_scope: SessionScope::default(),
            prewarm: BTreeSet::new(),
        }
    }
}

/// Why the isolation layer could not give a request its process.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IsolationError {
    /// The session's process belongs to another namespace.
    #[error("session {session} belongs to another namespace")]
    SessionOfAnotherNamespace { session: SessionId },
    /// No such process.
    #[error("process ID {id} not found")]
    NotFound { id: ProcessId },
    /// The process cannot serve now: it is backing off after failures, or
    /// its start failed.
    #[error("process {id} is unavailable: {reason}")]
    Unavailable {
        id: ProcessId,
        reason: String,
        /// When procmgr retries, if a retry is queued.
        retry_after: Option<Duration>,
    },
    /// Every process slot is taken by a process with calls running (or by
    /// a tenant that holds no more processes than the caller's).
    #[error("all {max} processes are busy (isolation.max_processes)")]
    Full { max: usize },
    /// The tenant holds its quota of processes, all of them busy.
    #[error("namespace {namespace} holds all {max} of its processes, each busy (tenants.{namespace}.max_processes)")]
    QuotaFull { namespace: Namespace, max: usize },
    /// The process did not start within `start_timeout`.
    #[error("timeout waiting for process {id} to start")]
    StartTimeout { id: ProcessId },
    /// The process was not terminated within its grace period and slack.
    #[error("timeout waiting for process {id} to terminate")]
    TerminateTimeout { id: ProcessId },
    /// The host is shutting down.
    #[error("process manager is shutting down")]
    ShuttingDown,
}

impl IsolationError {
    /// The contract kind.
    pub const fn kind(&self) -> ErrorKind {
        match self {
            Self::SessionOfAnotherNamespace { .. } => ErrorKind::Forbidden,
            Self::NotFound { .. } => ErrorKind::ProcessNotFound,
            Self::Unavailable { .. }
            | Self::Full { .. }
            | Self::QuotaFull { .. }
            | Self::StartTimeout { .. }
            | Self::TerminateTimeout { .. }
            | Self::ShuttingDown => ErrorKind::WorkerUnavailable,
        }
    }

    /// When to retry, if this error knows better than the contract's default.
    pub const fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Unavailable { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}
