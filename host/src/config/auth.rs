//! Bearer tokens: the config holds only their SHA-256 digests, and a
//! presented token is identified by hashing it and comparing digests in
//! constant time.
//!
//! Storing digests means a leaked config file does not leak a usable token.
//! The tokens are expected to be long random strings (e.g. `openssl rand -hex
//! 32`), so a plain unsalted SHA-256 is enough: there is nothing to
//! brute-force that a salt would protect.

use std::fmt;
use std::str::FromStr;

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// SHA-256 of the empty string: configuring it would make an empty bearer
/// token valid, which is what `printf %s "$UNSET_VAR" | sha256sum` produces.
const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// The SHA-256 digest of `token`, as stored in the config.
pub fn hash_token(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// The SHA-256 digest of a bearer token, written in the config as 64 hex
/// digits (the output of `printf %s TOKEN | sha256sum`).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TokenHash([u8; 32]);

impl TokenHash {
    /// The digest of `token`.
    pub fn of(token: &str) -> Self {
        Self(hash_token(token))
    }

    /// The digest's bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Whether `digest` equals this one, in time independent of where they differ.
    fn matches(&self, digest: &[u8; 32]) -> bool {
        self.0.ct_eq(digest).into()
    }
}

impl fmt::Display for TokenHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for TokenHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TokenHash({self})")
    }
}

impl FromStr for TokenHash {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        const HOW: &str =
            "expected the 64 hex digits of the token's SHA-256, e.g. the output of `printf %s TOKEN | sha256sum`";
        if text.len() != 64 {
            return Err(format!("{} characters is not a SHA-256 digest; {HOW}", text.len()));
        }
        if text.eq_ignore_ascii_case(EMPTY_SHA256) {
            return Err(format!(
                "this is the SHA-256 of the empty string, which would make an empty token valid; {HOW}"
            ));
        }
        let mut digest = [0; 32];
        hex::decode_to_slice(text, &mut digest).map_err(|_| format!("{text:?} is not hexadecimal; {HOW}"))?;
        Ok(Self(digest))
    }
}

/// Who a bearer token belongs to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Identity {
    /// The admin token: every namespace and every admin endpoint.
    Admin,
    /// A tenant's token: only that namespace, no admin endpoints.
    Tenant(String),
    /// The metrics token: only `/metrics`.
    Metrics,
    /// No configured token matches.
    Unknown,
}

/// Every configured token digest and whom it identifies: the lookup table
/// the HTTP layer keeps. Built by [`Config::tokens`](super::Config::tokens).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tokens {
    admin: Option<TokenHash>,
    metrics: Option<TokenHash>,
    tenants: Vec<(TokenHash, String)>,
}

impl Tokens {
    pub(crate) fn new(admin: Option<TokenHash>, tenants: Vec<(TokenHash, String)>) -> Self {
        Self {
            admin,
            metrics: None,
            tenants,
        }
    }

    /// Adds the token that may only read `/metrics`.
    pub(crate) fn with_metrics(mut self, metrics: Option<TokenHash>) -> Self {
        self.metrics = metrics;
        self
    }

    /// Whether any token is configured; then every `/v1` call needs one.
    pub fn enabled(&self) -> bool {
        self.admin.is_some() || !self.tenants.is_empty()
    }

    /// Identifies a presented bearer token. Every configured digest is
    /// compared, without stopping at a match, in constant time each, so
    /// timing tells nothing about which digest (if any) matched. Validation
    /// guarantees that no two callers share a digest.
    pub fn identify(&self, bearer: &str) -> Identity {
        let digest = hash_token(bearer);
        let mut identity = Identity::Unknown;
        if self.admin.is_some_and(|admin| admin.matches(&digest)) {
            identity = Identity::Admin;
        }
        if self.metrics.is_some_and(|metrics| metrics.matches(&digest)) && identity == Identity::Unknown {
            identity = Identity::Metrics;
        }
        for (hash, namespace) in &self.tenants {
            if hash.matches(&digest) && identity == Identity::Unknown {
                identity = Identity::Tenant(namespace.clone());
            }
        }
        identity
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_hash_is_the_sha256_printed_by_sha256sum() {
        // printf %s secret | sha256sum
        let expected = "2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b";
        assert_eq!(TokenHash::of("secret").to_string(), expected);
        assert_eq!(expected.parse::<TokenHash>().unwrap(), TokenHash::of("secret"));
        assert_eq!(
            expected.to_uppercase().parse::<TokenHash>().unwrap(),
            TokenHash::of("secret")
        );
    }

    #[test]
    fn malformed_and_empty_token_hashes_are_refused() {
        assert!("abc".parse::<TokenHash>().unwrap_err().contains("3 characters"));
        assert!(
            "z".repeat(64)
                .parse::<TokenHash>()
                .unwrap_err()
                .contains("not hexadecimal")
        );
        assert!(EMPTY_SHA256.parse::<TokenHash>().unwrap_err().contains("empty string"));
    }

    #[test]
    fn tokens_identify_admin_tenant_and_unknown() {
        let tokens = Tokens::new(
            Some(TokenHash::of("root")),
            vec![
                (TokenHash::of("a-token"), "a".into()),
                (TokenHash::of("b-token"), "b".into()),
            ],
        );
        assert!(tokens.enabled());
        assert_eq!(tokens.identify("root"), Identity::Admin);
        assert_eq!(tokens.identify("b-token"), Identity::Tenant("b".into()));
        assert_eq!(tokens.identify("a-token"), Identity::Tenant("a".into()));
        assert_eq!(tokens.identify("nope"), Identity::Unknown);
        assert_eq!(tokens.identify(""), Identity::Unknown);
        assert!(!Tokens::default().enabled());
        assert_eq!(Tokens::default().identify("root"), Identity::Unknown);
    }
}
