//! `bulkhead terminate`: stops one worker process, waiting until it is gone.

use std::io::Write;

use ureq::http::Method;

use super::client::encode_segment;
use super::{CliError, Client, ClientArgs, with_stdout};

/// Seconds added to `--grace` for the request budget: the host answers only
/// once the worker is terminated, which may take the whole grace period.
const GRACE_SLACK_SECS: u64 = 30;

/// Terminates one worker process.
#[derive(Debug, Clone, clap::Args)]
pub struct TerminateCommand {
    /// The process id, as `bulkhead processes` shows it (e.g. `ns:tenant-a`).
    #[arg(value_name = "PROCESS_ID")]
    pub process_id: String,

    /// Seconds the worker may take to finish its calls before it is killed
    /// (default: the host's `isolation.grace_period`).
    #[arg(long, value_name = "SECS")]
    pub grace: Option<u64>,

    #[command(flatten)]
    pub client: ClientArgs,
}

impl TerminateCommand {
    /// Runs the command, writing `terminated ID` to stdout.
    pub fn execute(self) -> Result<(), CliError> {
        with_stdout(|out| self.execute_to(out))
    }

    /// Runs the command, writing `terminated ID` to `out`.
    pub fn execute_to(self, out: &mut dyn Write) -> Result<(), CliError> {
        let mut client = Client::new(&self.client);
        let mut path = format!("/v1/processes/{}", encode_segment(&self.process_id));
        if let Some(grace) = self.grace {
            path.push_str(&format!("?grace={grace}"));
            client = client.with_min_timeout(grace.saturating_add(GRACE_SLACK_SECS));
        }
        let mut response = client.send(Method::DELETE, &path, &[], None)?;
        client.read_body(&mut response)?;
        writeln!(out, "terminated {}", self.process_id).map_err(CliError::Output)
    }
}
