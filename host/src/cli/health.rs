//! `bulkhead health`: the host's health report (`CONTRACT.md` section 5).

use std::io::Write;

use super::{CliError, Client, ClientArgs, with_stdout};

/// Prints the health report: the text report, or with `--json` the JSON.
#[derive(Debug, Clone, clap::Args)]
pub struct HealthCommand {
    /// Print `GET /v1/health` (JSON) instead of the text report.
    #[arg(long)]
    pub json: bool,

    #[command(flatten)]
    pub client: ClientArgs,
}

impl HealthCommand {
    /// Runs the command, writing the report to stdout.
    pub fn execute(self) -> Result<(), CliError> {
        with_stdout(|out| self.execute_to(out))
    }

    /// Runs the command, writing the report to `out` as the host sent it.
    pub fn execute_to(self, out: &mut dyn Write) -> Result<(), CliError> {
        let client = Client::new(&self.client);
        let path = if self.json { "/v1/health" } else { "/v1/health/report" };
        let text = client.get_text(path)?;
        write_text(out, &text)
    }
}

/// Writes `text` and a final newline if it lacks one.
pub(crate) fn write_text(out: &mut dyn Write, text: &str) -> Result<(), CliError> {
    out.write_all(text.as_bytes()).map_err(CliError::Output)?;
    if !text.is_empty() && !text.ends_with('\n') {
        out.write_all(b"\n").map_err(CliError::Output)?;
    }
    Ok(())
}
