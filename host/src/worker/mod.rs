//! The worker process: `bulkhead worker`, re-executed by the host.
//!
//! It runs one [`Sandbox`] and talks to the host over the socket it inherits
//! as standard input (its only descriptor from the host, besides the stderr
//! pipe its logs go to). It knows nothing about procmgr: it loads what it is
//! told, binds to the namespace it is assigned, runs calls concurrently, and
//! exits when the host says so, when the host goes away, or at the first
//! frame that does not decode.

mod compile;
mod hygiene;
mod serve;

use std::os::fd::AsFd;
use std::process::ExitCode;

pub use self::compile::{CompileArgs, Verdict, run as run_compile};
pub use self::hygiene::HygieneError;
pub use self::serve::{WorkerError, serve};

/// Exit code when the host sent something that is not the protocol.
pub const EXIT_PROTOCOL: u8 = 2;
/// Exit code when the worker could not start (hygiene, runtime, init).
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
    /// RLIMIT_NOFILE for the worker.
    #[arg(long, default_value_t = DEFAULT_OPEN_FILES)]
    pub open_files: u64,
    /// Log filter (tracing's env-filter syntax).
    #[arg(long, default_value = "info")]
    pub log: String,
}

/// Log lines the worker's writer thread may hold before it drops new ones
/// (and counts them): the worker never waits for its stderr.
const LOG_QUEUE_LINES: usize = 4096;

/// Runs the worker until it is told to stop; returns its exit code.
pub fn run(args: &WorkerArgs) -> ExitCode {
    let filter = tracing_subscriber::EnvFilter::try_new(&args.log)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let (writer, _flush_at_exit) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .lossy(true)
        .buffered_lines_limit(LOG_QUEUE_LINES)
        .thread_name("bulkhead-log")
        .finish(std::io::stderr());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_ansi(false)
        .with_target(false)
        .init();
    if let Err(e) = hygiene::apply(args.parent, args.open_files) {
        tracing::error!("worker start: {e}");
        return ExitCode::from(EXIT_START);
    }
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
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
        serve(recv, send).await.map_err(std::io::Error::other)
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("worker stopped: {e}");
            ExitCode::from(EXIT_PROTOCOL)
        }
    }
}
