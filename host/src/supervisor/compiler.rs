//! Compiling uploads in a limited child process (`bulkhead compile`), one
//! at a time, and keeping the artifacts in the compile cache.
//!
//! The host never parses, compiles or loads a plugin itself, and no plugin
//! code runs in it: a compile child validates the upload (types and imports,
//! without instantiating it) and compiles it into the artifact the workers
//! map. The child is bounded in address space and CPU time, runs at the
//! lowest priority on one thread, sits in a cgroup with the same memory
//! limit when the host can make one, and is killed at its wall-clock
//! deadline; a compile that goes over a bound is the upload's fault
//! (`invalid_plugin`). Compiles are serialised, so uploads cannot add up to
//! more than one core of background work.

use std::os::fd::OwnedFd;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};
use tokio::sync::Semaphore;

use super::cgroup::Cgroups;
use super::child::{ChildProcess, describe_status};
use super::relay::relay_stderr;
use super::spawner::{InCgroup, Placement, Spawner};
use crate::sandbox::{
    Artifact, CompileCache, Compiled, InvalidPlugin, PluginError, SandboxConfig, check_header, sha256, world_of,
};
use crate::worker::Verdict;

/// The bounds of one compile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompileLimits {
    /// Memory (address space, and the cgroup limit) of a compile child.
    pub memory_max: u64,
    /// Wall-clock time a compile may take; also its CPU-time limit.
    pub timeout: Duration,
}

impl CompileLimits {
    /// 4 GiB: Cranelift needs a few times a component's size; a compile
    /// bomb needs without bound.
    pub const DEFAULT_MEMORY_MAX: u64 = 4 << 30;
    /// 2 minutes: a large component (an 18 MB Python one) compiles in
    /// seconds on one core; a compile bomb would take the core for hours.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);
}

impl Default for CompileLimits {
    fn default() -> Self {
        Self {
            memory_max: Self::DEFAULT_MEMORY_MAX,
            timeout: Self::DEFAULT_TIMEOUT,
        }
    }
}

/// The largest artifact a compile child may hand back, as a multiple of
/// the upload's size (native code is a few times larger than wasm), plus a
/// fixed allowance for small uploads.
const ARTIFACT_GROWTH: usize = 16;
const ARTIFACT_ALLOWANCE: usize = 64 << 20;

/// Compiles uploads in child processes into the compile cache.
pub struct Compiler {
    spawner: Spawner,
    cgroups: Arc<Cgroups>,
    program: PathBuf,
    sandbox: SandboxConfig,
    limits: CompileLimits,
    cache: CompileCache,
    one_at_a_time: Semaphore,
}

impl std::fmt::Debug for Compiler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Compiler")
            .field("program", &self.program)
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl Compiler {
    /// A compiler running `program compile` for artifacts of `sandbox`'s
    /// engine, placing children in `cgroups` when it can.
    pub(crate) fn new(
        program: PathBuf,
        sandbox: SandboxConfig,
        limits: CompileLimits,
        cgroups: Arc<Cgroups>,
    ) -> Result<Self, PluginError> {
        let cache = CompileCache::for_config(&sandbox).map_err(|source| PluginError::Cache {
            path: sandbox.cache_dir.clone(),
            source,
        })?;
        Ok(Self {
            spawner: Spawner::start()
                .map_err(|e| PluginError::Compiler(format!("starting the spawner thread: {e}")))?,
            cgroups,
            program,
            sandbox,
            limits,
            cache,
            one_at_a_time: Semaphore::new(1),
        })
    }

    /// Validates and compiles `bytes` (or finds their artifact in the cache,
    /// unchanged since it was stored). Runs none of their code.
    pub async fn compile(&self, bytes: &[u8]) -> Result<Compiled, PluginError> {
        check_header(bytes, self.sandbox.max_plugin_size)?;
        // A component of neither world is refused by the compile child, in
        // validation's order (an unsatisfiable import before a missing
        // export); only a valid one is in the cache.
        let world = world_of(bytes);
        let digest = sha256(bytes);
        let artifact = |(path, compiled_sha256), world| Artifact {
            sha256: digest,
            size: bytes.len(),
            path,
            compiled_sha256,
            world,
        };
        if let (Ok(world), Some(found)) = (&world, self.cache.lookup(&digest)) {
            return Ok(Compiled {
                artifact: artifact(found, *world),
                compile_time: Duration::ZERO,
                cache_hit: true,
            });
        }
        let _turn = self
            .one_at_a_time
            .acquire()
            .await
            .map_err(|_| PluginError::Compiler("the compiler is closed".into()))?;
        let started = Instant::now();
        let compiled = self.run_child(bytes).await?;
        let world = world?;
        let stored = self
            .cache
            .store(&digest, &compiled)
            .map_err(|source| PluginError::Cache {
                path: self.cache.path(&digest),
                source,
            })?;
        Ok(Compiled {
            artifact: artifact(stored, world),
            compile_time: started.elapsed(),
            cache_hit: false,
        })
    }

    /// Runs one compile child on `bytes`; the artifact, or why not.
    async fn run_child(&self, bytes: &[u8]) -> Result<Vec<u8>, PluginError> {
        let host = |what: &str, e: &dyn std::fmt::Display| PluginError::Compiler(format!("{what}: {e}"));
        let mut command = Command::new(&self.program);
        command
            .arg("compile")
            .arg("--parent")
            .arg(std::process::id().to_string())
            .arg("--memory-max")
            .arg(self.limits.memory_max.to_string())
            .arg("--cpu-seconds")
            .arg(self.limits.timeout.as_secs().max(1).to_string())
            .env_clear()
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        let placement = Placement {
            cgroups: Arc::clone(&self.cgroups),
            memory_max: self.limits.memory_max,
            pids_max: 16,
        };
        let (mut child, cgroup) = self
            .spawner
            .spawn(command, placement)
            .await
            .map_err(|e| host("spawning the compile child", &e))?;
        let (stdin, stdout, stderr) = (child.stdin.take(), child.stdout.take(), child.stderr.take());
        let process = ChildProcess::watch(child).map_err(|e| host("watching the compile child", &e))?;
        let cgroup = match cgroup {
            InCgroup::Born(cgroup) => Some(cgroup),
            InCgroup::ToMove(cgroup) => match cgroup.add_process(process.pid()) {
                Ok(()) => Some(cgroup),
                Err(e) => {
                    self.cgroups.warn_once(&e);
                    None
                }
            },
            InCgroup::None => None,
        };
        let (Some(stdin), Some(stdout), Some(stderr)) = (stdin, stdout, stderr) else {
            return Err(PluginError::Compiler("the compile child's stdio was not piped".into()));
        };
        relay_stderr(process.pid(), stderr);
        let limit = bytes.len().saturating_mul(ARTIFACT_GROWTH) + ARTIFACT_ALLOWANCE;
        let talk = async {
            let header = serde_json::to_string(&self.sandbox).map_err(|e| host("encoding the configuration", &e))?;
            let write = async {
                let mut stdin = tokio::net::unix::pipe::Sender::from_owned_fd(OwnedFd::from(stdin))?;
                stdin.write_all(header.as_bytes()).await?;
                stdin.write_all(b"\n").await?;
                stdin.write_all(bytes).await?;
                stdin.shutdown().await
            };
            let read = async {
                let stdout = tokio::net::unix::pipe::Receiver::from_owned_fd(OwnedFd::from(stdout))?;
                let mut stdout = tokio::io::BufReader::new(stdout);
                let mut line = String::new();
                stdout.read_line(&mut line).await?;
                let mut artifact = Vec::new();
                (&mut stdout).take(limit as u64 + 1).read_to_end(&mut artifact).await?;
                Ok::<_, std::io::Error>((line, artifact))
            };
            // A child that stops reading (it failed) ends the write early;
            // what it said is in its output.
            let (_, read) = tokio::join!(write, read);
            read.map_err(|e| host("reading the compile child's answer", &e))
        };
        let answer = tokio::time::timeout(self.limits.timeout, talk).await;
        let status = match &answer {
            Ok(_) => tokio::time::timeout(self.limits.timeout, process.exited()).await.ok(),
            Err(_) => None,
        };
        let Some(status) = status else {
            process.kill();
            let _ = process.exited().await;
            return Err(InvalidPlugin::CompileLimit(format!(
                "it did not compile within worker.compile_timeout ({:?})",
                self.limits.timeout
            ))
            .into());
        };
        let over_memory = cgroup.as_ref().is_some_and(|c| c.oom_killed());
        let (line, artifact) = match answer {
            Ok(Ok(answer)) => answer,
            Ok(Err(e)) => return Err(e),
            Err(_) => unreachable!("a timed-out compile returned above"),
        };
        match serde_json::from_str::<Verdict>(&line) {
            Ok(Verdict::Valid) if status.success() && artifact.len() <= limit => Ok(artifact),
            Ok(Verdict::Valid) if artifact.len() > limit => {
                Err(InvalidPlugin::CompileLimit(format!("its compiled form is over {limit} bytes")).into())
            }
            Ok(Verdict::Invalid(invalid)) => Err(invalid.into()),
            _ => Err(self.limit_or_failure(status, over_memory)),
        }
    }

    /// Why a compile child ended without a verdict: one of its limits (the
    /// upload's fault), or something else (the host's).
    fn limit_or_failure(&self, status: std::process::ExitStatus, over_memory: bool) -> PluginError {
        use std::os::unix::process::ExitStatusExt;
        let memory = || {
            InvalidPlugin::CompileLimit(format!(
                "compiling it needed more than worker.compile_memory_max ({} bytes)",
                self.limits.memory_max
            ))
            .into()
        };
        match status.signal() {
            _ if over_memory => memory(),
            // A failed allocation aborts; the kernel's cgroup OOM killer kills.
            Some(SIGABRT | SIGKILL) => memory(),
            Some(SIGXCPU) => InvalidPlugin::CompileLimit(format!(
                "compiling it took more CPU time than worker.compile_timeout ({:?})",
                self.limits.timeout
            ))
            .into(),
            _ => PluginError::Compiler(format!(
                "the compile child ended with {} and no verdict",
                describe_status(status)
            )),
        }
    }
}

const SIGABRT: i32 = 6;
const SIGKILL: i32 = 9;
const SIGXCPU: i32 = 24;
