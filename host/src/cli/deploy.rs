//! `bulkhead deploy`: uploads a plugin component to a running host.

use std::io::Write;
use std::path::PathBuf;

use serde::Deserialize;
use ureq::http::{Method, header};

use super::client::encode_segment;
use super::{CliError, Client, ClientArgs, with_stdout};

/// Uploads a `.wasm` component as plugin NAME (replacing it atomically if it exists).
#[derive(Debug, Clone, clap::Args)]
pub struct DeployCommand {
    /// The plugin component to upload.
    #[arg(value_name = "FILE.wasm")]
    pub file: PathBuf,

    /// The name the plugin is called by.
    #[arg(long, value_name = "NAME")]
    pub name: String,

    #[command(flatten)]
    pub client: ClientArgs,
}

/// The `201` body of `PUT /v1/plugins/{name}`.
#[derive(Debug, Deserialize)]
struct Deployed {
    name: String,
    sha256: String,
    size: serde_json::Number,
    compile_ms: serde_json::Number,
}

impl DeployCommand {
    /// Runs the command, writing the confirmation line to stdout.
    pub fn execute(self) -> Result<(), CliError> {
        with_stdout(|out| self.execute_to(out))
    }

    /// Runs the command, writing `deployed NAME (SIZE bytes, sha256 HEX, compiled in N ms)` to `out`.
    pub fn execute_to(self, out: &mut dyn Write) -> Result<(), CliError> {
        let bytes = std::fs::read(&self.file).map_err(|source| CliError::ReadInput {
            path: self.file.clone(),
            source,
        })?;
        let client = Client::new(&self.client);
        let path = format!("/v1/plugins/{}", encode_segment(&self.name));
        let headers = [(header::CONTENT_TYPE.as_str(), "application/wasm")];
        let mut response = client.send(Method::PUT, &path, &headers, Some(bytes))?;
        let body = client.read_body(&mut response)?;
        let deployed: Deployed = serde_json::from_slice(&body)
            .map_err(|err| client.protocol(format!("the deploy answer is not the contract's JSON: {err}")))?;
        writeln!(
            out,
            "deployed {} ({} bytes, sha256 {}, compiled in {} ms)",
            deployed.name, deployed.size, deployed.sha256, deployed.compile_ms
        )
        .map_err(CliError::Output)
    }
}
