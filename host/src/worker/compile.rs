//! `bulkhead compile`: validates and compiles one upload, in a child process
//! of the host, so that a compile bomb (huge functions, deep nesting,
//! millions of functions) costs this process and never the host.
//!
//! It is bounded before it reads anything: it dies with the host, dumps no
//! core, may open few files, may use at most `--memory-max` bytes of address
//! space (`RLIMIT_AS`; it compiles without wasmtime's pooling allocator, so
//! no reservation counts against that) and `--cpu-seconds` of CPU
//! (`RLIMIT_CPU`), compiles on one thread, and runs at the lowest priority
//! (nice 19), so that calls in flight on the same cores come first. The host
//! also puts it in a cgroup with that memory limit, kills it at its
//! wall-clock deadline, and runs one at a time.
//!
//! The conversation: standard input is one line of JSON (the sandbox
//! configuration the workers run with, so the artifact is theirs), then the
//! upload's bytes to the end. Standard output is one line of JSON
//! ([`Verdict`]), then, for a valid upload, the artifact's bytes to the end.
//! It runs none of the upload's code.

use std::io::{BufRead, Read, Write};
use std::process::ExitCode;

use rustix::process::{Resource, Rlimit, setpriority_process, setrlimit};

use super::{EXIT_START, jail};
use crate::sandbox::{InvalidPlugin, SandboxConfig, Validator};

/// The lowest CPU priority.
const NICE: i32 = 19;
/// Descriptors a compile child needs: stdio and what the compiler opens.
const OPEN_FILES: u64 = 64;

/// What the host tells a compile child on its command line.
#[derive(Debug, Clone, clap::Args)]
pub struct CompileArgs {
    /// pid of the host (see `bulkhead worker --parent`).
    #[arg(long)]
    pub parent: u32,
    /// Address space the compile may use, in bytes.
    #[arg(long)]
    pub memory_max: u64,
    /// CPU time the compile may use, in seconds.
    #[arg(long)]
    pub cpu_seconds: u64,
}

/// The first line of a compile child's output.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum Verdict {
    /// Valid: the artifact follows.
    Valid,
    /// Not a valid plugin, and why.
    Invalid(InvalidPlugin),
}

/// Runs the compile child; returns its exit code.
pub fn run(args: &CompileArgs) -> ExitCode {
    match compile(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            let _ = writeln!(std::io::stderr(), "compile: {message}");
            ExitCode::from(EXIT_START)
        }
    }
}

fn compile(args: &CompileArgs) -> Result<(), String> {
    jail::hygiene(args.parent, OPEN_FILES).map_err(|e| e.to_string())?;
    let limit = |resource, what, value| {
        setrlimit(
            resource,
            Rlimit {
                current: Some(value),
                maximum: Some(value),
            },
        )
        .map_err(|e| format!("cannot set {what}: {e}"))
    };
    limit(Resource::As, "RLIMIT_AS", args.memory_max)?;
    limit(Resource::Cpu, "RLIMIT_CPU", args.cpu_seconds)?;
    setpriority_process(None, NICE).map_err(|e| format!("cannot lower the priority: {e}"))?;

    let mut input = std::io::stdin().lock();
    let mut header = String::new();
    input
        .read_line(&mut header)
        .map_err(|e| format!("reading the configuration: {e}"))?;
    let config: SandboxConfig =
        serde_json::from_str(&header).map_err(|e| format!("the configuration line does not decode: {e}"))?;
    // One byte over the limit is enough to refuse the upload as too large.
    let mut bytes = Vec::new();
    input
        .take(config.max_plugin_size as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("reading the upload: {e}"))?;
    let validator = Validator::new(&config, true).map_err(|e| e.to_string())?;
    let (verdict, artifact) = match validator.compile(&bytes) {
        Ok(valid) => (Verdict::Valid, valid.artifact),
        Err(invalid) => (Verdict::Invalid(invalid), Vec::new()),
    };
    let mut out = std::io::stdout().lock();
    let line = serde_json::to_string(&verdict).map_err(|e| e.to_string())?;
    writeln!(out, "{line}")
        .and_then(|()| out.write_all(&artifact))
        .and_then(|()| out.flush())
        .map_err(|e| format!("writing the result: {e}"))
}
