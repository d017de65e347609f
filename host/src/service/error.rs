//! The service layer's failures: why a call, a deploy or a removal failed.
//! Each maps itself onto the contract's kinds in one `kind()`; the lower
//! layers' failures are carried as they are, not re-worded.

use std::time::Duration;

use crate::ErrorKind;
use crate::compartment::IsolationLevel;
use crate::isolation::{AdmissionLimits, IsolationError, Rejection};
use crate::names::Namespace;
use crate::procmgr::ProcessId;
use crate::sandbox::{InvalidPlugin, PluginError, World};
use crate::supervisor::WorkerCallError;

use super::store::StoreError;

/// Why a call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvokeFailure {
    /// A tenant at level `session` sent no session.
    #[error("namespace {namespace} is isolated per session: the x-bulkhead-session header is required")]
    SessionRequired { namespace: Namespace },
    /// The tenant's allow-list does not name the plugin.
    #[error("plugin {plugin:?} is not allowed for namespace {namespace}")]
    PluginNotAllowed { plugin: String, namespace: Namespace },
    /// No plugin of that name.
    #[error("no plugin named {plugin:?}")]
    PluginNotFound { plugin: String },
    /// The stored plugin of that name failed at boot and is quarantined.
    #[error("plugin {plugin:?} is quarantined: {reason}; deploy a valid version of it (or remove it)")]
    PluginQuarantined { plugin: String, reason: String },
    /// The plugin is of the other world: an app called at
    /// `/v1/invoke`, or a plugin at `/v1/http`.
    #[error("plugin {plugin:?} is a {actual} component: call it at {}", actual.route())]
    WrongWorld { plugin: String, actual: World },
    /// The compartment's process could not be had.
    #[error(transparent)]
    Isolation(#[from] IsolationError),
    /// The process's bulkhead refused the call.
    #[error("process {process_id} is full ({}): at most {} calls run and {} wait", rejection.as_str(), limits.max_concurrent, limits.max_queued)]
    Rejected {
        process_id: ProcessId,
        rejection: Rejection,
        limits: AdmissionLimits,
    },
    /// The worker crashed during the call, or the call failed in its sandbox.
    #[error(transparent)]
    Worker(#[from] WorkerCallError),
}

impl InvokeFailure {
    /// The contract kind.
    pub const fn kind(&self) -> ErrorKind {
        match self {
            Self::SessionRequired { .. } => ErrorKind::InvalidRequest,
            Self::PluginNotAllowed { .. } => ErrorKind::Forbidden,
            Self::PluginNotFound { .. } => ErrorKind::PluginNotFound,
            Self::PluginQuarantined { .. } => ErrorKind::WorkerUnavailable,
            Self::WrongWorld { .. } => ErrorKind::InvalidRequest,
            Self::Isolation(e) => e.kind(),
            Self::Rejected { .. } => ErrorKind::BulkheadFull,
            Self::Worker(WorkerCallError::Crashed { .. }) => ErrorKind::WorkerCrashed,
            Self::Worker(WorkerCallError::Unresponsive { .. }) => ErrorKind::Timeout,
            Self::Worker(WorkerCallError::Failed(failure)) => failure.kind(),
        }
    }
}

/// A failed call: why, the process it was for (once one was chosen), and
/// the level the tenant is served at.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{failure}")]
pub struct InvokeError {
    pub failure: InvokeFailure,
    pub process_id: Option<ProcessId>,
    pub level: IsolationLevel,
}

impl InvokeError {
    /// The contract kind.
    pub const fn kind(&self) -> ErrorKind {
        self.failure.kind()
    }

    /// When to retry, if the failure knows better than the contract's default.
    pub const fn retry_after(&self) -> Option<Duration> {
        match &self.failure {
            InvokeFailure::Isolation(e) => e.retry_after(),
            _ => None,
        }
    }

    /// Why the bulkhead refused the call, for `bulkhead_full`.
    pub const fn rejection(&self) -> Option<Rejection> {
        match &self.failure {
            InvokeFailure::Rejected { rejection, .. } => Some(*rejection),
            _ => None,
        }
    }
}

/// Why a deploy failed.
#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    /// The upload is not a valid plugin.
    #[error("{0}")]
    Invalid(#[from] InvalidPlugin),
    /// The host could not compile or cache it.
    #[error("{0}")]
    Compile(PluginError),
    /// The host could not store it.
    #[error("{0}")]
    Store(#[from] StoreError),
}

impl From<PluginError> for DeployError {
    fn from(e: PluginError) -> Self {
        match e {
            PluginError::Invalid(invalid) => Self::Invalid(invalid),
            other => Self::Compile(other),
        }
    }
}

impl DeployError {
    /// The contract kind.
    pub const fn kind(&self) -> ErrorKind {
        match self {
            Self::Invalid(_) => ErrorKind::InvalidPlugin,
            Self::Compile(_) | Self::Store(_) => ErrorKind::WorkerUnavailable,
        }
    }
}

/// Why a removal failed.
#[derive(Debug, thiserror::Error)]
pub enum RemoveError {
    /// No plugin of that name.
    #[error("no plugin named {name:?}")]
    NotFound { name: String },
    /// The host could not delete it from its store.
    #[error("{0}")]
    Store(#[from] StoreError),
}

impl RemoveError {
    /// The contract kind.
    pub const fn kind(&self) -> ErrorKind {
        match self {
            Self::NotFound { .. } => ErrorKind::PluginNotFound,
            Self::Store(_) => ErrorKind::WorkerUnavailable,
        }
    }
}
