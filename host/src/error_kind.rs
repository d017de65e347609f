//! The error kinds of the public contract (`CONTRACT.md` section 2), and
//! the contract's rules for them: the HTTP status and whether an answer
//! carries `Retry-After`.
//!
//! Every failure a user can see maps to exactly one kind (each layer's error
//! enum has one `kind()` that says which); the kind's string is what appears
//! in JSON error bodies, CLI output and the `outcome` label of
//! `bulkhead_requests_total`.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// The `Retry-After` of an answer that must carry one when the failure
/// itself does not know better.
pub const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(1);

/// One error kind of the contract. Serialised as its contract name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// Bad or missing namespace/session, malformed input.
    InvalidRequest,
    /// Body over `server.max_payload`.
    PayloadTooLarge,
    /// Auth is on and no or an unknown token was given.
    Unauthorized,
    /// The token, plugin or session is not valid for this namespace.
    Forbidden,
    /// No plugin of that name.
    PluginNotFound,
    /// No process of that id.
    ProcessNotFound,
    /// The upload is not a valid component of the `bulkhead:plugin` world.
    InvalidPlugin,
    /// The process's concurrency and queue are full.
    BulkheadFull,
    /// The guest returned its own `error`.
    GuestError,
    /// The guest trapped (panic, unreachable, stack overflow).
    GuestTrap,
    /// The call used more than its fuel.
    FuelExhausted,
    /// The guest tried to grow memory past its limit.
    MemoryLimit,
    /// The call ran past its wall-clock deadline.
    Timeout,
    /// The worker process died during the call.
    WorkerCrashed,
    /// The worker cannot be started now.
    WorkerUnavailable,
}

impl ErrorKind {
    /// Every kind, in contract order.
    pub const ALL: [ErrorKind; 15] = [
        Self::InvalidRequest,
        Self::PayloadTooLarge,
        Self::Unauthorized,
        Self::Forbidden,
        Self::PluginNotFound,
        Self::ProcessNotFound,
        Self::InvalidPlugin,
        Self::BulkheadFull,
        Self::GuestError,
        Self::GuestTrap,
        Self::FuelExhausted,
        Self::MemoryLimit,
        Self::Timeout,
        Self::WorkerCrashed,
        Self::WorkerUnavailable,
    ];

    /// The contract's name of the kind, e.g. `fuel_exhausted`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::InvalidRequest => "invalid_request",
            Self::PayloadTooLarge => "payload_too_large",
            Self::Unauthorized => "unauthorized",
            Self::Forbidden => "forbidden",
            Self::PluginNotFound => "plugin_not_found",
            Self::ProcessNotFound => "process_not_found",
            Self::InvalidPlugin => "invalid_plugin",
            Self::BulkheadFull => "bulkhead_full",
            Self::GuestError => "guest_error",
            Self::GuestTrap => "guest_trap",
            Self::FuelExhausted => "fuel_exhausted",
            Self::MemoryLimit => "memory_limit",
            Self::Timeout => "timeout",
            Self::WorkerCrashed => "worker_crashed",
            Self::WorkerUnavailable => "worker_unavailable",
        }
    }

    /// The HTTP status the contract assigns to the kind.
    pub const fn http_status(self) -> u16 {
        match self {
            Self::InvalidRequest | Self::InvalidPlugin => 400,
            Self::Unauthorized => 401,
            Self::Forbidden => 403,
            Self::PluginNotFound | Self::ProcessNotFound => 404,
            Self::PayloadTooLarge => 413,
            Self::GuestError => 422,
            Self::BulkheadFull => 429,
            Self::GuestTrap | Self::FuelExhausted | Self::MemoryLimit => 500,
            Self::WorkerCrashed => 502,
            Self::WorkerUnavailable => 503,
            Self::Timeout => 504,
        }
    }

    /// Whether the contract says an answer of this kind carries `Retry-After`.
    pub const fn carries_retry_after(self) -> bool {
        matches!(self, Self::BulkheadFull | Self::WorkerUnavailable)
    }

    /// The `Retry-After` of an answer of this kind, in whole seconds
    /// (rounded up, at least 1): the failure's own `hint` when it has one,
    /// else [`DEFAULT_RETRY_AFTER`]; `None` for kinds that carry none.
    pub fn retry_after_secs(self, hint: Option<Duration>) -> Option<u64> {
        if !self.carries_retry_after() {
            return None;
        }
        let retry = hint.unwrap_or(DEFAULT_RETRY_AFTER);
        let secs = retry.as_secs() + u64::from(retry.subsec_nanos() > 0);
        Some(secs.max(1))
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The string was not the name of an error kind.
#[derive(Debug, thiserror::Error)]
#[error("unknown error kind {0:?}")]
pub struct UnknownErrorKind(String);

impl FromStr for ErrorKind {
    type Err = UnknownErrorKind;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|kind| kind.as_str() == s)
            .ok_or_else(|| UnknownErrorKind(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_round_trips_through_its_name() {
        for kind in ErrorKind::ALL {
            assert_eq!(kind.as_str().parse::<ErrorKind>().unwrap(), kind);
        }
        assert!("teapot".parse::<ErrorKind>().is_err());
    }

    /// `CONTRACT.md` section 2, literally: kind, HTTP status, and whether
    /// `Retry-After` is set.
    const CONTRACT: [(&str, u16, bool); 15] = [
        ("invalid_request", 400, false),
        ("payload_too_large", 413, false),
        ("unauthorized", 401, false),
        ("forbidden", 403, false),
        ("plugin_not_found", 404, false),
        ("process_not_found", 404, false),
        ("invalid_plugin", 400, false),
        ("bulkhead_full", 429, true),
        ("guest_error", 422, false),
        ("guest_trap", 500, false),
        ("fuel_exhausted", 500, false),
        ("memory_limit", 500, false),
        ("timeout", 504, false),
        ("worker_crashed", 502, false),
        ("worker_unavailable", 503, true),
    ];

    #[test]
    fn every_kind_has_the_contracts_name_status_and_retry_after() {
        assert_eq!(ErrorKind::ALL.len(), CONTRACT.len(), "a kind the table does not pin");
        for (kind, (name, status, retry)) in ErrorKind::ALL.into_iter().zip(CONTRACT) {
            assert_eq!(kind.as_str(), name);
            assert_eq!(kind.to_string(), name);
            assert_eq!(serde_json::to_value(kind).unwrap(), serde_json::json!(name), "{name}");
            assert_eq!(
                serde_json::from_value::<ErrorKind>(serde_json::json!(name)).unwrap(),
                kind
            );
            assert_eq!(kind.http_status(), status, "{name}");
            assert_eq!(kind.carries_retry_after(), retry, "{name}");
            assert_eq!(kind.retry_after_secs(None).is_some(), retry, "{name}");
        }
    }

    #[test]
    fn retry_after_is_whole_seconds_rounded_up_and_at_least_one() {
        let full = ErrorKind::BulkheadFull;
        assert_eq!(full.retry_after_secs(None), Some(1));
        assert_eq!(full.retry_after_secs(Some(Duration::ZERO)), Some(1));
        assert_eq!(full.retry_after_secs(Some(Duration::from_millis(1500))), Some(2));
        assert_eq!(full.retry_after_secs(Some(Duration::from_secs(4))), Some(4));
        assert_eq!(ErrorKind::Timeout.retry_after_secs(Some(Duration::from_secs(4))), None);
    }
}
