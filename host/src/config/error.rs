//! Config errors. Each names what an operator must look at: the file that
//! could not be read or parsed (with its line), or the key whose value is
//! wrong together with where that value came from (file, environment
//! variable, flag, or the default).

use std::fmt;
use std::io;
use std::path::PathBuf;

/// Where a config value came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    /// The TOML file at this path.
    File(PathBuf),
    /// This environment variable.
    Env(String),
    /// This command-line flag.
    Flag(String),
    /// Nothing set it: the built-in default.
    Default,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::File(path) => write!(f, "config file {}", path.display()),
            Self::Env(var) => write!(f, "environment variable {var}"),
            Self::Flag(flag) => write!(f, "flag {flag}"),
            Self::Default => f.write_str("default"),
        }
    }
}

/// Why a config could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The config file could not be read (missing, unreadable, not UTF-8).
    #[error("cannot read config file {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        source: io::Error,
    },
    /// The config file is not valid TOML; the message has the line and column.
    #[error("config file {}: {message}", path.display())]
    Syntax {
        /// The file.
        path: PathBuf,
        /// The parser's message.
        message: String,
    },
    /// A key is unknown or its value is invalid.
    #[error("{key} ({origin}): {message}")]
    Invalid {
        /// The dotted key path, e.g. `limits.timeout` or `tenants.acme.level`.
        key: String,
        /// Where the offending value was set.
        origin: Origin,
        /// What is wrong and what is expected.
        message: String,
    },
}

impl ConfigError {
    pub(crate) fn invalid(path: &[&str], origin: Origin, message: impl Into<String>) -> Self {
        Self::Invalid {
            key: format_key(path),
            origin,
            message: message.into(),
        }
    }

    /// The offending key, when one value is to blame.
    pub fn key(&self) -> Option<&str> {
        match self {
            Self::Invalid { key, .. } => Some(key),
            Self::Read { .. } | Self::Syntax { .. } => None,
        }
    }

    /// Where the offending value came from, when one value is to blame.
    pub fn origin(&self) -> Option<&Origin> {
        match self {
            Self::Invalid { origin, .. } => Some(origin),
            Self::Read { .. } | Self::Syntax { .. } => None,
        }
    }
}

/// A key path as TOML writes it: `tenants.acme.level`, quoting a segment
/// that is not a bare key (`tenants."acme.eu".level`).
pub(crate) fn format_key<S: AsRef<str>>(path: &[S]) -> String {
    let segments: Vec<String> = path
        .iter()
        .map(|segment| {
            let segment = segment.as_ref();
            let bare = !segment.is_empty()
                && segment
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
            if bare {
                segment.to_owned()
            } else {
                format!("{segment:?}")
            }
        })
        .collect();
    segments.join(".")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_written_as_toml_paths() {
        assert_eq!(format_key(&["limits", "timeout"]), "limits.timeout");
        assert_eq!(
            format_key(&["tenants", "acme.eu", "level"]),
            "tenants.\"acme.eu\".level"
        );
        assert_eq!(format_key(&["tenants", ""]), "tenants.\"\"");
    }
}
