//! Configuration: what the host runs with, and where each value came from.
//!
//! Two stages (`STYLE.md`): `raw.rs` deserializes the layers as written
//! (built-in defaults, then the TOML file, then `BULKHEAD_SECTION__KEY`
//! environment variables, then flags; unknown keys refused), and
//! `validate.rs` turns that into the resolved [`Config`], whose types in
//! `resolved.rs` document every knob. Every error names the key and the file,
//! variable or flag that set it ([`ConfigError`]).
//!
//! Also here: bearer-token digests and lookup ([`Tokens`]), the exposure
//! rule ([`Config::check_exposure`]) and the TOML rendering of `config check`
//! ([`Config::to_toml`]). The service turns a `Config` into the layers'
//! own settings (`crate::service::isolation_settings` and friends). `config/bulkhead.toml` documents every key for
//! operators; tests keep it equal to [`Config::default`].

mod auth;
mod error;
mod load;
mod raw;
mod render;
mod resolved;
pub mod units;
mod validate;

#[cfg(test)]
mod tests;

pub use self::auth::{Identity, TokenHash, Tokens, hash_token};
pub use self::error::{ConfigError, Origin};
pub use self::load::{ENV_PREFIX, Overrides, process_env};
pub use self::resolved::{
    AuthConfig, Config, DataConfig, HttpLimits, IsolationConfig, Limits, PluginConfig, PluginSource, PoolConfig,
    ProcmgrConfig, ServerConfig, TenantConfig, TlsFiles, WorkerLimits,
};
pub(crate) use self::units::format_duration;
pub use crate::compartment::IsolationLevel;
pub use crate::sandbox::InstanceMode;
