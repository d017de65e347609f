//! Who is calling: the bearer token, checked against the configured digests.
//!
//! With no token configured, everyone is admin (the host refuses to listen
//! on a non-loopback address then). With tokens, every `/v1` call needs one:
//! the admin token may do everything, a tenant token may only invoke in its
//! own namespace and read its own processes, and the metrics token may only
//! read `/metrics`.
//!
//! With no token, the `Host` of every request must name the loopback
//! address the host listens on: a web page cannot then reach the API
//! through a DNS name it rebinds to 127.0.0.1.

use std::net::SocketAddr;

use axum::http::HeaderMap;
use axum::http::header::{AUTHORIZATION, HOST};

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
    /// The metrics token: `/metrics` only.
    Metrics,
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
            Caller::Metrics => Err(ApiError::new(
                ErrorKind::Forbidden,
                format!("the metrics token can only read /metrics, not {what}"),
            )),
        }
    }

    /// Refuses all but the admin and the metrics token.
    pub(super) fn require_metrics(&self) -> Result<(), ApiError> {
        match self {
            Caller::Admin | Caller::Metrics => Ok(()),
            Caller::Tenant(_) => self.require_admin("read /metrics"),
        }
    }

    /// Whether the caller may act in `namespace`.
    pub(super) fn may_use(&self, namespace: &str) -> bool {
        match self {
            Caller::Admin => true,
            Caller::Tenant(ns) => ns == namespace,
            Caller::Metrics => false,
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
        Identity::Metrics => Ok(Caller::Metrics),
        Identity::Unknown => Err(ApiError::new(ErrorKind::Unauthorized, "unknown token")),
    }
}

/// The `Host` values a request may carry when no token is configured: the
/// loopback address the host listens on, by number or as `localhost`.
#[derive(Debug, Clone)]
pub(crate) struct AllowedHosts(Option<Vec<String>>);

impl AllowedHosts {
    /// For a host listening on `address`; any `Host` when `auth` is on (the
    /// token is the check then).
    pub(crate) fn new(address: SocketAddr, auth: bool) -> Self {
        if auth {
            return Self(None);
        }
        let port = address.port();
        let mut hosts = vec![address.to_string(), format!("localhost:{port}")];
        match address {
            SocketAddr::V4(_) => hosts.push(format!("[::1]:{port}")),
            SocketAddr::V6(_) => hosts.push(format!("127.0.0.1:{port}")),
        }
        if port == 80 {
            hosts.extend([address.ip().to_string(), "localhost".to_owned()]);
        }
        Self(Some(hosts))
    }

    /// Refuses a request whose `Host` is not allowed.
    pub(super) fn check(&self, headers: &HeaderMap) -> Result<(), ApiError> {
        let Some(allowed) = &self.0 else {
            return Ok(());
        };
        let host = headers.get(HOST).and_then(|h| h.to_str().ok()).unwrap_or("");
        if allowed.iter().any(|a| a.eq_ignore_ascii_case(host)) {
            return Ok(());
        }
        let shown: String = host.chars().take(100).collect();
        Err(ApiError::new(
            ErrorKind::Forbidden,
            format!(
                "Host {shown:?} is not this host: with no token configured only local clients are trusted, so \
                 only Host {} is served (a web page could otherwise reach the API by DNS rebinding)",
                allowed.join(", ")
            ),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_host(host: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(HOST, host.parse().unwrap());
        headers
    }

    #[test]
    fn only_the_loopback_address_is_a_host_when_auth_is_off() {
        let allowed = AllowedHosts::new("127.0.0.1:8080".parse().unwrap(), false);
        for good in ["127.0.0.1:8080", "localhost:8080", "LOCALHOST:8080", "[::1]:8080"] {
            allowed.check(&with_host(good)).unwrap();
        }
        for bad in [
            "evil.example",
            "evil.example:8080",
            "127.0.0.1:8081",
            "localhost",
            "127.0.0.1",
        ] {
            let e = allowed.check(&with_host(bad)).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Forbidden, "{bad}");
        }
        assert!(allowed.check(&HeaderMap::new()).is_err(), "no Host at all");
        let on = AllowedHosts::new("127.0.0.1:8080".parse().unwrap(), true);
        on.check(&with_host("evil.example")).unwrap();
    }
}
