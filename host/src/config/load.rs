//! Loading: the built-in defaults, then the TOML file, then `BULKHEAD_*`
//! environment variables, then command-line flags, each later layer winning
//! key by key (tables merge, values and arrays replace).
//!
//! The file and the environment are figment providers whose metadata
//! remembers where each value came from (the file's path; each variable's
//! exact name), so every error, from figment or from validation, can name
//! the key and its source. Flags are applied to the raw config last.
//!
//! The built-in defaults are not a figment layer: `validate.rs` fills in
//! every key that no layer set from the named consts of `resolved.rs`, so
//! each default is written once (and `config/bulkhead.toml` is tested
//! against them).

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use figment::error::Kind;
use figment::providers::{Format, Toml};
use figment::value::{Dict, Map, Value};
use figment::{Figment, Metadata, Profile, Provider, Source};

use super::error::{ConfigError, Origin, format_key};
use super::raw::{ListenAddr, RawConfig};
use super::resolved::Config;
use super::validate;

/// Prefix of the environment variables read as config. Only variables of
/// the form `BULKHEAD_SECTION__KEY[__KEY...]` are config (keys are
/// lowercased, so a tenant or plugin named in a variable must be lowercase);
/// others such as `BULKHEAD_URL`, used by the CLI client, are left alone.
pub const ENV_PREFIX: &str = "BULKHEAD_";

/// Separator of key segments in an environment variable name.
const ENV_SEPARATOR: &str = "__";

/// Metadata names of the layers, which `origin_of` maps back to an [`Origin`].
const FILE_LAYER: &str = "config file";
const ENV_LAYER: &str = "environment variable";

/// Command-line flags, applied over the file and the environment.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Overrides {
    /// `--listen ADDR` of `bulkhead serve`: `server.listen`.
    pub listen: Option<SocketAddr>,
}

impl Overrides {
    /// The keys these flags set, with the flag that set each.
    fn keys(&self) -> Vec<(&'static [&'static str], &'static str)> {
        let mut keys: Vec<(&'static [&'static str], &'static str)> = Vec::new();
        if self.listen.is_some() {
            keys.push((&["server", "listen"], "--listen"));
        }
        keys
    }

    fn apply(&self, raw: &mut RawConfig) {
        if let Some(listen) = self.listen {
            raw.server.listen = Some(ListenAddr(listen));
        }
    }
}

impl Config {
    /// Loads `file` (if any) over the defaults, then the config variables
    /// among `env` (name, value pairs; pass [`process_env`] in production),
    /// then `overrides`, and validates the result, including that a
    /// non-loopback `server.listen` has a token.
    pub fn load<I, K, V>(file: Option<&Path>, env: I, overrides: &Overrides) -> Result<Config, ConfigError>
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        let mut figment = Figment::new();
        if let Some(path) = file {
            figment = figment.merge(FileLayer::read(path)?);
        }
        figment = figment.merge(EnvLayer::new(env)?);

        let mut raw: RawConfig = figment.extract_lossy().map_err(from_figment)?;
        overrides.apply(&mut raw);
        let locator = Locator {
            figment: Some(&figment),
            flags: overrides.keys(),
        };
        validate::resolve(raw, &locator)
    }

    /// [`Config::load`] with the process's environment.
    pub fn load_with_process_env(file: Option<&Path>, overrides: &Overrides) -> Result<Config, ConfigError> {
        Self::load(file, process_env()?, overrides)
    }
}

/// The process's `BULKHEAD_*` variables. A config variable whose value is not
/// UTF-8 is an error naming it.
pub fn process_env() -> Result<Vec<(String, String)>, ConfigError> {
    let mut vars = Vec::new();
    for (name, value) in std::env::vars_os() {
        let Some(path) = name.to_str().and_then(env_key) else {
            continue;
        };
        let name = name.to_string_lossy().into_owned();
        let value = value.into_string().map_err(|_: OsString| {
            let path: Vec<&str> = path.iter().map(String::as_str).collect();
            ConfigError::invalid(&path, Origin::Env(name.clone()), "its value is not UTF-8")
        })?;
        vars.push((name, value));
    }
    Ok(vars)
}

/// The key path a config variable sets (`BULKHEAD_LIMITS__TIMEOUT` ->
/// `limits.timeout`), or `None` for a variable that is not config.
fn env_key(name: &str) -> Option<Vec<String>> {
    let rest = name.strip_prefix(ENV_PREFIX).filter(|r| r.contains(ENV_SEPARATOR))?;
    Some(rest.split(ENV_SEPARATOR).map(str::to_ascii_lowercase).collect())
}

/// A parsed TOML file, tagged with its path.
struct FileLayer {
    path: PathBuf,
    dict: Dict,
}

impl FileLayer {
    fn read(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let dict = Toml::from_str::<Dict>(&text).map_err(|e| ConfigError::Syntax {
            path: path.to_owned(),
            message: e.to_string().trim_end().to_owned(),
        })?;
        Ok(Self {
            path: path.to_owned(),
            dict,
        })
    }
}

impl Provider for FileLayer {
    fn metadata(&self) -> Metadata {
        Metadata::named(FILE_LAYER).source(Source::File(self.path.clone()))
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        Ok(Map::from([(Profile::Default, self.dict.clone())]))
    }
}

/// The config variables, nested by their `__`-separated, lowercased names.
struct EnvLayer {
    dict: Dict,
    /// Key path -> the variable that set it, for error messages.
    names: Arc<BTreeMap<Vec<String>, String>>,
}

impl EnvLayer {
    fn new<I, K, V>(vars: I) -> Result<Self, ConfigError>
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        let mut dict = Dict::new();
        let mut names = BTreeMap::new();
        for (name, value) in vars {
            let (name, value) = (name.into(), value.into());
            let Some(path) = env_key(&name) else {
                continue;
            };
            let invalid = |message: &str| {
                let segments: Vec<&str> = path.iter().map(String::as_str).collect();
                ConfigError::invalid(&segments, Origin::Env(name.clone()), message)
            };
            if path.iter().any(String::is_empty) {
                return Err(invalid(
                    "a key segment is empty; expected BULKHEAD_SECTION__KEY, e.g. BULKHEAD_LIMITS__TIMEOUT",
                ));
            }
            // Structured values (`[echo, counter]`) are parsed; everything
            // else stays a string, read as a number where a number is expected.
            let value = if value.starts_with('[') || value.starts_with('{') {
                value.parse::<Value>().expect("parsing a figment value is infallible")
            } else {
                Value::from(value)
            };
            if let Err(at) = insert(&mut dict, &path, value) {
                let other = find_name(&names, &at).unwrap_or_else(|| "another variable".to_owned());
                return Err(invalid(&format!(
                    "it conflicts with {other}, which sets the same key or a table around it"
                )));
            }
            names.insert(path, name);
        }
        Ok(Self {
            dict,
            names: Arc::new(names),
        })
    }
}

/// Inserts `value` at `path`; on a conflict, returns the path where an
/// existing value stands in the way.
fn insert(dict: &mut Dict, path: &[String], value: Value) -> Result<(), Vec<String>> {
    let (last, parents) = path.split_last().expect("a variable has at least two segments");
    let mut table = dict;
    for (depth, segment) in parents.iter().enumerate() {
        let entry = table.entry(segment.clone()).or_insert_with(|| Value::from(Dict::new()));
        match entry {
            Value::Dict(_, inner) => table = inner,
            _ => return Err(path[..=depth].to_vec()),
        }
    }
    if table.contains_key(last) {
        return Err(path.to_vec());
    }
    table.insert(last.clone(), value);
    Ok(())
}

/// The variable that set `path` or, failing that, the nearest key around or
/// inside it.
fn find_name(names: &BTreeMap<Vec<String>, String>, path: &[String]) -> Option<String> {
    (1..=path.len())
        .rev()
        .find_map(|len| names.get(&path[..len]))
        .or_else(|| {
            names
                .iter()
                .find(|(key, _)| key.starts_with(path))
                .map(|(_, name)| name)
        })
        .cloned()
}

impl Provider for EnvLayer {
    fn metadata(&self) -> Metadata {
        let names = Arc::clone(&self.names);
        Metadata::named(ENV_LAYER).interpolater(move |_: &Profile, keys: &[&str]| {
            let path: Vec<String> = keys.iter().map(|k| (*k).to_owned()).collect();
            find_name(&names, &path).unwrap_or_else(|| {
                let upper: Vec<String> = path.iter().map(|k| k.to_ascii_uppercase()).collect();
                format!("{ENV_PREFIX}{}", upper.join(ENV_SEPARATOR))
            })
        })
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        Ok(Map::from([(Profile::Default, self.dict.clone())]))
    }
}

/// Finds where the value of a key came from.
#[derive(Debug, Default)]
pub(crate) struct Locator<'a> {
    figment: Option<&'a Figment>,
    flags: Vec<(&'static [&'static str], &'static str)>,
}

impl Locator<'_> {
    /// The origin of the value at `path`: the flag that set it, else the
    /// layer its value in the merged figment came from, else the default.
    pub(crate) fn origin(&self, path: &[&str]) -> Origin {
        if let Some((_, flag)) = self.flags.iter().find(|(key, _)| *key == path) {
            return Origin::Flag((*flag).to_owned());
        }
        let Some(figment) = self.figment else {
            return Origin::Default;
        };
        let Some((first, rest)) = path.split_first() else {
            return Origin::Default;
        };
        let Ok(mut value) = figment.find_value(first) else {
            return Origin::Default;
        };
        for segment in rest {
            let Value::Dict(_, mut dict) = value else {
                return Origin::Default;
            };
            match dict.remove(*segment) {
                Some(inner) => value = inner,
                None => return Origin::Default,
            }
        }
        match figment.get_metadata(value.tag()) {
            Some(metadata) => origin_of(metadata, path),
            None => Origin::Default,
        }
    }

    /// An error about the value at `path`.
    pub(crate) fn error(&self, path: &[&str], message: impl Into<String>) -> ConfigError {
        ConfigError::invalid(path, self.origin(path), message)
    }
}

fn origin_of<S: AsRef<str>>(metadata: &Metadata, path: &[S]) -> Origin {
    if let Some(file) = metadata.source.as_ref().and_then(Source::file_path) {
        return Origin::File(file.to_owned());
    }
    if metadata.name == ENV_LAYER {
        return Origin::Env(metadata.interpolate(&Profile::Default, path));
    }
    Origin::Default
}

/// Maps figment's first error to one naming the key and its source.
fn from_figment(error: figment::Error) -> ConfigError {
    let error = error
        .into_iter()
        .next()
        .expect("a figment error holds at least one error");
    let origin = error
        .metadata
        .as_ref()
        .map_or(Origin::Default, |metadata| origin_of(metadata, &error.path));
    let message = match &error.kind {
        Kind::UnknownField(_, expected) => format!("unknown key; expected one of {}", expected.join(", ")),
        Kind::UnknownVariant(found, expected) => {
            format!("unknown value {found:?}; expected one of {}", expected.join(", "))
        }
        Kind::InvalidType(found, expected) | Kind::InvalidValue(found, expected) => {
            format!("found {found}, expected {}", plain_type(expected))
        }
        other => other.to_string(),
    };
    ConfigError::Invalid {
        key: format_key(&error.path),
        origin,
        message,
    }
}

/// Serde's names of the types a key expects, in an operator's words.
fn plain_type(expected: &str) -> String {
    match expected {
        "u32" => "a whole number from 0 to 4294967295".to_owned(),
        "u64" => "a whole number, 0 or more".to_owned(),
        "a sequence" => "an array, e.g. [\"echo\", \"counter\"]".to_owned(),
        "a string" => "a string".to_owned(),
        "a map" => "a table".to_owned(),
        other if other.starts_with("struct ") => "a table".to_owned(),
        other => other.to_owned(),
    }
}
