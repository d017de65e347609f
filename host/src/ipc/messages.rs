//! The messages of the protocol.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::compartment::IsolationLevel;
use crate::names::{Namespace, SessionId};
use crate::procmgr::ProcessId;
use crate::sandbox::{
    Artifact, CallFailure, CallLimits, EgressError, HttpRequest, HttpResponse, InstanceMode, SandboxConfig, World,
};

/// Host to worker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ToWorker {
    /// Build the sandbox and load the plugins.
    Init(Init),
    /// Become the worker of one process id.
    Assign(Assignment),
    /// Run one call.
    Invoke(Invoke),
    /// Answer with `Pong` carrying the same nonce.
    Ping { nonce: u64 },
    /// Load a plugin, replacing one of the same name; calls in flight finish
    /// on the version they started with.
    PluginAdd(PluginSpec),
    /// Stop serving a plugin.
    PluginRemove { name: String },
    /// Finish in-flight calls within `grace`, then exit.
    Shutdown { grace: Duration },
    /// The answer to the worker's `Egress` with this id.
    EgressResult {
        id: u64,
        result: Result<HttpResponse, EgressError>,
    },
}

/// Worker to host.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum FromWorker {
    /// The first frame a worker sends.
    Hello { protocol: u32, pid: u32 },
    /// `Init` done: the engine is up and every plugin loaded.
    Ready,
    /// `Init` failed; the worker exits after sending this.
    InitFailed { message: String },
    /// `Assign` done.
    Assigned,
    /// `Assign` refused (e.g. bound to another namespace already); the worker exits.
    AssignFailed { message: String },
    /// The outcome of the `Invoke` with this id.
    Result { id: u64, outcome: Outcome },
    /// Answer to `Ping`.
    Pong { nonce: u64 },
    /// Answer to `PluginAdd`: `None` on success, else why it failed.
    PluginAdded { name: String, error: Option<String> },
    /// Answer to `PluginRemove`.
    PluginRemoved { name: String },
    /// A component's outgoing HTTP request, for a call of `namespace`: the
    /// host sends it if the tenant's `http_allow` lets it out, and answers
    /// with `EgressResult`.
    Egress {
        id: u64,
        namespace: Namespace,
        request: HttpRequest,
    },
}

/// What a worker needs to start serving.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Init {
    pub sandbox: SandboxConfig,
    pub plugins: Vec<PluginSpec>,
    /// The host's own plugin (the built-in `echo`'s bytes, whatever is
    /// deployed under that name), instantiated once so the first call is
    /// warm; no tenant's plugin is instantiated before it is called.
    pub warmup: Option<PluginSpec>,
}

/// A compiled plugin the worker loads from the host's compile cache.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PluginSpec {
    pub name: String,
    pub mode: InstanceMode,
    pub artifact: Artifact,
}

/// The compartment a worker serves: procmgr's per-process config, and the
/// message that binds a worker to it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Assignment {
    /// `shared`, `ns:<namespace>` or `session:<session>`.
    pub process_id: ProcessId,
    pub level: IsolationLevel,
    /// The namespace the worker is bound to (levels `namespace` and `session`).
    pub namespace: Option<Namespace>,
    /// The session the worker serves (level `session`).
    pub session: Option<SessionId>,
    /// The tenant's CPU weight and cap, for the worker's cgroup (the host
    /// applies it; the worker is not trusted to).
    pub cpu: CpuLimits,
}

/// A tenant's CPU share and cap, applied to its worker's cgroup at
/// assignment (pool workers are tenant-agnostic until then).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CpuLimits {
    /// Relative weight against other workers under contention, cgroup v2
    /// style: 1 to 10000, 100 by default (v1 `cpu.shares` = weight * 1024 / 100).
    pub weight: u32,
    /// The most CPU time it may use, in thousandths of a CPU per period
    /// (`500` is half a core); `None` is no cap.
    pub max_millicores: Option<u32>,
}

impl CpuLimits {
    /// The default weight.
    pub const DEFAULT_WEIGHT: u32 = 100;
    /// The CFS period the cap is expressed in: 100 ms.
    pub(crate) const PERIOD_US: u64 = 100_000;

    /// The CFS quota per period, in microseconds (at least 1 ms).
    pub(crate) fn quota_us(&self) -> Option<u64> {
        self.max_millicores
            .map(|m| (u64::from(m) * Self::PERIOD_US / 1000).max(1000))
    }
}

impl Default for CpuLimits {
    fn default() -> Self {
        Self {
            weight: Self::DEFAULT_WEIGHT,
            max_millicores: None,
        }
    }
}

/// One call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Invoke {
    pub id: u64,
    pub plugin: String,
    /// The world the call is made as: a `bulkhead:plugin` call, or an HTTP
    /// request (an encoded `sandbox::HttpRequest` payload) for an app.
    pub world: World,
    pub namespace: Namespace,
    pub session: SessionId,
    pub payload: Vec<u8>,
    pub limits: CallLimits,
}

/// How a call ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Outcome {
    /// The guest's output.
    Ok {
        output: Vec<u8>,
        fuel_consumed: u64,
        duration: Duration,
    },
    /// Why it failed, as the sandbox said.
    Err(CallFailure),
}
