//! The sandbox's errors: why a plugin was refused, why a call failed (the
//! guest's fault, or the host's), and the host-side failures that are
//! neither.
//!
//! A failed call is a [`CallFailure`]: a [`GuestFault`] (the guest's own
//! error, a trap, or a limit it ran into) or a [`HostFailure`] (the call
//! could not be run for reasons that are not the guest's). It travels from
//! the worker to the host over IPC as it is, and each enum maps itself onto
//! the contract's kinds in one `kind()`.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::plugin::HANDLER_EXPORT;
use super::wasi::GUEST_DATA_DIR;
use super::world::HTTP_HANDLER_EXPORT;
use crate::ErrorKind;
use crate::names::Namespace;

/// Why an upload is not a valid component of the `bulkhead:plugin` world.
/// Every variant maps to the `invalid_plugin` kind; the message says what is
/// wrong so the plugin's author can fix it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum InvalidPlugin {
    /// Over `max_plugin_size`.
    #[error("plugin is {size} bytes, over the size limit of {limit} bytes")]
    TooLarge { size: usize, limit: usize },
    /// No `\0asm` header.
    #[error("not a WebAssembly binary: it does not start with the \\0asm header")]
    NotWasm,
    /// A core module instead of a component.
    #[error(
        "a core WebAssembly module, not a component: build it as a component of the \
         bulkhead:plugin world (e.g. with cargo for wasm32-wasip2)"
    )]
    CoreModule,
    /// A header of an unknown version or layer.
    #[error("unsupported WebAssembly version/layer {0:02x?}; expected a component (0d 00 01 00)")]
    UnsupportedVersion([u8; 4]),
    /// The binary does not decode, validate or compile.
    #[error("not a valid component: {0}")]
    Malformed(String),
    /// The component exports neither the handler interface nor
    /// `wasi:http/incoming-handler`.
    #[error(
        "missing export `{HANDLER_EXPORT}` (a bulkhead:plugin component) or \
         `{HTTP_HANDLER_EXPORT}.x` (a wasi:http/proxy app); the component exports [{found}]"
    )]
    MissingExport { found: String },
    /// The handler interface is exported with other types.
    #[error("wrong signature for export `{HANDLER_EXPORT}`: {detail}")]
    WrongSignature { detail: String },
    /// An import the host does not provide, or provides with other types.
    #[error("unsatisfiable import: {0}")]
    UnsatisfiableImport(String),
    /// Compiling it took more time or memory than the host allows
    /// (`worker.compile_timeout`, `worker.compile_memory_max`): a compile bomb,
    /// or a plugin too large for this host.
    #[error("compiling it went over the host's limits: {0}")]
    CompileLimit(String),
}

impl InvalidPlugin {
    /// The contract kind of every invalid plugin.
    pub const KIND: ErrorKind = ErrorKind::InvalidPlugin;
}

/// Loading a plugin failed.
#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    /// The plugin itself is at fault.
    #[error("invalid plugin: {0}")]
    Invalid(#[from] InvalidPlugin),
    /// The host could not read or write its compile cache.
    #[error("plugin cache {}: {source}", path.display())]
    Cache {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A cached artifact could not be loaded (and recompiling it failed too).
    #[error("loading compiled plugin {}: {message}", path.display())]
    Load { path: PathBuf, message: String },
    /// A compiled artifact does not have the digest the host stored with it
    /// (changed on disk, or replaced): it is not loaded.
    #[error("the compiled artifact {} was tampered with: {reason}; deploy the plugin again", path.display())]
    Tampered { path: PathBuf, reason: String },
    /// The host could not run its compile child (spawn, pipes, a crash that
    /// is not the plugin's doing).
    #[error("the compiler process failed: {0}")]
    Compiler(String),
}

impl PluginError {
    /// The contract kind when the error is the plugin's fault.
    pub fn kind(&self) -> Option<ErrorKind> {
        matches!(self, Self::Invalid(_) | Self::Tampered { .. }).then_some(ErrorKind::InvalidPlugin)
    }
}

/// A call that failed because of what the guest did.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum GuestFault {
    /// The guest returned its own `error` (the message as it gave it; an
    /// `invalid-input` one is prefixed with `invalid input: `).
    #[error("{0}")]
    Error(String),
    /// The guest trapped: a panic, `unreachable`, a stack overflow.
    #[error("{0}")]
    Trap(String),
    /// The call used all of its fuel.
    #[error("the call used all of its {limit} units of fuel")]
    Fuel { limit: u64 },
    /// The guest tried to grow its memories and tables past the limit.
    #[error("the guest tried to grow its memory past the limit of {limit} bytes ({detail})")]
    Memory { limit: u64, detail: String },
    /// The call ran past its wall-clock deadline.
    #[error("the call ran past its timeout of {} ms", limit.as_millis())]
    Timeout { limit: Duration },
    /// The guest returned more than a reply may carry.
    #[error("the output of {size} bytes is over the limit of {limit} bytes")]
    OutputTooLarge { size: usize, limit: usize },
}

impl GuestFault {
    /// The contract kind.
    pub const fn kind(&self) -> ErrorKind {
        match self {
            Self::Error(_) | Self::OutputTooLarge { .. } => ErrorKind::GuestError,
            Self::Trap(_) => ErrorKind::GuestTrap,
            Self::Fuel { .. } => ErrorKind::FuelExhausted,
            Self::Memory { .. } => ErrorKind::MemoryLimit,
            Self::Timeout { .. } => ErrorKind::Timeout,
        }
    }
}

/// A call that could not be run, through no fault of the guest.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum HostFailure {
    /// The sandbox is bound to another namespace.
    #[error("this sandbox serves namespace {bound}, not {requested}")]
    WrongNamespace { bound: Namespace, requested: Namespace },
    /// The worker has no plugin of that name.
    #[error("no plugin named {name:?}")]
    PluginNotFound { name: String },
    /// The namespace's data directory cannot be prepared: worth retrying
    /// once an operator has looked.
    #[error("the host cannot prepare {GUEST_DATA_DIR}: {message}")]
    DataDir { message: String },
    /// The plugin's artifact could not be loaded in this worker (it was
    /// tampered with, or does not load): its calls fail, the others run.
    #[error("plugin {name} cannot be loaded: {message}")]
    PluginUnloadable { name: String, message: String },
    /// The worker is draining its calls before it exits.
    #[error("the worker is shutting down")]
    ShuttingDown,
    /// Every instance slot of the worker's pool is taken (by calls running
    /// and by kept instances of `per-process` plugins).
    #[error("all {slots} instance slots of this worker are in use; try again")]
    NoInstanceSlot { slots: u32 },
    /// The call does not fit the plugin: an HTTP request that does not
    /// decode, or a call of one world made to a plugin of the other.
    #[error("{0}")]
    BadRequest(String),
}

impl HostFailure {
    /// The contract kind.
    pub const fn kind(&self) -> ErrorKind {
        match self {
            Self::WrongNamespace { .. } => ErrorKind::Forbidden,
            Self::PluginNotFound { .. } => ErrorKind::PluginNotFound,
            Self::PluginUnloadable { .. } => ErrorKind::InvalidPlugin,
            Self::BadRequest(_) => ErrorKind::InvalidRequest,
            Self::DataDir { .. } | Self::ShuttingDown | Self::NoInstanceSlot { .. } => ErrorKind::WorkerUnavailable,
        }
    }
}

/// Why a call failed: the guest's fault or the host's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum CallFailure {
    /// What the guest did.
    #[error(transparent)]
    Guest(#[from] GuestFault),
    /// What the host could not do.
    #[error(transparent)]
    Host(#[from] HostFailure),
}

impl CallFailure {
    /// The contract kind.
    pub const fn kind(&self) -> ErrorKind {
        match self {
            Self::Guest(fault) => fault.kind(),
            Self::Host(failure) => failure.kind(),
        }
    }
}

/// Starting a sandbox failed.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// wasmtime refused the engine configuration.
    #[error("creating the wasmtime engine: {0}")]
    Engine(String),
    /// The epoch ticker thread could not be started.
    #[error("starting the epoch ticker thread: {0}")]
    Ticker(#[source] std::io::Error),
    /// A directory the sandbox needs could not be created or opened.
    #[error("{what} {}: {source}", path.display())]
    Dir {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Linking WASI or the plugin imports failed.
    #[error("setting up the linker: {0}")]
    Linker(String),
}
