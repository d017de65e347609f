//! Who is calling: the bearer token, checked against the configured digests.
//!
//! With no token configured, everyone is admin (the host refuses to listen
//! on a non-loopback address then). With tokens, every `/v1` call needs one:
//! the admin token may do everything, a tenant token may only invoke in its
//! own namespace and read its own processes.

use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;

use super::error::ApiError;
use crate::ErrorKind;
use crate::config::{Identity, Tokens};

/// The caller, once authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Caller {
    /// The admin token, or auth is off.
    Admin,
    /// A tenant token, bound to this namespace.
    Tenant(String),
}

impl Caller {
    /// Refuses tenants.
    pub(super) fn require_admin(&self, what: &str) -> Result<(), ApiError> {
        match self {
            Caller::Admin => Ok(()),
            Caller::Tenant(ns) => Err(ApiError::new(
                ErrorKind::Forbidden,
                format!("the token of namespace {ns} cannot {what}"),
            )),
        }
    }

    /// Whether the caller may act in `namespace`.
    pub(super) fn may_use(&self, namespace: &str) -> bool {
        match self {
            Caller::Admin => true,
            Caller::Tenant(ns) => ns == namespace,
        }
    }
}

/// Identifies the caller from the `Authorization` header.
pub(super) fn authenticate(tokens: &Tokens, headers: &HeaderMap) -> Result<Caller, ApiError> {
    if !tokens.enabled() {
        return Ok(Caller::Admin);
    }
    let Some(value) = headers.get(AUTHORIZATION) else {
        return Err(ApiError::new(
            ErrorKind::Unauthorized,
            "missing Authorization: Bearer <token>",
        ));
    };
    let token = value
        .to_str()
        .ok()
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| {
            ApiError::new(
                ErrorKind::Unauthorized,
                "the Authorization header must be `Bearer <token>`",
            )
        })?;
    match tokens.identify(token) {
        Identity::Admin => Ok(Caller::Admin),
        Identity::Tenant(ns) => Ok(Caller::Tenant(ns)),
        Identity::Unknown => Err(ApiError::new(ErrorKind::Unauthorized, "unknown token")),
    }
}
