//! The resolved config as TOML, for `bulkhead config check`: every value as
//! it will be used (defaults filled in, tenants' effective level and limits),
//! tokens as their digests. Loading the output gives the same config.

use std::path::Path;

use toml::{Table, Value};

use super::resolved::{Config, Limits, PluginSource};
use super::units::{format_duration, format_size};

impl Config {
    /// The resolved values as a TOML document.
    pub fn to_toml(&self) -> String {
        let mut root = Table::new();

        let s = &self.server;
        root.insert(
            "server".into(),
            table([
                ("listen", s.listen.to_string().into()),
                ("max_payload", format_size(s.max_payload).into()),
                ("max_plugin_size", format_size(s.max_plugin_size).into()),
                ("name", s.name.clone().into()),
                (
                    "header_read_timeout",
                    format_duration(s.http.header_read_timeout).into(),
                ),
                ("idle_timeout", format_duration(s.http.idle_timeout).into()),
                ("body_read_timeout", format_duration(s.http.body_read_timeout).into()),
                ("write_timeout", format_duration(s.http.write_timeout).into()),
                ("shutdown_timeout", format_duration(s.http.shutdown_timeout).into()),
                ("max_connections", i64::from(s.http.max_connections).into()),
                ("max_header_size", format_size(s.http.max_header_size).into()),
                ("app_namespace_header", s.app_namespace_header.clone().into()),
                ("app_session_header", s.app_session_header.clone().into()),
            ]),
        );
        if let Some(tls) = &s.tls
            && let Some(Value::Table(server)) = root.get_mut("server")
        {
            server.insert(
                "tls".into(),
                table([("cert", path(&tls.cert)), ("key", path(&tls.key))]),
            );
        }

        let i = &self.isolation;
        root.insert(
            "isolation".into(),
            table([
                ("level", i.level.as_str().into()),
                ("grace_period", format_duration(i.grace_period).into()),
                ("idle_timeout", format_duration(i.idle_timeout).into()),
                ("max_processes", i64::from(i.max_processes).into()),
                ("start_timeout", format_duration(i.start_timeout).into()),
                ("session_scope", i.session_scope.as_str().into()),
            ]),
        );

        let p = &self.procmgr;
        root.insert(
            "procmgr".into(),
            table([
                ("resync_interval", format_duration(p.resync_interval).into()),
                ("backoff_period", format_duration(p.backoff_period).into()),
                ("metrics_namespace", p.metrics_namespace.clone().into()),
                ("series_retention", format_duration(p.series_retention).into()),
            ]),
        );

        let prewarm: Vec<String> = self.pool.prewarm.iter().map(ToString::to_string).collect();
        root.insert(
            "pool".into(),
            table([("warm", i64::from(self.pool.warm).into()), ("prewarm", prewarm.into())]),
        );
        root.insert("limits".into(), limits(&self.limits));

        let w = &self.worker;
        root.insert(
            "worker".into(),
            table([
                ("memory_max", format_size(w.memory_max).into()),
                ("pids_max", i64::from(w.pids_max).into()),
                ("open_files", i64::from(w.open_files).into()),
                ("compile_memory_max", format_size(w.compile_memory_max).into()),
                ("compile_timeout", format_duration(w.compile_timeout).into()),
                ("sandbox", w.sandbox.as_str().into()),
                ("uid", i64::from(w.uid).into()),
                ("gid", i64::from(w.gid).into()),
                ("max_file_size", format_size(w.max_file_size).into()),
            ]),
        );

        let d = &self.data;
        root.insert(
            "data".into(),
            table([
                ("dir", path(&d.dir)),
                ("cache_dir", path(&d.cache_dir)),
                ("plugins_dir", path(&d.plugins_dir)),
            ]),
        );

        let admin = self
            .auth
            .admin_token_sha256
            .map(|h| ("admin_token_sha256", h.to_string().into()));
        let metrics = self
            .auth
            .metrics_token_sha256
            .map(|h| ("metrics_token_sha256", h.to_string().into()));
        root.insert("auth".into(), table(admin.into_iter().chain(metrics)));

        let mut plugins = Table::new();
        for (name, plugin) in &self.plugins {
            let file = match &plugin.source {
                PluginSource::Builtin(_) => None,
                PluginSource::File(file) => Some(("path", path(file))),
            };
            let entry = file.into_iter().chain([("instance", plugin.instance.as_str().into())]);
            plugins.insert(name.clone(), table(entry));
        }
        root.insert("plugins".into(), Value::Table(plugins));

        let mut tenants = Table::new();
        for (ns, tenant) in &self.tenants {
            let mut entry = Table::new();
            entry.insert("level".into(), tenant.level.as_str().into());
            if let Some(max) = tenant.max_processes {
                entry.insert("max_processes".into(), i64::from(max).into());
            }
            if let Some(allowed) = &tenant.plugins {
                entry.insert("plugins".into(), allowed.iter().cloned().collect::<Vec<_>>().into());
            }
            if let Some(hash) = tenant.token_sha256 {
                entry.insert("token_sha256".into(), hash.to_string().into());
            }
            if !tenant.http_allow.is_empty() {
                entry.insert(
                    "http_allow".into(),
                    tenant.http_allow.iter().cloned().collect::<Vec<_>>().into(),
                );
            }
            entry.insert("limits".into(), limits(&tenant.limits));
            tenants.insert(ns.to_string(), Value::Table(entry));
        }
        if !tenants.is_empty() {
            root.insert("tenants".into(), Value::Table(tenants));
        }

        let body = toml::to_string(&root).expect("a TOML table always serializes");
        format!("# bulkhead: resolved configuration\n{body}")
    }
}

fn table<'a>(entries: impl IntoIterator<Item = (&'a str, Value)>) -> Value {
    Value::Table(entries.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
}

fn limits(limits: &Limits) -> Value {
    // Fuel fits in i64 for any value a config can hold (TOML integers are i64).
    let fuel = limits.fuel.map_or(0, |f| i64::try_from(f).unwrap_or(i64::MAX));
    table([
        ("fuel", fuel.into()),
        ("memory", format_size(limits.memory).into()),
        ("timeout", format_duration(limits.timeout).into()),
        ("max_concurrent", i64::from(limits.max_concurrent).into()),
        ("max_queued", i64::from(limits.max_queued).into()),
        ("queue_timeout", format_duration(limits.queue_timeout).into()),
        ("cpu_weight", i64::from(limits.cpu_weight).into()),
        (
            "cpu_max",
            limits.cpu_max_millicores.map_or(0.0, |m| f64::from(m) / 1000.0).into(),
        ),
        ("disk", limits.disk.map_or("0".into(), format_size).into()),
        (
            "disk_files",
            i64::try_from(limits.disk_files).unwrap_or(i64::MAX).into(),
        ),
    ])
}

/// Paths that are not UTF-8 are shown lossily.
fn path(path: &Path) -> Value {
    path.to_string_lossy().into_owned().into()
}
