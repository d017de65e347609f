//! Raw -> resolved: fills in defaults, checks every value against its
//! bounds (the named consts in `resolved.rs`) and the rules between keys.
//! Each error names the key and where its value came from.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use super::IsolationLevel;
use super::auth::TokenHash;
use super::error::ConfigError;
use super::load::Locator;
use super::raw::{
    RawConfig, RawData, RawIsolation, RawLimits, RawPlugin, RawProcmgr, RawServer, RawTenant, RawTls, RawWorker,
};
use super::resolved::{
    AuthConfig, Config, DataConfig, HttpLimits, IsolationConfig, Limits, PluginConfig, PluginSource, PoolConfig,
    ProcmgrConfig, ServerConfig, TenantConfig, TlsFiles, WorkerLimits, builtin_plugins,
};
use super::units::{DurationValue, format_duration, format_size};
use crate::names::Namespace;

/// Resolves and validates `raw`; `locator` says where each value came from.
pub(crate) fn resolve(raw: RawConfig, locator: &Locator<'_>) -> Result<Config, ConfigError> {
    let check = Check { locator };
    let server = check.server(&raw.server)?;
    let isolation = check.isolation(&raw.isolation)?;
    let procmgr = check.procmgr(&raw.procmgr)?;
    let warm = raw.pool.warm.unwrap_or(PoolConfig::DEFAULT_WARM);
    if warm > isolation.max_processes {
        return Err(locator.error(
            &["pool", "warm"],
            format!(
                "{warm} is more than isolation.max_processes ({}); a pool larger than the workers it can feed only \
                 holds memory",
                isolation.max_processes
            ),
        ));
    }
    let worker = check.worker(&raw.worker)?;
    let limits = check.limits(&["limits"], &raw.limits, &Limits::default(), &worker)?;
    let data = check.data(raw.data)?;
    let plugins = check.plugins(raw.plugins, server.max_plugin_size)?;
    let prewarmed: Vec<String> = raw
        .tenants
        .iter()
        .filter(|(_, t)| t.prewarm == Some(true))
        .map(|(ns, _)| ns.clone())
        .collect();
    let tenants = check.tenants(raw.tenants, &isolation, &limits, &worker, &plugins)?;
    let prewarm = check.prewarm(raw.pool.prewarm.unwrap_or_default(), prewarmed, &isolation, &tenants)?;
    let config = Config {
        server,
        isolation,
        procmgr,
        pool: PoolConfig { warm, prewarm },
        limits,
        worker,
        data,
        auth: AuthConfig {
            admin_token_sha256: raw.auth.admin_token_sha256,
            metrics_token_sha256: raw.auth.metrics_token_sha256,
        },
        plugins,
        tenants,
    };
    check.unique_tokens(&config)?;
    config.check_exposure_from(locator.origin(&["server", "listen"]))?;
    Ok(config)
}

/// Checks namespaces and plugin names: `^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`
/// (the rule of [`crate::names`]), so a name is one normal path component
/// that never starts with `.`.
pub(crate) fn check_name(name: &str) -> Result<(), String> {
    crate::names::validate("name", name).map_err(|e| format!("{name:?} is not a valid name: {e}"))
}

struct Check<'a> {
    locator: &'a Locator<'a>,
}

impl Check<'_> {
    fn bounded<T: PartialOrd + Copy>(
        &self,
        path: &[&str],
        value: T,
        min: T,
        max: T,
        show: impl Fn(T) -> String,
    ) -> Result<T, ConfigError> {
        if value < min || value > max {
            let message = format!(
                "{} is out of range; expected {} to {}",
                show(value),
                show(min),
                show(max)
            );
            return Err(self.locator.error(path, message));
        }
        Ok(value)
    }

    fn duration(&self, path: &[&str], value: Duration, min: Duration, max: Duration) -> Result<Duration, ConfigError> {
        self.bounded(path, value, min, max, format_duration)
    }

    fn size(&self, path: &[&str], value: u64, min: u64, max: u64) -> Result<u64, ConfigError> {
        self.bounded(path, value, min, max, format_size)
    }

    fn count(&self, path: &[&str], value: u32, min: u32, max: u32) -> Result<u32, ConfigError> {
        self.bounded(path, value, min, max, |n| n.to_string())
    }

    fn server(&self, raw: &RawServer) -> Result<ServerConfig, ConfigError> {
        let d = ServerConfig::default();
        let name = raw.name.clone().unwrap_or(d.name);
        if name.is_empty() || name.chars().count() > ServerConfig::NAME_MAX_LEN || name.chars().any(char::is_control) {
            let message = format!(
                "{name:?} is not a valid backend name; expected 1 to {} characters and no control characters",
                ServerConfig::NAME_MAX_LEN
            );
            return Err(self.locator.error(&["server", "name"], message));
        }
        Ok(ServerConfig {
            listen: raw.listen.map_or(d.listen, |l| l.0),
            max_payload: self.size(
                &["server", "max_payload"],
                raw.max_payload.map_or(d.max_payload, |s| s.0),
                1,
                ServerConfig::MAX_PAYLOAD_CEILING,
            )?,
            max_plugin_size: self.size(
                &["server", "max_plugin_size"],
                raw.max_plugin_size.map_or(d.max_plugin_size, |s| s.0),
                1,
                ServerConfig::MAX_PLUGIN_SIZE_CEILING,
            )?,
            name,
            http: self.http(raw)?,
            tls: raw.tls.as_ref().map(|tls| self.tls(tls)).transpose()?,
            app_namespace_header: self.header_name(
                "app_namespace_header",
                raw.app_namespace_header.as_ref(),
                d.app_namespace_header,
            )?,
            app_session_header: self.header_name(
                "app_session_header",
                raw.app_session_header.as_ref(),
                d.app_session_header,
            )?,
        })
    }

    /// `server.KEY`, a lowercase HTTP header name.
    fn header_name(&self, key: &str, value: Option<&String>, default: String) -> Result<String, ConfigError> {
        let Some(name) = value else {
            return Ok(default);
        };
        match http::HeaderName::from_bytes(name.as_bytes()) {
            Ok(parsed) if parsed.as_str() == name => Ok(name.clone()),
            _ => Err(self.locator.error(
                &["server", key],
                format!("{name:?} is not a lowercase HTTP header name"),
            )),
        }
    }

    fn tls(&self, raw: &RawTls) -> Result<TlsFiles, ConfigError> {
        let file = |key: &str, path: &Option<figment::value::magic::RelativePathBuf>| {
            let path = path
                .as_ref()
                .ok_or_else(|| self.locator.error(&["server", "tls"], format!("{key} is required")))?
                .relative();
            std::path::absolute(&path).map_err(|e| {
                self.locator.error(
                    &["server", "tls", key],
                    format!("{:?} is not a usable path: {e}", path.display()),
                )
            })
        };
        let files = TlsFiles {
            cert: file("cert", &raw.cert)?,
            key: file("key", &raw.key)?,
        };
        crate::api::server::tls_config(&files).map_err(|e| self.locator.error(&["server", "tls"], e))?;
        Ok(files)
    }

    fn http(&self, raw: &RawServer) -> Result<HttpLimits, ConfigError> {
        let d = HttpLimits::default();
        let timeout = |key: &str, value: Option<DurationValue>, default: Duration| {
            self.duration(
                &["server", key],
                value.map_or(default, |v| v.0),
                Duration::from_millis(1),
                HttpLimits::TIMEOUT_CEILING,
            )
        };
        Ok(HttpLimits {
            header_read_timeout: timeout("header_read_timeout", raw.header_read_timeout, d.header_read_timeout)?,
            idle_timeout: timeout("idle_timeout", raw.idle_timeout, d.idle_timeout)?,
            body_read_timeout: timeout("body_read_timeout", raw.body_read_timeout, d.body_read_timeout)?,
            write_timeout: timeout("write_timeout", raw.write_timeout, d.write_timeout)?,
            shutdown_timeout: self.duration(
                &["server", "shutdown_timeout"],
                raw.shutdown_timeout.map_or(d.shutdown_timeout, |v| v.0),
                Duration::ZERO,
                HttpLimits::TIMEOUT_CEILING,
            )?,
            max_connections: self.count(
                &["server", "max_connections"],
                raw.max_connections.unwrap_or(d.max_connections),
                1,
                HttpLimits::MAX_CONNECTIONS_CEILING,
            )?,
            max_header_size: self.size(
                &["server", "max_header_size"],
                raw.max_header_size.map_or(d.max_header_size, |s| s.0),
                HttpLimits::MIN_HEADER_SIZE,
                HttpLimits::MAX_HEADER_SIZE_CEILING,
            )?,
        })
    }

    fn isolation(&self, raw: &RawIsolation) -> Result<IsolationConfig, ConfigError> {
        let d = IsolationConfig::default();
        Ok(IsolationConfig {
            level: raw.level.unwrap_or(d.level),
            grace_period: self.duration(
                &["isolation", "grace_period"],
                raw.grace_period.map_or(d.grace_period, |v| v.0),
                Duration::ZERO,
                IsolationConfig::GRACE_PERIOD_CEILING,
            )?,
            idle_timeout: self.duration(
                &["isolation", "idle_timeout"],
                raw.idle_timeout.map_or(d.idle_timeout, |v| v.0),
                Duration::ZERO,
                IsolationConfig::IDLE_TIMEOUT_CEILING,
            )?,
            max_processes: self.count(
                &["isolation", "max_processes"],
                raw.max_processes.unwrap_or(d.max_processes),
                1,
                IsolationConfig::MAX_PROCESSES_CEILING,
            )?,
            start_timeout: self.duration(
                &["isolation", "start_timeout"],
                raw.start_timeout.map_or(d.start_timeout, |v| v.0),
                Duration::from_millis(1),
                IsolationConfig::START_TIMEOUT_CEILING,
            )?,
            session_scope: raw.session_scope.unwrap_or(d.session_scope),
        })
    }

    fn procmgr(&self, raw: &RawProcmgr) -> Result<ProcmgrConfig, ConfigError> {
        let d = ProcmgrConfig::default();
        let metrics_namespace = raw.metrics_namespace.clone().unwrap_or(d.metrics_namespace);
        let valid = metrics_namespace.len() <= ProcmgrConfig::METRICS_NAMESPACE_MAX_LEN
            && metrics_namespace.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
            && metrics_namespace.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            let message = format!(
                "{metrics_namespace:?} is not a valid Prometheus metric name prefix; expected [a-zA-Z_][a-zA-Z0-9_]*, \
                 at most {} characters",
                ProcmgrConfig::METRICS_NAMESPACE_MAX_LEN
            );
            return Err(self.locator.error(&["procmgr", "metrics_namespace"], message));
        }
        Ok(ProcmgrConfig {
            resync_interval: self.duration(
                &["procmgr", "resync_interval"],
                raw.resync_interval.map_or(d.resync_interval, |v| v.0),
                ProcmgrConfig::RESYNC_INTERVAL_FLOOR,
                ProcmgrConfig::RESYNC_INTERVAL_CEILING,
            )?,
            backoff_period: self.duration(
                &["procmgr", "backoff_period"],
                raw.backoff_period.map_or(d.backoff_period, |v| v.0),
                Duration::from_millis(1),
                ProcmgrConfig::BACKOFF_PERIOD_CEILING,
            )?,
            metrics_namespace,
            series_retention: self.duration(
                &["procmgr", "series_retention"],
                raw.series_retention.map_or(d.series_retention, |v| v.0),
                Duration::ZERO,
                ProcmgrConfig::SERIES_RETENTION_CEILING,
            )?,
        })
    }

    fn worker(&self, raw: &RawWorker) -> Result<WorkerLimits, ConfigError> {
        let d = WorkerLimits::default();
        Ok(WorkerLimits {
            memory_max: self.size(
                &["worker", "memory_max"],
                raw.memory_max.map_or(d.memory_max, |v| v.0),
                WorkerLimits::MEMORY_MAX_FLOOR,
                u64::MAX,
            )?,
            pids_max: self.count(
                &["worker", "pids_max"],
                raw.pids_max.unwrap_or(d.pids_max),
                WorkerLimits::PIDS_MAX_FLOOR,
                u32::MAX,
            )?,
            open_files: self.count(
                &["worker", "open_files"],
                raw.open_files.unwrap_or(d.open_files),
                WorkerLimits::OPEN_FILES_FLOOR,
                WorkerLimits::OPEN_FILES_CEILING,
            )?,
            compile_memory_max: self.size(
                &["worker", "compile_memory_max"],
                raw.compile_memory_max.map_or(d.compile_memory_max, |v| v.0),
                WorkerLimits::COMPILE_MEMORY_MAX_FLOOR,
                u64::MAX,
            )?,
            compile_timeout: self.duration(
                &["worker", "compile_timeout"],
                raw.compile_timeout.map_or(d.compile_timeout, |v| v.0),
                WorkerLimits::COMPILE_TIMEOUT_FLOOR,
                WorkerLimits::COMPILE_TIMEOUT_CEILING,
            )?,
            sandbox: raw.sandbox.unwrap_or(d.sandbox),
            uid: self.count(&["worker", "uid"], raw.uid.unwrap_or(d.uid), 1, u32::MAX - 1)?,
            gid: self.count(&["worker", "gid"], raw.gid.unwrap_or(d.gid), 1, u32::MAX - 1)?,
            max_file_size: self.size(
                &["worker", "max_file_size"],
                raw.max_file_size.map_or(d.max_file_size, |v| v.0),
                WorkerLimits::MAX_FILE_SIZE_FLOOR,
                u64::MAX,
            )?,
        })
    }

    /// `raw` laid over `base`, checked; keys are reported under `prefix`.
    fn limits(
        &self,
        prefix: &[&str],
        raw: &RawLimits,
        base: &Limits,
        worker: &WorkerLimits,
    ) -> Result<Limits, ConfigError> {
        let key = |name: &'static str| -> Vec<&str> { prefix.iter().copied().chain([name]).collect() };
        let memory = raw.memory.map_or(base.memory, |v| v.0);
        let memory = self.size(&key("memory"), memory, Limits::MEMORY_FLOOR, Limits::MEMORY_CEILING)?;
        if memory > worker.memory_max {
            let message = format!(
                "{} is more than worker.memory_max ({}, {}): a call could not reach its limit before the kernel \
                 kills its worker",
                format_size(memory),
                format_size(worker.memory_max),
                self.locator.origin(&["worker", "memory_max"]),
            );
            return Err(self.locator.error(&key("memory"), message));
        }
        Ok(Limits {
            fuel: raw.fuel.map_or(base.fuel, |fuel| (fuel != 0).then_some(fuel)),
            memory,
            timeout: self.duration(
                &key("timeout"),
                raw.timeout.map_or(base.timeout, |v| v.0),
                Limits::TIMEOUT_FLOOR,
                Limits::TIMEOUT_CEILING,
            )?,
            max_concurrent: self.count(
                &key("max_concurrent"),
                raw.max_concurrent.unwrap_or(base.max_concurrent),
                1,
                Limits::MAX_CONCURRENT_CEILING,
            )?,
            max_queued: self.count(
                &key("max_queued"),
                raw.max_queued.unwrap_or(base.max_queued),
                1,
                Limits::MAX_QUEUED_CEILING,
            )?,
            queue_timeout: self.duration(
                &key("queue_timeout"),
                raw.queue_timeout.map_or(base.queue_timeout, |v| v.0),
                Duration::from_millis(1),
                Limits::QUEUE_TIMEOUT_CEILING,
            )?,
            cpu_weight: self.count(
                &key("cpu_weight"),
                raw.cpu_weight.unwrap_or(base.cpu_weight),
                1,
                Limits::CPU_WEIGHT_CEILING,
            )?,
            cpu_max_millicores: match raw.cpu_max {
                None => base.cpu_max_millicores,
                Some(0.0) => None,
                Some(cpus) => {
                    let cpus = self.bounded(
                        &key("cpu_max"),
                        cpus,
                        Limits::CPU_MAX_FLOOR,
                        Limits::CPU_MAX_CEILING,
                        |c| format!("{c} CPUs"),
                    )?;
                    Some((cpus * 1000.0).round() as u32)
                }
            },
            disk: match raw.disk.map(|v| v.0) {
                None => base.disk,
                Some(0) => None,
                Some(bytes) => Some(self.size(&key("disk"), bytes, Limits::DISK_FLOOR, u64::MAX)?),
            },
            disk_files: self.bounded(
                &key("disk_files"),
                raw.disk_files.unwrap_or(base.disk_files),
                Limits::DISK_FILES_FLOOR,
                u64::from(u32::MAX),
                |n| n.to_string(),
            )?,
        })
    }

    fn data(&self, raw: RawData) -> Result<DataConfig, ConfigError> {
        let dir = raw.dir.unwrap_or_else(|| PathBuf::from(DataConfig::DEFAULT_DIR));
        if dir.as_os_str().is_empty() {
            return Err(self
                .locator
                .error(&["data", "dir"], "is empty; expected a directory path"));
        }
        let defaults = DataConfig::under(&dir);
        let cache_dir = raw.cache_dir.unwrap_or(defaults.cache_dir);
        let plugins_dir = raw.plugins_dir.unwrap_or(defaults.plugins_dir);
        for (key, path) in [("cache_dir", &cache_dir), ("plugins_dir", &plugins_dir)] {
            if let Err(message) = check_private_dir(&dir, path) {
                return Err(self.locator.error(&["data", key], message));
            }
        }
        if cache_dir == plugins_dir {
            return Err(self
                .locator
                .error(&["data", "plugins_dir"], "is the same directory as data.cache_dir"));
        }
        Ok(DataConfig {
            dir,
            cache_dir,
            plugins_dir,
        })
    }

    fn plugins(
        &self,
        raw: BTreeMap<String, RawPlugin>,
        max_plugin_size: u64,
    ) -> Result<BTreeMap<String, PluginConfig>, ConfigError> {
        let mut plugins = builtin_plugins();
        for (name, plugin) in raw {
            let table = ["plugins", name.as_str()];
            check_name(&name).map_err(|message| self.locator.error(&table, message))?;
            let (source, default_instance) = match (plugin.path, crate::builtin::named(&name)) {
                (Some(path), _) => {
                    let key = ["plugins", name.as_str(), "path"];
                    let file = plugin_file(&path.relative(), max_plugin_size)
                        .map_err(|message| self.locator.error(&key, message))?;
                    (PluginSource::File(file), Default::default())
                }
                (None, Some(builtin)) => (PluginSource::Builtin(builtin), builtin.mode),
                (None, None) => {
                    let key = ["plugins", name.as_str(), "path"];
                    let message = "is missing; expected the path of a .wasm component, relative to the config \
                                   file's directory (only the built-in echo and counter may omit it)";
                    return Err(ConfigError::invalid(&key, self.locator.origin(&table), message));
                }
            };
            let instance = plugin.instance.unwrap_or(default_instance);
            plugins.insert(name, PluginConfig { source, instance });
        }
        Ok(plugins)
    }

    fn tenants(
        &self,
        raw: BTreeMap<String, RawTenant>,
        isolation: &IsolationConfig,
        limits: &Limits,
        worker: &WorkerLimits,
        plugins: &BTreeMap<String, PluginConfig>,
    ) -> Result<BTreeMap<Namespace, TenantConfig>, ConfigError> {
        let mut tenants = BTreeMap::new();
        for (ns, tenant) in raw {
            let namespace = Namespace::new(ns.as_str()).map_err(|e| {
                self.locator
                    .error(&["tenants", &ns], format!("{ns:?} is not a valid name: {e}"))
            })?;
            let allowed = match tenant.plugins {
                None => None,
                Some(list) => {
                    if let Some(unknown) = list.iter().find(|p| !plugins.contains_key(*p)) {
                        let known: Vec<&str> = plugins.keys().map(String::as_str).collect();
                        let message = format!(
                            "names plugin {unknown:?}, which is neither built in nor configured; known plugins: {}",
                            known.join(", ")
                        );
                        return Err(self.locator.error(&["tenants", &ns, "plugins"], message));
                    }
                    Some(list.into_iter().collect::<BTreeSet<_>>())
                }
            };
            let tenant_limits = self.limits(&["tenants", &ns, "limits"], &tenant.limits, limits, worker)?;
            let max_processes = tenant
                .max_processes
                .map(|n| self.count(&["tenants", &ns, "max_processes"], n, 1, isolation.max_processes))
                .transpose()?;
            let http_allow = self.http_allow(&ns, tenant.http_allow.unwrap_or_default())?;
            let resolved = TenantConfig {
                http_allow,
                max_processes,
                level: tenant.level.unwrap_or(isolation.level),
                plugins: allowed,
                token_sha256: tenant.token_sha256,
                limits: tenant_limits,
            };
            tenants.insert(namespace, resolved);
        }
        Ok(tenants)
    }

    /// `pool.prewarm` and the tenants with `prewarm = true`: namespaces, none
    /// at level `session`, their processes within `isolation.max_processes`.
    fn prewarm(
        &self,
        listed: Vec<String>,
        flagged: Vec<String>,
        isolation: &IsolationConfig,
        tenants: &BTreeMap<Namespace, TenantConfig>,
    ) -> Result<BTreeSet<Namespace>, ConfigError> {
        let mut prewarm = BTreeSet::new();
        let mut processes = BTreeSet::new();
        let entries = listed
            .into_iter()
            .map(|ns| (ns, true))
            .chain(flagged.into_iter().map(|ns| (ns, false)));
        for (ns, from_list) in entries {
            let key = if from_list {
                vec!["pool", "prewarm"]
            } else {
                vec!["tenants", ns.as_str(), "prewarm"]
            };
            let namespace = Namespace::new(ns.as_str()).map_err(|e| {
                self.locator
                    .error(&key, format!("{ns:?} is not a valid namespace: {e}"))
            })?;
            let level = tenants.get(&namespace).map_or(isolation.level, |t| t.level);
            if level == IsolationLevel::Session {
                let message = format!(
                    "names {ns:?}, whose level is session: its processes are one per session, so there is none to \
                     create before its calls"
                );
                return Err(self.locator.error(&key, message));
            }
            processes.insert(if level == IsolationLevel::None {
                None
            } else {
                Some(namespace.clone())
            });
            prewarm.insert(namespace);
        }
        // Pinned processes are never evicted: at least one slot stays for
        // every other tenant.
        if processes.len() >= isolation.max_processes as usize {
            let message = format!(
                "pre-warms {} processes, leaving no room under isolation.max_processes ({}) for other tenants' \
                 processes",
                processes.len(),
                isolation.max_processes
            );
            return Err(self.locator.error(&["pool", "prewarm"], message));
        }
        Ok(prewarm)
    }

    /// `tenants.NS.http_allow`: `host:port` entries.
    fn http_allow(&self, ns: &str, list: Vec<String>) -> Result<BTreeSet<String>, ConfigError> {
        let mut allowed = BTreeSet::new();
        for entry in list {
            let parsed = entry.parse::<http::uri::Authority>().ok().filter(|a| {
                a.port_u16().is_some_and(|p| p > 0)
                    && !a.as_str().contains('@')
                    && !a.host().is_empty()
                    && a.as_str() == entry.to_ascii_lowercase()
            });
            if parsed.is_none() {
                let message = format!(
                    "{entry:?} is not a lowercase host:port (such as \"127.0.0.1:8080\" or \"api.example.com:80\")"
                );
                return Err(self.locator.error(&["tenants", ns, "http_allow"], message));
            }
            allowed.insert(entry);
        }
        Ok(allowed)
    }

    /// No two callers may share a token: a digest must identify one caller.
    fn unique_tokens(&self, config: &Config) -> Result<(), ConfigError> {
        let mut seen: Vec<(TokenHash, Vec<&str>)> = Vec::new();
        let admin = config
            .auth
            .admin_token_sha256
            .map(|h| (h, vec!["auth", "admin_token_sha256"]));
        let metrics = config
            .auth
            .metrics_token_sha256
            .map(|h| (h, vec!["auth", "metrics_token_sha256"]));
        let tenants = config
            .tenants
            .iter()
            .filter_map(|(ns, t)| Some((t.token_sha256?, vec!["tenants", ns.as_str(), "token_sha256"])));
        for (hash, path) in admin.into_iter().chain(metrics).chain(tenants) {
            if let Some((_, first)) = seen.iter().find(|(h, _)| *h == hash) {
                let message = format!(
                    "is the same digest as {}; each token must identify exactly one caller",
                    super::error::format_key(first)
                );
                return Err(self.locator.error(&path, message));
            }
            seen.push((hash, path));
        }
        Ok(())
    }
}

/// A configured plugin file: absolute, existing, a file, and not too large.
fn plugin_file(path: &Path, max_plugin_size: u64) -> Result<PathBuf, String> {
    let path = std::path::absolute(path).map_err(|e| format!("{:?} is not a usable path: {e}", path.display()))?;
    let shown = path.display();
    let metadata = std::fs::metadata(&path).map_err(|e| format!("cannot read {shown}: {e}; expected a .wasm file"))?;
    if !metadata.is_file() {
        return Err(format!("{shown} is not a file; expected a .wasm component file"));
    }
    if metadata.len() > max_plugin_size {
        return Err(format!(
            "{shown} is {}, more than server.max_plugin_size ({})",
            format_size(metadata.len()),
            format_size(max_plugin_size)
        ));
    }
    Ok(path)
}

/// A directory for host state must not be `dir` nor a tenant's directory
/// inside it: below `dir`, its first component must not be a valid name.
fn check_private_dir(dir: &Path, path: &Path) -> Result<(), String> {
    let Ok(below) = path.strip_prefix(dir) else {
        return Ok(());
    };
    let Some(Component::Normal(first)) = below.components().next() else {
        return Err("is data.dir itself, whose subdirectories are the tenants' data".to_owned());
    };
    let first = first.to_string_lossy();
    if check_name(&first).is_ok() {
        return Err(format!(
            "{} is the data directory of namespace {first:?}: that tenant would get it as /data and could read or \
             replace what the host keeps there; use a name that starts with '.', e.g. {}",
            path.display(),
            dir.join(format!(".{first}")).display()
        ));
    }
    Ok(())
}
