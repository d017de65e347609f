//! What can go wrong in a client command, as one-line messages with the exit
//! code each maps to (see the table in the module doc of [`crate::cli`]).

use std::fmt;
use std::io;
use std::path::PathBuf;

use serde::Deserialize;

/// Exit code: the server answered with an error.
pub const EXIT_SERVER: u8 = 1;
/// Exit code: usage error (clap uses the same code for its own).
pub const EXIT_USAGE: u8 = 2;
/// Exit code: the host could not be reached or the connection failed.
pub const EXIT_TRANSPORT: u8 = 3;
/// Exit code: a local file could not be read or the output not written.
pub const EXIT_LOCAL: u8 = 4;

/// The longest piece of a non-JSON error body quoted in a message.
const MAX_QUOTED_BODY: usize = 200;

/// A failed client command.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The server answered with a non-2xx status.
    #[error("{0}")]
    Server(ServerError),

    /// The server answered 2xx with a body that is not what the contract says.
    #[error("unexpected answer from bulkhead at {url}: {detail}")]
    Protocol { url: String, detail: String },

    /// The request could not be sent or no response came back.
    #[error(
        "cannot reach bulkhead at {url}: {source} (start it with `bulkhead serve`, or point --url or BULKHEAD_URL at it)"
    )]
    Unreachable { url: String, source: ureq::Error },

    /// The whole request took longer than `--timeout`.
    #[error("bulkhead at {url} did not answer within {secs} s (raise --timeout if the call may run longer)")]
    Timeout { url: String, secs: u64 },

    /// The connection broke while the response body was being read.
    #[error("connection to bulkhead at {url} failed while reading the answer: {detail}")]
    Interrupted { url: String, detail: String },

    /// The request could not be built from the given arguments.
    #[error("{0}")]
    Usage(String),

    /// A file to send could not be read.
    #[error("cannot read {}: {source}", path.display())]
    ReadInput { path: PathBuf, source: io::Error },

    /// The output could not be written.
    #[error("cannot write output: {0}")]
    Output(io::Error),

    /// A report over several hosts was printed, but some could not be
    /// asked (the report says why for each).
    #[error("{down} of {of} backends could not be asked for their health (the report says why)")]
    BackendsDown { down: usize, of: usize },
}

impl CliError {
    /// The process exit code for this error.
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Server(_) | Self::Protocol { .. } => EXIT_SERVER,
            Self::Usage(_) => EXIT_USAGE,
            Self::Unreachable { .. } | Self::Timeout { .. } | Self::Interrupted { .. } | Self::BackendsDown { .. } => {
                EXIT_TRANSPORT
            }
            Self::ReadInput { .. } | Self::Output(_) => EXIT_LOCAL,
        }
    }

    /// The server's error, if the server answered with one.
    pub fn server_error(&self) -> Option<&ServerError> {
        match self {
            Self::Server(err) => Some(err),
            _ => None,
        }
    }
}

impl From<ServerError> for CliError {
    fn from(err: ServerError) -> Self {
        Self::Server(err)
    }
}

/// A non-2xx answer: the contract's `{"error":{"kind","message","process_id"}}`
/// when the body is that, else the status and the body's text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerError {
    /// The HTTP status code.
    pub status: u16,
    /// The contract's error kind, e.g. `bulkhead_full`; `None` for a body that is not the contract's JSON.
    pub kind: Option<String>,
    /// The server's message, or the (shortened, one-line) body text when `kind` is `None`.
    pub message: String,
    /// The worker process the error concerns, if any.
    pub process_id: Option<String>,
    /// The `Retry-After` header, if present.
    pub retry_after: Option<String>,
}

#[derive(Deserialize)]
struct Envelope {
    error: ErrorBody,
}

#[derive(Deserialize)]
struct ErrorBody {
    kind: String,
    message: String,
    #[serde(default)]
    process_id: Option<String>,
}

impl ServerError {
    /// Interprets an error response's status, `Retry-After` header and body.
    pub fn from_parts(status: u16, retry_after: Option<&str>, body: &[u8]) -> Self {
        let retry_after = retry_after.map(one_line).filter(|value| !value.is_empty());
        match serde_json::from_slice::<Envelope>(body) {
            Ok(Envelope { error }) => Self {
                status,
                kind: Some(one_line(&error.kind)),
                message: one_line(&error.message),
                process_id: error.process_id.as_deref().map(one_line),
                retry_after,
            },
            Err(_) => Self {
                status,
                kind: None,
                message: shorten(&one_line(&String::from_utf8_lossy(body)), MAX_QUOTED_BODY),
                process_id: None,
                retry_after,
            },
        }
    }
}

impl fmt::Display for ServerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            Some(kind) => write!(f, "{kind}: {}", self.message)?,
            None => {
                let reason = http::StatusCode::from_u16(self.status)
                    .ok()
                    .and_then(|status| status.canonical_reason())
                    .unwrap_or("");
                write!(f, "server answered {} {reason}", self.status)?;
                if self.message.is_empty() {
                    f.write_str(" with an empty body")?;
                } else {
                    write!(f, ": {}", self.message)?;
                }
            }
        }
        if let Some(id) = &self.process_id {
            write!(f, " (process {id})")?;
        }
        if let Some(after) = &self.retry_after {
            if after.bytes().all(|b| b.is_ascii_digit()) {
                write!(f, "; retry after {after} s")?;
            } else {
                write!(f, "; retry after {after}")?;
            }
        }
        Ok(())
    }
}

/// Collapses every run of whitespace and control characters into one space,
/// so that text from the server cannot break the one-line message.
pub(crate) fn one_line(text: &str) -> String {
    text.split(|c: char| c.is_whitespace() || c.is_control())
        .filter(|word| !word.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

fn shorten(text: &str, max_chars: usize) -> String {
    match text.char_indices().nth(max_chars) {
        Some((cut, _)) => format!("{}...", &text[..cut]),
        None => text.to_owned(),
    }
}
