//! Validated names: namespaces, session ids and plugin names.
//!
//! All must match `^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$` (`CONTRACT.md`
//! section 2 for namespaces and sessions; plugin names follow the same rule,
//! so a plugin's file in the store is one normal path component too). Because the first character is alphanumeric and `/` is not
//! allowed, a valid namespace is always one normal path component: it can
//! never be `.`, `..`, absolute, or contain a separator, so `data.dir/<ns>`
//! never names a path outside `data.dir`.

use std::fmt;
use std::ops::Deref;

/// The longest valid name, in bytes.
pub const MAX_NAME_LEN: usize = 128;

/// Why a name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// The name was empty.
    #[error("{what} is empty")]
    Empty { what: &'static str },
    /// The name was longer than [`MAX_NAME_LEN`].
    #[error("{what} is {len} bytes long; at most {MAX_NAME_LEN} are allowed")]
    TooLong { what: &'static str, len: usize },
    /// The name started with something other than a letter or digit.
    #[error("{what} {name:?} must start with a letter or digit")]
    BadStart { what: &'static str, name: String },
    /// The name held a character outside `[A-Za-z0-9._-]`.
    #[error("{what} {name:?} contains {ch:?}; only letters, digits, '.', '_' and '-' are allowed")]
    BadChar { what: &'static str, name: String, ch: char },
}

/// Checks `name` against the naming rule; `what` names it in the error.
pub(crate) fn validate(what: &'static str, name: &str) -> Result<(), NameError> {
    let Some(first) = name.chars().next() else {
        return Err(NameError::Empty { what });
    };
    if name.len() > MAX_NAME_LEN {
        return Err(NameError::TooLong { what, len: name.len() });
    }
    if !first.is_ascii_alphanumeric() {
        return Err(NameError::BadStart {
            what,
            name: name.to_owned(),
        });
    }
    if let Some(ch) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Err(NameError::BadChar {
            what,
            name: name.to_owned(),
            ch,
        });
    }
    Ok(())
}

macro_rules! name_type {
    ($(#[$doc:meta])* $ty:ident, $what:literal) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $ty(String);

        impl $ty {
            /// Validates `name`.
            pub fn new(name: impl Into<String>) -> Result<Self, NameError> {
                let name = name.into();
                validate($what, &name)?;
                Ok(Self(name))
            }

            /// The name as a string.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl Deref for $ty {
            type Target = str;

            fn deref(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl TryFrom<String> for $ty {
            type Error = NameError;

            fn try_from(name: String) -> Result<Self, NameError> {
                Self::new(name)
            }
        }

        impl From<$ty> for String {
            fn from(name: $ty) -> String {
                name.0
            }
        }

        impl std::str::FromStr for $ty {
            type Err = NameError;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::new(s)
            }
        }
    };
}

name_type!(
    /// A tenant namespace.
    Namespace,
    "namespace"
);
name_type!(
    /// A session id within a tenant.
    SessionId,
    "session"
);

name_type!(
    /// The name a plugin is deployed and invoked under.
    PluginName,
    "plugin name"
);

impl SessionId {
    /// The session used when a request names none and its level allows it.
    pub fn default_session() -> Self {
        Self("default".to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_names_are_accepted() {
        for name in ["a", "tenant-a", "A.b_c-9", "0", &"x".repeat(MAX_NAME_LEN)] {
            Namespace::new(name).unwrap();
            SessionId::new(name).unwrap();
        }
    }

    #[test]
    fn names_that_could_escape_a_directory_are_refused() {
        for name in [
            "", ".", "..", "../b", "a/b", "/abs", ".hidden", "-x", "a b", "a\0", "é", "a\\b",
        ] {
            assert!(Namespace::new(name).is_err(), "{name:?} was accepted");
        }
        let long = "x".repeat(MAX_NAME_LEN + 1);
        assert!(matches!(Namespace::new(long), Err(NameError::TooLong { .. })));
    }

    #[test]
    fn deserialising_validates() {
        let bytes = postcard::to_stdvec("../etc").unwrap();
        assert!(postcard::from_bytes::<Namespace>(&bytes).is_err());
        let bytes = postcard::to_stdvec(&Namespace::new("ok").unwrap()).unwrap();
        assert_eq!(postcard::from_bytes::<Namespace>(&bytes).unwrap().as_str(), "ok");
    }

    #[test]
    fn errors_name_what_was_wrong() {
        let err = Namespace::new("a/b").unwrap_err().to_string();
        assert!(err.contains("namespace") && err.contains("'/'"), "{err}");
        let err = SessionId::new("").unwrap_err().to_string();
        assert_eq!(err, "session is empty");
    }
}
