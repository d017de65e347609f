//! The shipped files under `config/`: they load, the examples do what
//! they say, and `bulkhead.toml` documents exactly the keys and defaults.

use serde::de::{self, DeserializeOwned, Deserializer, Visitor};

use super::*;
use crate::config::raw::{
    RawAuth, RawData, RawIsolation, RawLimits, RawPlugin, RawPool, RawProcmgr, RawServer, RawTenant, RawTls, RawWorker,
};

/// Every `*.toml` in the shipped config directory and its `examples/`.
fn shipped_files() -> Vec<PathBuf> {
    let root = PathBuf::from(SHIPPED_CONFIG_DIR);
    let mut files = Vec::new();
    for dir in [root.clone(), root.join("examples")] {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "toml") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

#[test]
fn every_shipped_config_file_loads() {
    let files = shipped_files();
    assert!(files.len() >= 3, "{files:?}");
    for path in files {
        let config = Config::load(Some(&path), NO_ENV, &Overrides::default())
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        config.check_exposure().unwrap();
    }
}

#[test]
fn the_shipped_examples_do_what_their_comments_say() {
    let load = |name: &str| {
        let path = PathBuf::from(SHIPPED_CONFIG_DIR).join("examples").join(name);
        Config::load(Some(&path), NO_ENV, &Overrides::default()).unwrap()
    };
    let multi = load("multi-tenant.toml");
    assert_eq!(multi.isolation.level, IsolationLevel::Namespace);
    assert_eq!(multi.tokens().identify("example-admin-token"), Identity::Admin);
    for ns in ["acme", "globex", "initech"] {
        assert_eq!(
            multi.tokens().identify(&format!("example-{ns}-token")),
            Identity::Tenant(ns.into())
        );
    }
    assert!(!allowed(&multi, "globex", "counter"));
    assert!(policy(&multi, "initech").call.memory < multi.limits.memory);

    let secure = load("high-security-session.toml");
    assert_eq!(secure.isolation.level, IsolationLevel::Session);
    assert!(!secure.server.listen.ip().is_loopback());
    assert!(secure.pool.warm > 0);
    assert!(secure.worker.memory_max < WorkerLimits::DEFAULT_MEMORY_MAX);
    assert_eq!(
        secure.tokens().identify("example-acme-token"),
        Identity::Tenant("acme".into())
    );
}

#[test]
fn the_documented_default_file_equals_the_defaults() {
    let path = PathBuf::from(SHIPPED_CONFIG_DIR).join("bulkhead.toml");
    let config = Config::load(Some(&path), NO_ENV, &Overrides::default()).unwrap();
    assert_eq!(config, Config::default());
}

/// The keys serde accepts for a raw struct.
fn fields_of<T: DeserializeOwned>() -> Vec<&'static str> {
    struct Fields<'a>(&'a mut Vec<&'static str>);

    impl<'de> Deserializer<'de> for Fields<'_> {
        type Error = de::value::Error;

        fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
            Err(de::Error::custom("not a struct"))
        }

        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _: &'static str,
            fields: &'static [&'static str],
            _: V,
        ) -> Result<V::Value, Self::Error> {
            self.0.extend(fields);
            Err(de::Error::custom("fields recorded"))
        }

        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf option
            unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier ignored_any
        }
    }

    let mut fields = Vec::new();
    let _ = T::deserialize(Fields(&mut fields));
    assert!(!fields.is_empty());
    fields
}

#[test]
fn the_documented_default_file_mentions_every_key_and_no_other() {
    let text = std::fs::read_to_string(PathBuf::from(SHIPPED_CONFIG_DIR).join("bulkhead.toml")).unwrap();
    // (section header as written, commented or not) -> keys
    let sections: Vec<(&str, Vec<&str>)> = vec![
        (
            "[server]",
            fields_of::<RawServer>().into_iter().filter(|f| *f != "tls").collect(),
        ),
        ("[server.tls]", fields_of::<RawTls>()),
        ("[isolation]", fields_of::<RawIsolation>()),
        ("[procmgr]", fields_of::<RawProcmgr>()),
        ("[pool]", fields_of::<RawPool>()),
        ("[limits]", fields_of::<RawLimits>()),
        ("[worker]", fields_of::<RawWorker>()),
        ("[data]", fields_of::<RawData>()),
        ("[auth]", fields_of::<RawAuth>()),
        ("[plugins.NAME]", fields_of::<RawPlugin>()),
        (
            "[tenants.NAMESPACE]",
            fields_of::<RawTenant>()
                .into_iter()
                .filter(|f| *f != "limits")
                .collect(),
        ),
        ("[tenants.NAMESPACE.limits]", fields_of::<RawLimits>()),
    ];
    // Every `key = value` line, commented out or not, under its section.
    let mut section = "";
    let mut documented: Vec<(&str, &str)> = Vec::new();
    for line in text.lines() {
        let line = line.strip_prefix('#').unwrap_or(line).trim();
        if line.starts_with('[') && line.ends_with(']') {
            section = line;
        } else if let Some((key, _)) = line.split_once(" = ")
            && key
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        {
            documented.push((section, key));
        }
    }
    for (header, keys) in &sections {
        for key in keys {
            assert!(documented.contains(&(header, key)), "{header} {key} is not documented");
        }
    }
    for (header, key) in &documented {
        let known = sections.iter().any(|(h, keys)| h == header && keys.contains(key));
        assert!(known, "{header} {key} is documented but is not a key");
    }
}
