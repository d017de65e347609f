//! The isolation layer: which worker process serves a request, and whether
//! it may run now.
//!
//! - [`level`]: the three levels and the memo's process ids.
//! - [`admission`]: the per-process bulkhead (concurrency + bounded queue).
//! - [`manager`]: keys to process ids to live workers, through procmgr.
//! - [`runtime`]: the one entry point of the service layer: invoke, and
//!   plugin deploy/replace/remove that reaches every live worker.

pub mod admission;
pub mod level;
pub mod manager;
pub mod runtime;

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

pub use self::admission::{Admission, AdmissionLimits, Rejection};
pub use self::level::{IsolationKey, IsolationLevel};
pub use self::manager::{Acquired, IsolationManager, ProcessInfo};
pub use self::runtime::{InvokeError, InvokeOutput, PluginInfo, Runtime, RuntimeError, RuntimeSettings};
use crate::ErrorKind;
use crate::names::Namespace;
use crate::sandbox::CallLimits;
use crate::supervisor::ExitEvent;

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
}

/// A hook told about every worker exit (for metrics).
pub type ExitHook = Arc<dyn Fn(&ExitEvent) + Send + Sync>;

/// The isolation manager's settings.
#[derive(Clone)]
pub struct IsolationConfig {
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
    /// Called on every worker exit.
    pub on_exit: Option<ExitHook>,
}

impl std::fmt::Debug for IsolationConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IsolationConfig")
            .field("default_policy", &self.default_policy)
            .field("tenants", &self.tenants)
            .field("grace_period", &self.grace_period)
            .field("idle_timeout", &self.idle_timeout)
            .field("max_processes", &self.max_processes)
            .field("start_timeout", &self.start_timeout)
            .finish_non_exhaustive()
    }
}

impl Default for IsolationConfig {
    fn default() -> Self {
        Self {
            default_policy: TenantPolicy::default(),
            tenants: HashMap::new(),
            grace_period: Duration::from_secs(10),
            idle_timeout: None,
            max_processes: 64,
            start_timeout: Duration::from_secs(5),
            on_exit: None,
        }
    }
}

impl IsolationConfig {
    /// The policy of `namespace`.
    pub fn policy(&self, namespace: &Namespace) -> &TenantPolicy {
        self.tenants.get(namespace).unwrap_or(&self.default_policy)
    }
}

/// Why the isolation layer could not serve a request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IsolationError {
    /// The session belongs to another namespace.
    #[error("{0}")]
    Forbidden(String),
    /// No such process.
    #[error("{0}")]
    NotFound(String),
    /// The process cannot be started now (backoff, start failure, limits).
    #[error("{message}")]
    Unavailable {
        message: String,
        retry_after: Option<Duration>,
    },
}

impl IsolationError {
    /// The contract kind.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::Forbidden(_) => ErrorKind::Forbidden,
            Self::NotFound(_) => ErrorKind::ProcessNotFound,
            Self::Unavailable { .. } => ErrorKind::WorkerUnavailable,
        }
    }
}
