//! The raw configuration as written: every key optional, unknown keys
//! refused, and each single value parsed (durations, sizes, addresses,
//! levels, digests) while it is deserialized, so that figment can report a
//! bad value with its key and source. Ranges, cross-key rules and defaults
//! are applied by `validate.rs`; what each key means is documented on the
//! resolved types in `resolved.rs`.

use std::collections::BTreeMap;
use std::fmt::{self, Display};
use std::marker::PhantomData;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;

use figment::value::magic::RelativePathBuf;
use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};

use super::auth::TokenHash;
use super::units::{DurationValue, SizeValue};
use super::{InstanceMode, IsolationLevel};
use crate::compartment::SessionScope;

/// The whole file (or environment, or both merged).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawConfig {
    #[serde(default)]
    pub(crate) server: RawServer,
    #[serde(default)]
    pub(crate) isolation: RawIsolation,
    #[serde(default)]
    pub(crate) procmgr: RawProcmgr,
    #[serde(default)]
    pub(crate) pool: RawPool,
    #[serde(default)]
    pub(crate) limits: RawLimits,
    #[serde(default)]
    pub(crate) worker: RawWorker,
    #[serde(default)]
    pub(crate) data: RawData,
    #[serde(default)]
    pub(crate) auth: RawAuth,
    #[serde(default)]
    pub(crate) plugins: BTreeMap<String, RawPlugin>,
    #[serde(default)]
    pub(crate) tenants: BTreeMap<String, RawTenant>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawServer {
    pub(crate) listen: Option<ListenAddr>,
    pub(crate) max_payload: Option<SizeValue>,
    pub(crate) max_plugin_size: Option<SizeValue>,
    pub(crate) name: Option<String>,
    pub(crate) header_read_timeout: Option<DurationValue>,
    pub(crate) idle_timeout: Option<DurationValue>,
    pub(crate) body_read_timeout: Option<DurationValue>,
    pub(crate) write_timeout: Option<DurationValue>,
    pub(crate) shutdown_timeout: Option<DurationValue>,
    pub(crate) max_connections: Option<u32>,
    pub(crate) max_header_size: Option<SizeValue>,
    pub(crate) app_namespace_header: Option<String>,
    pub(crate) app_session_header: Option<String>,
    pub(crate) tls: Option<RawTls>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTls {
    /// Relative to the directory of the file that set it.
    pub(crate) cert: Option<RelativePathBuf>,
    pub(crate) key: Option<RelativePathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawIsolation {
    pub(crate) level: Option<IsolationLevel>,
    pub(crate) grace_period: Option<DurationValue>,
    pub(crate) idle_timeout: Option<DurationValue>,
    pub(crate) max_processes: Option<u32>,
    pub(crate) start_timeout: Option<DurationValue>,
    pub(crate) session_scope: Option<SessionScope>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawProcmgr {
    pub(crate) series_retention: Option<DurationValue>,
    pub(crate) resync_interval: Option<DurationValue>,
    pub(crate) backoff_period: Option<DurationValue>,
    pub(crate) metrics_namespace: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPool {
    pub(crate) warm: Option<u32>,
    pub(crate) prewarm: Option<Vec<String>>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawLimits {
    pub(crate) fuel: Option<u64>,
    pub(crate) memory: Option<SizeValue>,
    pub(crate) timeout: Option<DurationValue>,
    pub(crate) max_concurrent: Option<u32>,
    pub(crate) max_queued: Option<u32>,
    pub(crate) queue_timeout: Option<DurationValue>,
    pub(crate) cpu_weight: Option<u32>,
    pub(crate) cpu_max: Option<f64>,
    pub(crate) disk: Option<SizeValue>,
    pub(crate) disk_files: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawWorker {
    pub(crate) memory_max: Option<SizeValue>,
    pub(crate) pids_max: Option<u32>,
    pub(crate) open_files: Option<u32>,
    pub(crate) compile_memory_max: Option<SizeValue>,
    pub(crate) compile_timeout: Option<DurationValue>,
    pub(crate) sandbox: Option<crate::worker::SandboxMode>,
    pub(crate) uid: Option<u32>,
    pub(crate) gid: Option<u32>,
    pub(crate) max_file_size: Option<SizeValue>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawData {
    pub(crate) dir: Option<PathBuf>,
    pub(crate) cache_dir: Option<PathBuf>,
    pub(crate) plugins_dir: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAuth {
    pub(crate) admin_token_sha256: Option<TokenHash>,
    pub(crate) metrics_token_sha256: Option<TokenHash>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPlugin {
    /// Relative to the directory of the file that set it.
    pub(crate) path: Option<RelativePathBuf>,
    pub(crate) instance: Option<InstanceMode>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTenant {
    pub(crate) level: Option<IsolationLevel>,
    pub(crate) max_processes: Option<u32>,
    pub(crate) plugins: Option<Vec<String>>,
    pub(crate) token_sha256: Option<TokenHash>,
    pub(crate) http_allow: Option<Vec<String>>,
    pub(crate) prewarm: Option<bool>,
    #[serde(default)]
    pub(crate) limits: RawLimits,
}

/// `server.listen`: an IP address and a port.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ListenAddr(pub(crate) SocketAddr);

impl FromStr for ListenAddr {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        text.parse().map(Self).map_err(|_| {
            format!(
                "{text:?} is not an IP address and port; expected e.g. \"127.0.0.1:8080\", \"0.0.0.0:8080\" or \
                 \"[::1]:8080\" (host names such as localhost are not accepted)"
            )
        })
    }
}

impl<'de> Deserialize<'de> for ListenAddr {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        from_str_value(d, "an IP address and port")
    }
}

impl<'de> Deserialize<'de> for TokenHash {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        from_str_value(d, "a SHA-256 digest in hex")
    }
}

/// Deserializes a string through `T::from_str`, whose error becomes the
/// message (so it should say what is expected).
pub(crate) fn from_str_value<'de, D, T>(d: D, what: &'static str) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: FromStr,
    T::Err: Display,
{
    struct FromStrVisitor<T>(&'static str, PhantomData<T>);

    impl<T> Visitor<'_> for FromStrVisitor<T>
    where
        T: FromStr,
        T::Err: Display,
    {
        type Value = T;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "a string: {}", self.0)
        }

        fn visit_str<E: de::Error>(self, text: &str) -> Result<T, E> {
            text.parse().map_err(E::custom)
        }
    }

    d.deserialize_str(FromStrVisitor(what, PhantomData))
}
