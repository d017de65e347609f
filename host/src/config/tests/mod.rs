//! Tests of loading, layering, errors, per-tenant resolution, auth and the
//! shipped files, through the entry point [`Config::load`]; shared helpers.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tempfile::TempDir;

use super::*;

mod auth;
mod errors;
mod layering;
mod shipped;
mod tenants;

/// Where the shipped config files live (`config/` beside the package here;
/// `../config` when the package is `host/` in the workspace).
const SHIPPED_CONFIG_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../config");

const NO_ENV: [(&str, &str); 0] = [];

/// How the running host serves namespace `ns` under `config`: the path
/// production takes from a config to a tenant's level, limits and allow-list.
fn policy(config: &Config, ns: &str) -> crate::isolation::TenantPolicy {
    let namespace = crate::names::Namespace::new(ns).unwrap();
    crate::service::isolation_settings(config).policy(&namespace).clone()
}

/// Whether namespace `ns` may call `plugin` under `config`.
fn allowed(config: &Config, ns: &str, plugin: &str) -> bool {
    policy(config, ns).allows(plugin)
}

/// A config file in a fresh directory; the directory lives as long as the file.
struct File {
    dir: TempDir,
    path: PathBuf,
}

impl File {
    fn new(text: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bulkhead.toml");
        std::fs::write(&path, text).unwrap();
        Self { dir, path }
    }

    fn load(&self) -> Result<Config, ConfigError> {
        Config::load(Some(&self.path), NO_ENV, &Overrides::default())
    }

    fn load_env(&self, env: &[(&str, &str)]) -> Result<Config, ConfigError> {
        Config::load(Some(&self.path), env.iter().copied(), &Overrides::default())
    }
}

fn load(text: &str) -> Result<Config, ConfigError> {
    File::new(text).load()
}

fn load_env(env: &[(&str, &str)]) -> Result<Config, ConfigError> {
    Config::load(None, env.iter().copied(), &Overrides::default())
}

/// Asserts that `result` is an error about `key` set in `origin`, whose
/// message contains each of `words`.
#[track_caller]
fn assert_invalid(result: Result<Config, ConfigError>, key: &str, origin: &Origin, words: &[&str]) {
    let err = result.expect_err("the config should have been refused");
    let text = err.to_string();
    assert_eq!(err.key(), Some(key), "{text}");
    assert_eq!(err.origin(), Some(origin), "{text}");
    assert!(text.contains(key), "{text}");
    assert!(text.contains(&origin.to_string()), "{text}");
    for word in words {
        assert!(text.contains(word), "{word:?} missing from: {text}");
    }
}

fn file_origin(file: &File) -> Origin {
    Origin::File(file.path.clone())
}

fn env_origin(var: &str) -> Origin {
    Origin::Env(var.to_owned())
}
