//! The sandbox's errors: why a plugin was refused, why a call failed, and the
//! host-side failures that are neither.

use std::path::PathBuf;

use crate::ErrorKind;

/// Why an upload is not a valid component of the `bulkhead:plugin` world.
/// Every variant maps to the `invalid_plugin` kind; the message says what is
/// wrong so the plugin's author can fix it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
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
    /// The component does not export the handler interface.
    #[error("missing export `{expected}`; the component exports [{found}]")]
    MissingExport { expected: &'static str, found: String },
    /// The handler interface is exported with other types.
    #[error("wrong signature for export `{expected}`: {detail}")]
    WrongSignature { expected: &'static str, detail: String },
    /// An import the host does not provide, or provides with other types.
    #[error("unsatisfiable import: {0}")]
    UnsatisfiableImport(String),
    /// The component could not be instantiated under the host's limits (its
    /// start code trapped, or it needs more memories or instances than allowed).
    #[error("cannot be instantiated: {0}")]
    Instantiation(String),
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
}

impl PluginError {
    /// The contract kind when the error is the plugin's fault.
    pub fn kind(&self) -> Option<ErrorKind> {
        matches!(self, Self::Invalid(_)).then_some(ErrorKind::InvalidPlugin)
    }
}

/// A failed call: one contract kind and a message for the caller.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind}: {message}")]
pub struct CallError {
    /// One of `guest_error`, `guest_trap`, `fuel_exhausted`, `memory_limit`,
    /// `timeout` (or `forbidden` for a request outside a bound sandbox).
    pub kind: ErrorKind,
    /// What happened, for the caller.
    pub message: String,
}

impl CallError {
    pub(crate) fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
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
