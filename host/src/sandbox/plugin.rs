//! Plugins in the compile cache and loaded for calls: the instance modes,
//! the artifact a worker loads, compiling in-process with the cache (tests,
//! benches), and loading.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use wasmtime::component::Component;

use super::bindings::PluginPre;
use super::cache::{Sha256Digest, sha256};
use super::error::{CallFailure, GuestFault, PluginError};
use super::state::CallState;
use super::validate::{check_header, opens_files};
use super::world::{World, world_of};
use super::{CallLimits, Sandbox};
use wasmtime_wasi_http::p2::bindings::ProxyPre;

/// The interface every plugin must export.
pub const HANDLER_EXPORT: &str = "bulkhead:plugin/handler@0.1.0";

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
    /// sha256 of the precompiled artifact, as the host stored it: a worker
    /// maps no artifact whose bytes do not have it.
    pub compiled_sha256: Sha256Digest,
    /// The world the component targets (read off its exports).
    pub world: World,
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

/// A plugin's linked and type-checked `InstancePre`, by world.
pub(crate) enum Pre {
    /// A `bulkhead:plugin` component.
    Plugin(PluginPre<CallState>),
    /// A `wasi:http/proxy` app.
    Http(ProxyPre<CallState>),
}

impl Pre {
    /// The world it was checked against.
    pub(crate) fn world(&self) -> World {
        match self {
            Self::Plugin(_) => World::Plugin,
            Self::Http(_) => World::HttpProxy,
        }
    }
}

/// A plugin ready to be called: its `InstancePre` is linked and type-checked.
pub struct Plugin {
    pub(crate) name: Arc<str>,
    pub(crate) mode: InstanceMode,
    pub(crate) artifact: Artifact,
    pub(crate) pre: Pre,
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

    /// How its instances are reused (an app's: always a fresh one).
    pub fn mode(&self) -> InstanceMode {
        self.mode
    }

    /// The world it targets.
    pub fn world(&self) -> World {
        self.pre.world()
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

impl Sandbox {
    /// Validates `bytes` and precompiles them into the cache (or finds a
    /// valid artifact there), in this process; runs none of their code. The
    /// host compiles in a limited child process instead
    /// (`supervisor::Compiler`); this is for tests and benches.
    pub fn compile(&self, bytes: &[u8]) -> Result<Compiled, PluginError> {
        check_header(bytes, self.config.max_plugin_size)?;
        // A component of neither world is refused by validation below, in
        // its order (an unsatisfiable import before a missing export).
        let world = world_of(bytes);
        let digest = sha256(bytes);
        let path = self.cache.path(&digest);
        let started = Instant::now();
        if let (Ok(world), Some((path, compiled_sha256))) = (&world, self.cache.lookup(&digest)) {
            let world = *world;
            match self.deserialize(&path) {
                Ok(component) => {
                    self.validator.check(&component)?;
                    return Ok(Compiled {
                        artifact: Artifact {
                            sha256: digest,
                            size: bytes.len(),
                            path,
                            compiled_sha256,
                            world,
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
        let validated = self.validator.compile(bytes)?;
        let world = world?;
        let (path, compiled_sha256) =
            self.cache
                .store(&digest, &validated.artifact)
                .map_err(|source| PluginError::Cache {
                    path: path.clone(),
                    source,
                })?;
        Ok(Compiled {
            artifact: Artifact {
                sha256: digest,
                size: bytes.len(),
                path,
                compiled_sha256,
                world,
            },
            compile_time: started.elapsed(),
            cache_hit: false,
        })
    }

    /// Loads a compiled plugin for calls: maps the artifact, links it and
    /// type-checks it. Runs none of its code.
    pub fn load(&self, name: &str, artifact: Artifact, mode: InstanceMode) -> Result<Arc<Plugin>, PluginError> {
        let verified = verify(&artifact)?;
        let component = self.deserialize(&artifact.path)?;
        // The file mapped is the one whose bytes were checked: not replaced
        // in between (only the host's user could, see `deserialize`).
        if file_identity(&std::fs::metadata(&artifact.path).map_err(|e| tampered(&artifact, e.to_string()))?)
            != verified
        {
            return Err(tampered(&artifact, "it was replaced while it was being loaded".into()));
        }
        let pre = self.validator.check(&component)?;
        if pre.world() != artifact.world {
            return Err(tampered(
                &artifact,
                format!(
                    "it is a {} component, not the {} the host read",
                    pre.world(),
                    artifact.world
                ),
            ));
        }
        Ok(Arc::new(Plugin {
            name: name.into(),
            mode,
            artifact,
            opens_files: opens_files(self.validator.engine(), &component),
            pre,
            resident: tokio::sync::Mutex::new(None),
        }))
    }

    /// Instantiates `plugin` once in a throwaway store with no filesystem,
    /// under the default call limits and their deadline, so that a fresh
    /// process's first real call does not pay for faulting in the
    /// instantiation path and the pool slot. Its start code runs: call it
    /// only with the host's own built-in plugin, never a tenant's.
    pub async fn warm_up(&self, plugin: &Plugin) -> Result<(), CallFailure> {
        let Pre::Plugin(pre) = &plugin.pre else {
            return Ok(());
        };
        let limits = CallLimits::default();
        let deadline = Instant::now() + limits.timeout;
        let mut store = self.new_store(None, &limits, deadline, super::call::anonymous_tags(&self.log_bucket))?;
        match tokio::time::timeout_at(deadline.into(), pre.instantiate_async(&mut store)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(GuestFault::Trap(super::call::describe(&e)).into()),
            Err(_) => Err(GuestFault::Timeout { limit: limits.timeout }.into()),
        }
    }

    /// [`Sandbox::compile`] then [`Sandbox::load`].
    pub fn load_plugin(&self, name: &str, bytes: &[u8], mode: InstanceMode) -> Result<Arc<Plugin>, PluginError> {
        let compiled = self.compile(bytes)?;
        self.load(name, compiled.artifact, mode)
    }

    fn deserialize(&self, artifact: &Path) -> Result<Component, PluginError> {
        // The caller checked the artifact's digest first (`verify`).
        // SAFETY: `deserialize_file` needs a file written by
        // `Component::serialize` of a compatible engine that stays unchanged
        // while it is mapped. The artifact is in the directory of this
        // engine's compatibility hash; the cache writes each entry to a
        // temporary name and renames it into place, so a mapped file is
        // never written again; and the cache directory is created 0700, so
        // only the host's user can replace an entry: workers see the cache
        // through a read-only mount, as another uid, under Landlock
        // (`worker::jail`).
        unsafe { Component::deserialize_file(self.validator.engine(), artifact) }.map_err(|e| PluginError::Load {
            path: artifact.to_owned(),
            message: format!("{e:#}"),
        })
    }
}

/// Inode and size of a file: the same while nobody replaces or extends it.
fn file_identity(meta: &std::fs::Metadata) -> (u64, u64, u64) {
    use std::os::unix::fs::MetadataExt;
    (meta.dev(), meta.ino(), meta.size())
}

fn tampered(artifact: &Artifact, reason: String) -> PluginError {
    PluginError::Tampered {
        path: artifact.path.clone(),
        reason,
    }
}

/// Reads the artifact through one descriptor and checks it has the digest
/// the host stored with it; the file's identity, for the check after
/// mapping. An artifact changed on disk (by anyone: a worker cannot write
/// the cache, but the host's user can) is never loaded.
fn verify(artifact: &Artifact) -> Result<(u64, u64, u64), PluginError> {
    use std::io::Read;
    let fail = |e: std::io::Error| tampered(artifact, e.to_string());
    let mut file = std::fs::File::open(&artifact.path).map_err(fail)?;
    let identity = file_identity(&file.metadata().map_err(fail)?);
    let mut hasher = <sha2::Sha256 as sha2::Digest>::new();
    let mut buf = vec![0; 1 << 16];
    loop {
        let n = file.read(&mut buf).map_err(fail)?;
        if n == 0 {
            break;
        }
        sha2::Digest::update(&mut hasher, &buf[..n]);
    }
    let digest: Sha256Digest = sha2::Digest::finalize(hasher).into();
    if digest != artifact.compiled_sha256 {
        return Err(tampered(
            artifact,
            format!(
                "its sha256 is {}, not the {} the host stored",
                hex::encode(digest),
                hex::encode(artifact.compiled_sha256)
            ),
        ));
    }
    Ok(identity)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instance_modes_parse_from_their_names() {
        for mode in [InstanceMode::PerRequest, InstanceMode::PerProcess] {
            assert_eq!(mode.as_str().parse::<InstanceMode>().unwrap(), mode);
        }
        assert!("per-tenant".parse::<InstanceMode>().unwrap_err().contains("per-tenant"));
    }
}
