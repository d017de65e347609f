//! The worker process: `bulkhead worker`, re-executed by the host.
//!
//! It runs one [`Sandbox`] and talks to the host over the socket it inherits
//! as standard input (its only descriptor from the host, besides the stderr
//! pipe its logs go to). It knows nothing about procmgr: it loads what it is
//! told, binds to the namespace it is assigned, runs calls concurrently, and
//! exits when the host says so, when the host goes away, or at the first
//! frame that does not decode.

mod compile;
pub mod jail;
mod log;
pub mod probe;
mod serve;

use std::os::fd::AsFd;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::Ordering;

pub use self::compile::{CompileArgs, Verdict, run as run_compile};
pub use self::jail::{Jail, JailError, JailSpec, SandboxMode};
pub use self::serve::{WorkerError, serve};

/// Exit code when the host sent something that is not the protocol.
pub const EXIT_PROTOCOL: u8 = 2;
/// Exit code when the worker could not start (jail, runtime, init).
pub const EXIT_START: u8 = 3;

/// RLIMIT_NOFILE of a worker unless the host says otherwise: the IPC
/// socket, stdio, the data directory and the files a guest opens there.
pub const DEFAULT_OPEN_FILES: u64 = 256;

/// What the host tells a worker on its command line.
#[derive(Debug, Clone, clap::Args)]
pub struct WorkerArgs {
    /// pid of the host: the worker exits at once if its parent is another
    /// process (the host died between spawning it and its first instruction).
    #[arg(long)]
    pub parent: u32,
    #[command(flatten)]
    pub jail: JailArgs,
    /// Log filter (tracing's env-filter syntax).
    #[arg(long, default_value = "info")]
    pub log: String,
}

/// The sandbox of a worker (or of the probe), as the host passes it.
#[derive(Debug, Clone, clap::Args)]
pub struct JailArgs {
    /// `worker.sandbox`.
    #[arg(long, value_enum, default_value_t = SandboxMode::BestEffort)]
    pub sandbox: SandboxMode,
    /// The compile cache root (read-only to the worker).
    #[arg(long)]
    pub cache_dir: PathBuf,
    /// The data root (namespaces' directories).
    #[arg(long)]
    pub data_dir: PathBuf,
    /// The uid to become when started as root.
    #[arg(long, requires = "gid")]
    pub uid: Option<u32>,
    /// The gid to become when started as root.
    #[arg(long, requires = "uid")]
    pub gid: Option<u32>,
    /// RLIMIT_NOFILE for the worker.
    #[arg(long, default_value_t = DEFAULT_OPEN_FILES)]
    pub open_files: u64,
    /// RLIMIT_FSIZE for the worker, in bytes.
    #[arg(long)]
    pub file_size: Option<u64>,
}

impl JailArgs {
    /// The spec these arguments describe.
    pub fn spec(&self) -> JailSpec {
        JailSpec {
            mode: self.sandbox,
            cache_dir: self.cache_dir.clone(),
            data_dir: self.data_dir.clone(),
            identity: self.uid.zip(self.gid),
            open_files: self.open_files,
            file_size: self.file_size,
            layers: jail::Layer::ALL.to_vec(),
        }
    }
}

/// Runs the worker until it is told to stop; returns its exit code.
pub fn run(args: &WorkerArgs) -> ExitCode {
    log::init(&args.log);
    let jail = match Jail::enter(args.jail.spec(), Some(args.parent)) {
        Ok(jail) => Arc::new(jail),
        Err(e) => {
            tracing::error!("worker start: {e}");
            return ExitCode::from(EXIT_START);
        }
    };
    tracing::debug!("sandbox: {}", jail.report().summary());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .on_thread_start(|| {
            jail::BLOCKING_THREADS.fetch_add(1, Ordering::SeqCst);
        })
        .on_thread_stop(|| {
            jail::BLOCKING_THREADS.fetch_sub(1, Ordering::SeqCst);
        })
        .build();
    let runtime = match runtime {
        Ok(runtime) => runtime,
        Err(e) => {
            tracing::error!("worker start: cannot build the async runtime: {e}");
            return ExitCode::from(EXIT_START);
        }
    };
    // The host spawns the worker with its end of the socketpair as standard
    // input; a duplicate of it is the connection.
    let socket = match std::io::stdin().as_fd().try_clone_to_owned() {
        Ok(socket) => socket,
        Err(e) => {
            tracing::error!("worker start: cannot take the host's socket from standard input: {e}");
            return ExitCode::from(EXIT_START);
        }
    };
    let result = runtime.block_on(async move {
        let socket = std::os::unix::net::UnixStream::from(socket);
        socket.set_nonblocking(true)?;
        let socket = tokio::net::UnixStream::from_std(socket)?;
        let (read, write) = socket.into_split();
        let (recv, send) = crate::ipc::channel(read, write);
        serve(recv, send, Some(jail)).await.map_err(std::io::Error::other)
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("worker stopped: {e}");
            ExitCode::from(EXIT_PROTOCOL)
        }
    }
}
