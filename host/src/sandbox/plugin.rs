//! Plugin validation, precompilation and loading.
//!
//! An upload is checked in the order a plugin author would want to hear about
//! problems: size, header, decoding and compilation, the handler export, the
//! imports, and finally a trial instantiation under the default limits.

use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use wasmtime::component::{Component, InstancePre, types::ComponentItem};

use super::bindings::{Plugin as PluginWorld, PluginPre};
use super::cache::{Sha256Digest, sha256};
use super::error::{CallFailure, GuestFault, InvalidPlugin, PluginError};
use super::state::CallState;
use super::{CallLimits, Sandbox};

/// The interface every plugin must export.
pub const HANDLER_EXPORT: &str = "bulkhead:plugin/handler@0.1.0";

/// The interface through which a component gets its directories (any
/// version).
const PREOPENS_IMPORT: &str = "wasi:filesystem/preopens@";

const WASM_MAGIC: &[u8; 4] = b"\0asm";
const COMPONENT_VERSION: [u8; 4] = [0x0d, 0x00, 0x01, 0x00];
const CORE_MODULE_VERSION: [u8; 4] = [0x01, 0x00, 0x00, 0x00];

/// How instances of a plugin are reused.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "&'static str")]
pub enum InstanceMode {
    /// A fresh instance for every call: no state survives a call.
    #[default]
    PerRequest,
    /// One instance per worker, calls serialised; thrown away after a trap,
    /// a timeout or any other failure that leaves it mid-call.
    PerProcess,
}

impl InstanceMode {
    /// The configuration name: `per-request` or `per-process`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::PerRequest => "per-request",
            Self::PerProcess => "per-process",
        }
    }
}

impl From<InstanceMode> for &'static str {
    fn from(mode: InstanceMode) -> Self {
        mode.as_str()
    }
}

impl TryFrom<String> for InstanceMode {
    type Error = String;

    fn try_from(name: String) -> Result<Self, String> {
        name.parse()
    }
}

impl std::fmt::Display for InstanceMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for InstanceMode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "per-request" => Ok(Self::PerRequest),
            "per-process" => Ok(Self::PerProcess),
            other => Err(format!(
                "unknown instance mode {other:?}; expected one of \"per-request\", \"per-process\""
            )),
        }
    }
}

/// A precompiled plugin in the cache: what a worker needs to load it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Artifact {
    /// sha256 of the uploaded bytes.
    pub sha256: Sha256Digest,
    /// Size of the upload in bytes.
    pub size: usize,
    /// Where the precompiled artifact is.
    pub path: PathBuf,
}

/// The result of one [`Sandbox::compile`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Compiled {
    /// What was compiled, and where it is.
    pub artifact: Artifact,
    /// Time spent compiling (zero on a cache hit).
    pub compile_time: Duration,
    /// Whether the artifact was already in the cache.
    pub cache_hit: bool,
}

/// A plugin ready to be called: its `InstancePre` is linked and type-checked.
pub struct Plugin {
    pub(crate) name: Arc<str>,
    pub(crate) mode: InstanceMode,
    pub(crate) artifact: Artifact,
    pub(crate) pre: PluginPre<CallState>,
    /// Whether it imports `wasi:filesystem/preopens`, its only way to a
    /// directory. A plugin without it gets no `/data`: its calls neither
    /// create nor open its namespace's directory.
    pub(crate) opens_files: bool,
    /// The kept instance of a `per-process` plugin.
    pub(crate) resident: tokio::sync::Mutex<Option<super::call::Resident>>,
}

impl std::fmt::Debug for Plugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plugin")
            .field("name", &self.name)
            .field("mode", &self.mode)
            .field("artifact", &self.artifact)
            .finish_non_exhaustive()
    }
}

impl Plugin {
    /// The plugin's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// How its instances are reused.
    pub fn mode(&self) -> InstanceMode {
        self.mode
    }

    /// Whether a `per-process` plugin has a kept instance right now (waits
    /// for a running call to finish).
    pub async fn has_kept_instance(&self) -> bool {
        self.resident.lock().await.is_some()
    }

    /// Whether it can open files (imports `wasi:filesystem/preopens`), and
    /// so gets its namespace's directory as `/data`.
    pub fn opens_files(&self) -> bool {
        self.opens_files
    }

    /// Where it came from in the compile cache.
    pub fn artifact(&self) -> &Artifact {
        &self.artifact
    }
}

/// Checks the header: size, magic, and that it is a component.
fn check_header(bytes: &[u8], limit: usize) -> Result<(), InvalidPlugin> {
    if bytes.len() > limit {
        return Err(InvalidPlugin::TooLarge {
            size: bytes.len(),
            limit,
        });
    }
    if bytes.len() < 8 || &bytes[..4] != WASM_MAGIC {
        return Err(InvalidPlugin::NotWasm);
    }
    let version: [u8; 4] = [bytes[4], bytes[5], bytes[6], bytes[7]];
    match version {
        COMPONENT_VERSION => Ok(()),
        CORE_MODULE_VERSION => Err(InvalidPlugin::CoreModule),
        other => Err(InvalidPlugin::UnsupportedVersion(other)),
    }
}

/// Runs `f`, turning a panic inside wasmtime into an error rather than
/// letting a hostile upload take the process down.
fn no_panic<T>(what: &str, f: impl FnOnce() -> wasmtime::Result<T>) -> Result<T, String> {
    match std::panic::catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => Err(format!("{e:#}")),
        Err(_) => Err(format!("{what} panicked on this input")),
    }
}

impl Sandbox {
    /// Validates `bytes` and precompiles them into the cache (or finds them
    /// there), then proves the artifact loads, links and instantiates.
    pub fn compile(&self, bytes: &[u8]) -> Result<Compiled, PluginError> {
        check_header(bytes, self.config.max_plugin_size)?;
        let digest = sha256(bytes);
        let artifact = self.cache.path(&digest);
        let started = Instant::now();
        if artifact.is_file() {
            match self.check_artifact(&artifact) {
                Ok(()) => {
                    return Ok(Compiled {
                        artifact: Artifact {
                            sha256: digest,
                            size: bytes.len(),
                            path: artifact,
                        },
                        compile_time: Duration::ZERO,
                        cache_hit: true,
                    });
                }
                // A stale or damaged entry: compile again over it.
                Err(PluginError::Load { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        let engine = self.engine.clone();
        let compiled =
            no_panic("the compiler", || engine.precompile_component(bytes)).map_err(InvalidPlugin::Malformed)?;
        let artifact = self
            .cache
            .store(&digest, &compiled)
            .map_err(|source| PluginError::Cache {
                path: artifact.clone(),
                source,
            })?;
        let compile_time = started.elapsed();
        self.check_artifact(&artifact)?;
        Ok(Compiled {
            artifact: Artifact {
                sha256: digest,
                size: bytes.len(),
                path: artifact,
            },
            compile_time,
            cache_hit: false,
        })
    }

    /// Loads a compiled plugin for calls.
    pub fn load(&self, name: &str, artifact: Artifact, mode: InstanceMode) -> Result<Arc<Plugin>, PluginError> {
        let component = self.deserialize(&artifact.path)?;
        let pre = self.link(&component)?;
        let opens_files = component
            .component_type()
            .imports(&self.engine)
            .any(|(name, _)| name.starts_with(PREOPENS_IMPORT));
        Ok(Arc::new(Plugin {
            name: name.into(),
            mode,
            artifact,
            pre,
            opens_files,
            resident: tokio::sync::Mutex::new(None),
        }))
    }

    /// Instantiates `plugin` once in a throwaway store with no filesystem,
    /// so that a fresh process's first real call does not pay for faulting
    /// in the instantiation path and the pool slot. Side-effect free: no
    /// guest function runs (but a component's start code).
    pub async fn warm_up(&self, plugin: &Plugin) -> Result<(), CallFailure> {
        let limits = CallLimits::default();
        let deadline = Instant::now() + limits.timeout;
        let mut store = self.new_store(None, &limits, deadline, super::call::anonymous_tags())?;
        plugin
            .pre
            .instantiate_async(&mut store)
            .await
            .map(drop)
            .map_err(|e| GuestFault::Trap(super::call::describe(&e)).into())
    }

    /// [`Sandbox::compile`] then [`Sandbox::load`].
    pub fn load_plugin(&self, name: &str, bytes: &[u8], mode: InstanceMode) -> Result<Arc<Plugin>, PluginError> {
        let compiled = self.compile(bytes)?;
        self.load(name, compiled.artifact, mode)
    }

    fn deserialize(&self, artifact: &Path) -> Result<Component, PluginError> {
        // SAFETY: `deserialize_file` needs a file written by
        // `Engine::precompile_component` of a compatible engine that stays
        // unchanged while it is mapped. The artifact is in the directory of
        // this engine's compatibility hash; the cache writes each entry to a
        // temporary name and renames it into place, so a mapped file is
        // never written again; and the cache directory is created 0700, so
        // only the host's user can replace an entry (workers still run as
        // that user: the OS sandbox is what keeps an escaped guest out).
        unsafe { Component::deserialize_file(&self.engine, artifact) }.map_err(|e| PluginError::Load {
            path: artifact.to_owned(),
            message: format!("{e:#}"),
        })
    }

    /// Links the component (its imports must all be provided) and
    /// type-checks its handler export against the world.
    fn link(&self, component: &Component) -> Result<PluginPre<CallState>, PluginError> {
        let instance_pre: InstancePre<CallState> = self
            .linker
            .instantiate_pre(component)
            .map_err(|e| InvalidPlugin::UnsatisfiableImport(format!("{e:#}")))?;
        let mismatch = match PluginPre::new(instance_pre) {
            Ok(pre) => return Ok(pre),
            Err(mismatch) => mismatch,
        };
        // Say precisely what is wrong with the export.
        let engine: &wasmtime::Engine = &self.engine;
        let ty = component.component_type();
        let found: Vec<&str> = ty.exports(engine).map(|(name, _)| name).collect();
        let invalid = match ty.get_export(engine, HANDLER_EXPORT).map(|export| export.ty) {
            None => InvalidPlugin::MissingExport {
                expected: HANDLER_EXPORT,
                found: found.join(", "),
            },
            Some(ComponentItem::ComponentInstance(_)) => InvalidPlugin::WrongSignature {
                expected: HANDLER_EXPORT,
                detail: format!("{mismatch:#}"),
            },
            Some(_) => InvalidPlugin::WrongSignature {
                expected: HANDLER_EXPORT,
                detail: "it is exported, but not as an instance of the handler interface".into(),
            },
        };
        Err(invalid.into())
    }

    /// Proves an artifact loads, links and instantiates under the default limits.
    fn check_artifact(&self, artifact: &Path) -> Result<(), PluginError> {
        let component = self.deserialize(artifact)?;
        let pre = self.link(&component)?;
        let limits = CallLimits::default();
        let deadline = Instant::now() + limits.timeout;
        let mut store = self
            .new_store(None, &limits, deadline, super::call::anonymous_tags())
            .map_err(|e| PluginError::Load {
                path: artifact.to_owned(),
                message: e.to_string(),
            })?;
        let instance = tokio_block_on(pre.instance_pre().instantiate_async(&mut store))
            .map_err(|e| InvalidPlugin::Instantiation(super::call::describe(&e)))?;
        // The handler's function types are only checked against an instance.
        PluginWorld::new(&mut store, &instance).map(drop).map_err(|e| {
            InvalidPlugin::WrongSignature {
                expected: HANDLER_EXPORT,
                detail: format!("{e:#}"),
            }
            .into()
        })
    }
}

/// Runs a short future to completion on a private current-thread runtime, so
/// `compile` can be called from sync code and from inside a runtime alike.
fn tokio_block_on<F>(future: F) -> F::Output
where
    F: Future + Send,
    F::Output: Send,
{
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                tokio::runtime::Builder::new_current_thread()
                    .enable_time()
                    .build()
                    .map(|rt| rt.block_on(future))
            })
            .join()
    })
    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    .unwrap_or_else(|e| panic!("cannot build a tokio runtime: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_are_checked_before_anything_else() {
        assert_eq!(
            check_header(&[0; 10], 5),
            Err(InvalidPlugin::TooLarge { size: 10, limit: 5 })
        );
        assert_eq!(check_header(b"hello world", 100), Err(InvalidPlugin::NotWasm));
        assert_eq!(check_header(b"\0asm", 100), Err(InvalidPlugin::NotWasm));
        assert_eq!(check_header(b"\0asm\x01\0\0\0", 100), Err(InvalidPlugin::CoreModule));
        assert_eq!(
            check_header(b"\0asm\x02\0\0\0", 100),
            Err(InvalidPlugin::UnsupportedVersion([2, 0, 0, 0]))
        );
        assert_eq!(check_header(b"\0asm\x0d\0\x01\0", 100), Ok(()));
    }

    #[test]
    fn instance_modes_parse_from_their_names() {
        for mode in [InstanceMode::PerRequest, InstanceMode::PerProcess] {
            assert_eq!(mode.as_str().parse::<InstanceMode>().unwrap(), mode);
        }
        assert!("per-tenant".parse::<InstanceMode>().unwrap_err().contains("per-tenant"));
    }
}
