//! The sandbox core: one wasmtime engine that validates, precompiles and runs
//! tenant plugins, one call at a time per instance, under fuel, memory and
//! wall-clock limits.
//!
//! It knows nothing of processes: the worker process runs one [`Sandbox`],
//! and tests and benches run it in-process. Every way a call can fail comes
//! back as a [`CallFailure`]: a [`GuestFault`] (`guest_error`, `guest_trap`,
//! `fuel_exhausted`, `memory_limit`, `timeout`) or a [`HostFailure`] (a
//! request outside a bound sandbox, an unusable data directory); every way
//! an upload can be wrong comes back as [`InvalidPlugin`].

mod bindings;
mod cache;
mod call;
mod engine;
mod error;
mod http;
mod limits;
mod plugin;
mod state;
mod validate;
mod wasi;
mod world;

use std::io;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

pub(crate) use self::cache::CompileCache;
pub use self::cache::{Sha256Digest, sha256};
pub use self::call::{CallOutput, MAX_ERROR_MESSAGE, Request};
use self::engine::EpochTicker;
pub use self::error::{CallFailure, GuestFault, HostFailure, InvalidPlugin, PluginError, SandboxError};
pub use self::http::{Egress, EgressError, HttpRequest, HttpResponse, MAX_EGRESS_BODY, header_list};
pub use self::limits::CallLimits;
pub use self::plugin::{Artifact, Compiled, HANDLER_EXPORT, InstanceMode, Plugin};
pub(crate) use self::state::sanitise;
pub use self::state::{LOG_BUDGET_PER_CALL, LOG_BURST, LOG_RATE, MAX_LOG_LINE, MAX_RESOURCES};
pub(crate) use self::validate::check_header;
pub use self::validate::{Validated, Validator};
use self::wasi::DataRoot;
pub use self::wasi::{GUEST_DATA_DIR, MAX_RANDOM_BYTES};
pub use self::world::{HTTP_HANDLER_EXPORT, World, world_of};
use crate::names::Namespace;

/// How a sandbox is built.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SandboxConfig {
    /// Component instances that may exist at once (the pooling allocator's
    /// slots): one per call running, and one per kept instance of a
    /// `per-process` plugin. A call beyond it gets `worker_unavailable`
    /// (`HostFailure::NoInstanceSlot`). The supervisor sizes it for each
    /// worker from the calls it may run and the plugins it has (see
    /// `Supervisor::spawn_worker`). Each slot reserves address space, not
    /// memory.
    pub instance_slots: u32,
    /// Largest linear memory any instance may have, in bytes: the pool's slot
    /// size and a hard ceiling over every call's memory limit.
    pub max_memory: u64,
    /// Native stack a guest may use before it traps with a stack overflow.
    pub max_wasm_stack: usize,
    /// Period of the epoch ticker: the resolution of call deadlines. Keep it
    /// at most a tenth of the shortest timeout.
    pub epoch_tick: Duration,
    /// Largest upload accepted, in bytes.
    pub max_plugin_size: usize,
    /// Where precompiled components are kept.
    pub cache_dir: PathBuf,
    /// Root of the namespaces' data directories.
    pub data_dir: PathBuf,
}

impl SandboxConfig {
    /// 100 instances.
    pub const DEFAULT_INSTANCE_SLOTS: u32 = 100;
    /// 256 MiB.
    pub const DEFAULT_MAX_MEMORY: u64 = 256 << 20;
    /// 512 KiB, wasmtime's default.
    pub const DEFAULT_MAX_WASM_STACK: usize = 512 << 10;
    /// 10 ms: a tenth of a 100 ms timeout.
    pub const DEFAULT_EPOCH_TICK: Duration = Duration::from_millis(10);
    /// 64 MiB.
    pub const DEFAULT_MAX_PLUGIN_SIZE: usize = 64 << 20;

    /// The defaults, with the given cache and data directories.
    pub fn new(cache_dir: impl Into<PathBuf>, data_dir: impl Into<PathBuf>) -> Self {
        Self {
            instance_slots: Self::DEFAULT_INSTANCE_SLOTS,
            max_memory: Self::DEFAULT_MAX_MEMORY,
            max_wasm_stack: Self::DEFAULT_MAX_WASM_STACK,
            epoch_tick: Self::DEFAULT_EPOCH_TICK,
            max_plugin_size: Self::DEFAULT_MAX_PLUGIN_SIZE,
            cache_dir: cache_dir.into(),
            data_dir: data_dir.into(),
        }
    }
}

/// One engine, its linker, the compile cache and the data directories.
pub struct Sandbox {
    validator: Validator,
    cache: CompileCache,
    data: DataRoot,
    config: SandboxConfig,
    /// The namespace a worker was bound to, if it serves only one.
    bound: OnceLock<Namespace>,
    /// The guest-log rate limit of this sandbox (of its worker process).
    log_bucket: std::sync::Arc<state::LogBucket>,
    /// Where components' outgoing HTTP requests go; none: all are denied.
    egress: Option<std::sync::Arc<dyn Egress>>,
    ticker: EpochTicker,
}

impl std::fmt::Debug for Sandbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sandbox")
            .field("config", &self.config)
            .field("bound", &self.bound.get())
            .finish_non_exhaustive()
    }
}

impl Sandbox {
    /// Builds the engine, starts its epoch ticker and opens the directories.
    pub fn new(config: SandboxConfig) -> Result<Self, SandboxError> {
        let validator = Validator::new(&config, false)?;
        let engine = validator.engine();
        let cache = CompileCache::open(&config.cache_dir, engine).map_err(|source| SandboxError::Dir {
            what: "compile cache",
            path: config.cache_dir.clone(),
            source,
        })?;
        let data = DataRoot::open(&config.data_dir).map_err(|source| SandboxError::Dir {
            what: "data directory",
            path: config.data_dir.clone(),
            source,
        })?;
        let ticker = EpochTicker::start(engine, config.epoch_tick).map_err(SandboxError::Ticker)?;
        Ok(Self {
            validator,
            cache,
            data,
            config,
            bound: OnceLock::new(),
            log_bucket: std::sync::Arc::default(),
            egress: None,
            ticker,
        })
    }

    /// Binds the sandbox to one namespace: from then on it refuses calls for
    /// any other, and `per-process` instances get that namespace's `/data`.
    /// (Unbound, a kept instance may serve several namespaces, so it gets no
    /// filesystem at all.) Binding is once only; binding again to another
    /// namespace returns the one already bound.
    pub fn bind_namespace(&self, namespace: Namespace) -> Result<(), Namespace> {
        let bound = self.bound.get_or_init(|| namespace.clone());
        if *bound == namespace {
            Ok(())
        } else {
            Err(bound.clone())
        }
    }

    /// Sends the outgoing HTTP requests of later calls through `egress`
    /// (which decides what is allowed) instead of denying them all.
    pub fn set_egress(&mut self, egress: std::sync::Arc<dyn Egress>) {
        self.egress = Some(egress);
    }

    /// The namespace the sandbox is bound to, if any.
    pub fn bound_namespace(&self) -> Option<&Namespace> {
        self.bound.get()
    }

    /// Runs `job` on the sandbox's epoch-ticker thread, the one thread of a
    /// worker besides the one calling (see `worker::jail`).
    pub fn run_on_ticker_thread(&self, job: Box<dyn FnOnce() + Send>) -> Result<(), String> {
        self.ticker.run(job)
    }

    /// The host path of `namespace`'s data directory, created if missing.
    pub fn namespace_dir(&self, namespace: &Namespace) -> io::Result<PathBuf> {
        self.data.namespace_dir(namespace)
    }
}
