//! The error kinds of the public contract (`CONTRACT.md` section 2).
//!
//! Every failure a user can see maps to exactly one kind; the kind's string is
//! what appears in JSON error bodies, CLI output and the `outcome` label of
//! `bulkhead_requests_total`.

use std::fmt;
use std::str::FromStr;

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

    #[test]
    fn the_serialised_form_is_the_contract_name() {
        for kind in ErrorKind::ALL {
            let bytes = postcard::to_stdvec(&kind).unwrap();
            assert_eq!(postcard::from_bytes::<ErrorKind>(&bytes).unwrap(), kind);
        }
    }

    #[test]
    fn statuses_match_the_contract() {
        assert_eq!(ErrorKind::BulkheadFull.http_status(), 429);
        assert_eq!(ErrorKind::Timeout.http_status(), 504);
        assert_eq!(ErrorKind::WorkerCrashed.http_status(), 502);
        assert_eq!(ErrorKind::GuestError.http_status(), 422);
    }
}
