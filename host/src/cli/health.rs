//! `bulkhead health`: the host's health report (`CONTRACT.md` section 5),
//! or, with `--url` given more than once, one report over several hosts
//! (the memo's `IsolationHealthReporter`, [`crate::reporter`]).

use std::io::Write;
use std::time::Duration;

use super::{BaseUrl, CliError, Client, ClientArgs, DEFAULT_TIMEOUT_SECS, DEFAULT_URL, with_stdout};
use crate::reporter::{HealthReporter, RemoteHost, render_json, render_report};

/// Prints the health report: the text report, or with `--json` the JSON.
#[derive(Debug, Clone, clap::Args)]
pub struct HealthCommand {
    /// Print `GET /v1/health` (JSON) instead of the text report.
    #[arg(long)]
    pub json: bool,

    /// Base URL of a running host (`http://HOST:PORT`). Given more than
    /// once: one report over every host, a section each, then the totals;
    /// a host that cannot be asked is reported so, and the exit code is 3.
    #[arg(long, env = "BULKHEAD_URL", value_name = "URL", default_value = DEFAULT_URL,
          value_parser = BaseUrl::parse, action = clap::ArgAction::Append)]
    pub url: Vec<BaseUrl>,

    /// Token sent as `Authorization: Bearer TOKEN` to every host (the admin
    /// token when auth is on).
    #[arg(long, env = "BULKHEAD_TOKEN", hide_env_values = true, value_name = "TOKEN", value_parser = super::parse_token)]
    pub token: Option<String>,

    /// Seconds the report may take; over several hosts, each is given up on
    /// after this long.
    #[arg(long, value_name = "SECS", default_value_t = DEFAULT_TIMEOUT_SECS, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub timeout: u64,
}

impl HealthCommand {
    /// Runs the command, writing the report to stdout.
    pub fn execute(self) -> Result<(), CliError> {
        with_stdout(|out| self.execute_to(out))
    }

    /// Runs the command, writing the report to `out`: one host's as the host
    /// sent it, several hosts' as [`render_report`] (or [`render_json`]).
    pub fn execute_to(self, out: &mut dyn Write) -> Result<(), CliError> {
        if let [url] = self.url.as_slice() {
            let client = Client::new(&ClientArgs {
                url: url.clone(),
                token: self.token.clone(),
                timeout: self.timeout,
            });
            let path = if self.json { "/v1/health" } else { "/v1/health/report" };
            let text = client.get_text(path)?;
            return write_text(out, &text);
        }
        let mut reporter = HealthReporter::new(Duration::from_secs(self.timeout));
        for url in &self.url {
            reporter.register(url.to_string(), RemoteHost::new(url.clone(), self.token.clone()));
        }
        let backends = reporter.health();
        let text = if self.json {
            render_json(&backends).to_string()
        } else {
            render_report(&backends)
        };
        write_text(out, &text)?;
        let down = backends.iter().filter(|b| b.result.is_err()).count();
        if down > 0 {
            return Err(CliError::BackendsDown {
                down,
                of: backends.len(),
            });
        }
        Ok(())
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
