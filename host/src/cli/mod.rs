//! The commands of `bulkhead` (`CONTRACT.md` section 1). `serve` runs the
//! host; `bench cold-start` runs hosts in this process to measure them;
//! `config check` validates a configuration. The client commands (`invoke`,
//! `deploy`, `processes`, `terminate` and `health`) each talk to a running
//! host over its HTTP API (section 2) and own nothing else.
//!
//! Every command is a `clap::Args` struct with `execute(self)`, which writes
//! to stdout, and `execute_to(self, out)`, which writes to any writer (tests).
//! Output meant for scripts goes to stdout; every failure is one readable line
//! that the binary prints to stderr as `error: ...` through [`report`].
//!
//! # Exit codes
//!
//! | code | meaning |
//! |---|---|
//! | 0 | success |
//! | 1 | the server answered with an error (a contract error kind, another non-2xx status, or a 2xx body that is not what the contract promises) |
//! | 2 | usage error: clap's own (unknown flag, `--data` with `--file`, a non-`http` `--url`) |
//! | 3 | the host could not be reached, or the connection failed or timed out |
//! | 4 | a local input or output error: the file to send cannot be read, stdout cannot be written |
//!
//! # Options shared by every command
//!
//! `--url` (default `http://127.0.0.1:8080`, or `BULKHEAD_URL`), `--token`
//! (or `BULKHEAD_TOKEN`; sent as `Authorization: Bearer`) and `--timeout`
//! (whole-request budget in seconds, default 60).

use std::io::{self, Write};
use std::process::ExitCode;

mod app;
mod bench;
pub mod client;
mod config_check;
mod deploy;
mod error;
mod health;
mod invoke;
mod processes;
mod sandbox;
mod serve;
mod terminate;
#[cfg(test)]
mod tests;

pub use self::app::{Cli, Command};
pub use self::bench::{BenchCommand, ColdStartCommand, MemoryCommand, Row as BenchRow};
pub use self::client::{BaseUrl, Client};
pub use self::config_check::{ConfigCheckCommand, ConfigCommand};
pub use self::deploy::DeployCommand;
pub(crate) use self::error::one_line;
pub use self::error::{CliError, EXIT_LOCAL, EXIT_SERVER, EXIT_TRANSPORT, EXIT_USAGE, ServerError};
pub use self::health::HealthCommand;
pub use self::invoke::InvokeCommand;
pub use self::processes::ProcessesCommand;
pub use self::sandbox::{SandboxCheckCommand, SandboxCommand};
pub use self::serve::ServeCommand;
pub use self::terminate::TerminateCommand;

/// The host address used when neither `--url` nor `BULKHEAD_URL` is given.
pub const DEFAULT_URL: &str = "http://127.0.0.1:8080";

/// Seconds a request may take end to end unless `--timeout` says otherwise:
/// long enough for a guest that runs to its default wall-clock limit after
/// waiting in its worker's queue, short enough that a wedged host does not
/// hang a script forever.
pub const DEFAULT_TIMEOUT_SECS: u64 = 60;

/// Where to reach the host and how to authenticate: flattened into every
/// client command.
#[derive(Debug, Clone, clap::Args)]
pub struct ClientArgs {
    /// Base URL of the running host (`http://HOST:PORT`).
    #[arg(long, env = "BULKHEAD_URL", value_name = "URL", default_value = DEFAULT_URL, value_parser = BaseUrl::parse)]
    pub url: BaseUrl,

    /// Token sent as `Authorization: Bearer TOKEN` (needed when the host has auth on).
    #[arg(long, env = "BULKHEAD_TOKEN", hide_env_values = true, value_name = "TOKEN", value_parser = parse_token)]
    pub token: Option<String>,

    /// Seconds the whole request may take, including the guest's run.
    #[arg(long, value_name = "SECS", default_value_t = DEFAULT_TIMEOUT_SECS, value_parser = clap::value_parser!(u64).range(1..))]
    pub timeout: u64,
}

impl ClientArgs {
    /// Arguments for `url` with no token and the default timeout.
    pub fn new(url: BaseUrl) -> Self {
        Self {
            url,
            token: None,
            timeout: DEFAULT_TIMEOUT_SECS,
        }
    }
}

/// Prints a command's failure to stderr as one `error: ...` line and maps it
/// to the process exit code; `main` ends every client command with this.
///
/// A closed stdout (`bulkhead processes | head -1`) is not an error.
pub fn report(result: Result<(), CliError>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(CliError::Output(err)) if err.kind() == io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(err) => {
            let _ = writeln!(io::stderr().lock(), "error: {err}");
            ExitCode::from(err.exit_code())
        }
    }
}

/// Runs `f` against a locked stdout: the `execute` of every command.
fn with_stdout(f: impl FnOnce(&mut dyn Write) -> Result<(), CliError>) -> Result<(), CliError> {
    let stdout = io::stdout();
    let mut out = stdout.lock();
    f(&mut out)?;
    out.flush().map_err(CliError::Output)
}

/// A header value given on the command line must be sendable as one.
pub(crate) fn parse_header_value(value: &str) -> Result<String, String> {
    if value.is_empty() {
        return Err("must not be empty".to_owned());
    }
    if let Some(bad) = value.chars().find(|c| !c.is_ascii_graphic()) {
        return Err(format!(
            "{bad:?} cannot be sent in an HTTP header (printable ASCII without spaces only)"
        ));
    }
    Ok(value.to_owned())
}

fn parse_token(value: &str) -> Result<String, String> {
    parse_header_value(value)
}
