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

/// How far a session id reaches: the memo's one space of session ids for
/// the whole host, or one per namespace.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "&'static str")]
pub enum SessionScope {
    /// One space for the host: a session's process id is
    /// `session:<session>`, and the process belongs to the namespace that
    /// created it (another namespace naming it gets `forbidden`).
    #[default]
    Global,
    /// One space per namespace: `session:<namespace>:<session>`, so no
    /// tenant can take another's session id.
    Namespace,
}

impl SessionScope {
    /// The configuration name: `global` or `namespace`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Global => "global",
            Self::Namespace => "namespace",
        }
    }
}

impl From<SessionScope> for &'static str {
    fn from(scope: SessionScope) -> Self {
        scope.as_str()
    }
}

impl TryFrom<String> for SessionScope {
    type Error = String;

    fn try_from(name: String) -> Result<Self, String> {
        name.parse()
    }
}

impl fmt::Display for SessionScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for SessionScope {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "global" => Ok(Self::Global),
            "namespace" => Ok(Self::Namespace),
            other => Err(format!(
                "unknown session scope {other:?}; expected one of \"global\", \"namespace\""
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
    /// The process id this key maps to at `level`, session ids reaching as
    /// far as `scope` says.
    pub fn process_id(&self, level: IsolationLevel, scope: SessionScope) -> ProcessId {
        match (level, scope) {
            (IsolationLevel::None, _) => ProcessId::from("shared"),
            (IsolationLevel::Namespace, _) => ProcessId::from(format!("ns:{}", self.namespace)),
            (IsolationLevel::Session, SessionScope::Global) => ProcessId::from(format!("session:{}", self.session)),
            (IsolationLevel::Session, SessionScope::Namespace) => {
                ProcessId::from(format!("session:{}:{}", self.namespace, self.session))
            }
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
        let global = SessionScope::Global;
        assert_eq!(k.process_id(IsolationLevel::None, global).as_str(), "shared");
        assert_eq!(k.process_id(IsolationLevel::Namespace, global).as_str(), "ns:tenant-a");
        assert_eq!(k.process_id(IsolationLevel::Session, global).as_str(), "session:s1");
    }

    #[test]
    fn a_namespace_scope_puts_the_namespace_in_session_ids_only() {
        let k = key("tenant-a", "s1");
        let scope = SessionScope::Namespace;
        assert_eq!(k.process_id(IsolationLevel::None, scope).as_str(), "shared");
        assert_eq!(k.process_id(IsolationLevel::Namespace, scope).as_str(), "ns:tenant-a");
        assert_eq!(
            k.process_id(IsolationLevel::Session, scope).as_str(),
            "session:tenant-a:s1"
        );
        assert_ne!(
            key("tenant-b", "s1").process_id(IsolationLevel::Session, scope),
            k.process_id(IsolationLevel::Session, scope),
            "two tenants' session s1 are two processes"
        );
        for scope in [SessionScope::Global, SessionScope::Namespace] {
            assert_eq!(scope.as_str().parse::<SessionScope>().unwrap(), scope);
        }
        assert!("tenant".parse::<SessionScope>().unwrap_err().contains("tenant"));
    }
}
