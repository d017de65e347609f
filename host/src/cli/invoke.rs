//! `bulkhead invoke`: one call of a plugin for a tenant, the guest's output
//! on stdout byte for byte.

use std::io::Write;
use std::path::PathBuf;

use ureq::http::Method;

use super::client::encode_segment;
use super::{CliError, Client, ClientArgs, parse_header_value, with_stdout};

/// Calls a plugin once and prints the guest's output as it is.
#[derive(Debug, Clone, clap::Args)]
pub struct InvokeCommand {
    /// The plugin to call, e.g. `echo`.
    #[arg(value_name = "PLUGIN")]
    pub plugin: String,

    /// The tenant namespace the call runs in.
    #[arg(long, value_name = "NS", value_parser = parse_header_value)]
    pub namespace: String,

    /// The session within the namespace (required when the tenant's level is `session`).
    #[arg(long, value_name = "S", value_parser = parse_header_value)]
    pub session: Option<String>,

    /// The payload, as text.
    #[arg(long, value_name = "TEXT", conflicts_with = "file")]
    pub data: Option<String>,

    /// Read the payload from this file, as bytes.
    #[arg(long, value_name = "F")]
    pub file: Option<PathBuf>,

    #[command(flatten)]
    pub client: ClientArgs,
}

impl InvokeCommand {
    /// Runs the command, writing the guest's output to stdout.
    pub fn execute(self) -> Result<(), CliError> {
        with_stdout(|out| self.execute_to(out))
    }

    /// Runs the command, writing the guest's output to `out` (no newline added).
    pub fn execute_to(self, out: &mut dyn Write) -> Result<(), CliError> {
        // The payload is read before anything is sent: a missing file costs no request.
        let payload = match (self.data, &self.file) {
            (Some(data), _) => data.into_bytes(),
            (None, Some(path)) => std::fs::read(path).map_err(|source| CliError::ReadInput {
                path: path.clone(),
                source,
            })?,
            (None, None) => Vec::new(),
        };
        let client = Client::new(&self.client);
        let mut headers = vec![("x-bulkhead-namespace", self.namespace.as_str())];
        if let Some(session) = &self.session {
            headers.push(("x-bulkhead-session", session.as_str()));
        }
        let path = format!("/v1/invoke/{}", encode_segment(&self.plugin));
        let mut response = client.send(Method::POST, &path, &headers, Some(payload))?;
        client.copy_body(&mut response, out)?;
        out.flush().map_err(CliError::Output)
    }
}
