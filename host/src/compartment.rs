//! What a compartment is: the isolation levels, the key a request carries,
//! and the process id (the memo's mapping) that names the compartment. Every
//! layer from the wire protocol up uses these.

use std::fmt;
use std::str::FromStr;

use crate::names::{Namespace, SessionId};
use crate::procmgr::ProcessId;

/// How requests are grouped into worker processes.
///
/// Serialised (TOML, IPC) as its configuration name; an unknown name is an
/// error that lists the choices.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "&'static str")]
pub enum IsolationLevel {
    /// One worker for every request: process id `shared`.
    None,
    /// One worker per tenant: process id `ns:<namespace>`.
    #[default]
    Namespace,
    /// One worker per session: process id `session:<session>`.
    Session,
}

impl IsolationLevel {
    /// Every level.
    pub const ALL: [Self; 3] = [Self::None, Self::Namespace, Self::Session];

    /// The configuration name: `none`, `namespace`, `session`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Namespace => "namespace",
            Self::Session => "session",
        }
    }

    /// The memo's display name: `None`, `Namespace`, `Session`.
    pub const fn display_name(self) -> &'static str {
        match self {
            Self::None => "None",
            Self::Namespace => "Namespace",
            Self::Session => "Session",
        }
    }
}

impl From<IsolationLevel> for &'static str {
    fn from(level: IsolationLevel) -> Self {
        level.as_str()
    }
}

impl TryFrom<String> for IsolationLevel {
    type Error = String;

    fn try_from(name: String) -> Result<Self, String> {
        name.parse()
    }
}

impl fmt::Display for IsolationLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for IsolationLevel {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "none" => Ok(Self::None),
            "namespace" => Ok(Self::Namespace),
            "session" => Ok(Self::Session),
            other => Err(format!(
                "unknown isolation level {other:?}; expected one of \"none\", \"namespace\", \"session\""
            )),
        }
    }
}

/// Who a request is for.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct IsolationKey {
    pub namespace: Namespace,
    pub session: SessionId,
}

impl IsolationKey {
    /// The process id this key maps to at `level`.
    pub fn process_id(&self, level: IsolationLevel) -> ProcessId {
        match level {
            IsolationLevel::None => ProcessId::from("shared"),
            IsolationLevel::Namespace => ProcessId::from(format!("ns:{}", self.namespace)),
            IsolationLevel::Session => ProcessId::from(format!("session:{}", self.session)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(ns: &str, session: &str) -> IsolationKey {
        IsolationKey {
            namespace: ns.parse().unwrap(),
            session: session.parse().unwrap(),
        }
    }

    #[test]
    fn level_strings_match_the_memo() {
        assert_eq!(IsolationLevel::None.display_name(), "None");
        assert_eq!(IsolationLevel::Namespace.display_name(), "Namespace");
        assert_eq!(IsolationLevel::Session.display_name(), "Session");
        for level in [IsolationLevel::None, IsolationLevel::Namespace, IsolationLevel::Session] {
            assert_eq!(level.as_str().parse::<IsolationLevel>().unwrap(), level);
        }
        assert!("tenant".parse::<IsolationLevel>().unwrap_err().contains("tenant"));
    }

    #[test]
    fn process_ids_match_the_memo() {
        let k = key("tenant-a", "s1");
        assert_eq!(k.process_id(IsolationLevel::None).as_str(), "shared");
        assert_eq!(k.process_id(IsolationLevel::Namespace).as_str(), "ns:tenant-a");
        assert_eq!(k.process_id(IsolationLevel::Session).as_str(), "session:s1");
    }
}
