//! Defaults, file, environment and flags, each layer over the one before;
//! and the rendered config, which loads back to itself.

use super::*;

#[test]
fn defaults_are_loaded_when_nothing_is_configured() {
    let config = Config::load(None, NO_ENV, &Overrides::default()).unwrap();
    assert_eq!(config, Config::default());
    assert_eq!(config.server.listen, "127.0.0.1:8080".parse::<SocketAddr>().unwrap());
    assert_eq!(config.server.max_payload, 1 << 20);
    assert_eq!(config.server.max_plugin_size, 64 << 20);
    assert_eq!(config.server.name, "bulkhead");
    assert_eq!(config.isolation.level, IsolationLevel::Namespace);
    assert_eq!(config.isolation.grace_period, Duration::from_secs(10));
    assert_eq!(config.procmgr.resync_interval, Duration::from_secs(30));
    assert_eq!(config.procmgr.backoff_period, Duration::from_secs(5));
    assert_eq!(config.procmgr.metrics_namespace, "procmgr");
    assert_eq!(config.limits.fuel, Some(1_000_000_000));
    assert_eq!(config.limits.memory, 64 << 20);
    assert_eq!(config.data.cache_dir, Path::new("./bulkhead-data/.cache"));
    assert_eq!(config.plugins["echo"].instance, InstanceMode::PerRequest);
    assert_eq!(config.plugins["counter"].instance, InstanceMode::PerProcess);
    assert!(config.tenants.is_empty());
    assert!(!config.auth_enabled());
}

#[test]
fn file_values_override_the_defaults() {
    let config = load(
        r#"
        [server]
        listen = "127.0.0.1:0"
        max_payload = 4096
        [isolation]
        level = "session"
        idle_timeout = "0s"
        [limits]
        fuel = 0
        memory = "1.5MiB"
        timeout = "250ms"
        [data]
        dir = "/srv/bulkhead"
        "#,
    )
    .unwrap();
    assert_eq!(config.server.listen.port(), 0);
    assert_eq!(config.server.max_payload, 4096);
    assert_eq!(config.isolation.level, IsolationLevel::Session);
    assert_eq!(config.isolation.idle_timeout, Duration::ZERO);
    assert_eq!(config.limits.fuel, None, "fuel 0 is unlimited");
    assert_eq!(config.limits.memory, 3 << 19);
    assert_eq!(config.limits.timeout, Duration::from_millis(250));
    assert_eq!(config.data.plugins_dir, Path::new("/srv/bulkhead/.plugins"));
    // Untouched keys keep their defaults.
    assert_eq!(config.limits.max_queued, Limits::DEFAULT_MAX_QUEUED);
    assert_eq!(config.server.name, "bulkhead");
}

#[test]
fn environment_overrides_beat_the_file() {
    let file = File::new("[isolation]\nlevel = \"none\"\n[limits]\ntimeout = \"9s\"\nmax_queued = 3\n");
    let config = file
        .load_env(&[
            ("BULKHEAD_ISOLATION__LEVEL", "session"),
            ("BULKHEAD_LIMITS__TIMEOUT", "2s"),
            ("BULKHEAD_LIMITS__MAX_CONCURRENT", "3"),
            ("BULKHEAD_SERVER__NAME", "123"),
            ("BULKHEAD_TENANTS__ACME__LEVEL", "namespace"),
            ("BULKHEAD_TENANTS__ACME__PLUGINS", "[echo, counter]"),
            ("BULKHEAD_TENANTS__ACME__LIMITS__MEMORY", "8MiB"),
            ("BULKHEAD_URL", "http://127.0.0.1:9"),
            ("UNRELATED", "x"),
        ])
        .unwrap();
    assert_eq!(config.isolation.level, IsolationLevel::Session);
    assert_eq!(config.limits.timeout, Duration::from_secs(2));
    assert_eq!(config.limits.max_concurrent, 3);
    assert_eq!(
        config.limits.max_queued, 3,
        "the file's value stays where env says nothing"
    );
    assert_eq!(config.server.name, "123");
    let acme = policy(&config, "acme");
    assert_eq!(acme.level, IsolationLevel::Namespace);
    assert_eq!(acme.call.memory, 8 << 20);
    assert!(allowed(&config, "acme", "counter"));
}

#[test]
fn flags_beat_the_environment() {
    let file = File::new("[server]\nlisten = \"127.0.0.1:1\"\n");
    let overrides = Overrides {
        listen: Some("127.0.0.1:3".parse().unwrap()),
    };
    let env = [("BULKHEAD_SERVER__LISTEN", "127.0.0.1:2")];
    let config = Config::load(Some(&file.path), env, &overrides).unwrap();
    assert_eq!(config.server.listen.port(), 3);
}

#[test]
fn the_rendered_config_loads_back_to_the_same_config() {
    let example = PathBuf::from(SHIPPED_CONFIG_DIR).join("examples/multi-tenant.toml");
    let file = File::new("");
    std::fs::write(file.dir.path().join("mine.wasm"), b"\0asm").unwrap();
    let env = [(
        "BULKHEAD_PLUGINS__MINE__PATH",
        file.dir.path().join("mine.wasm").display().to_string(),
    )];
    let config = Config::load(Some(&example), env, &Overrides::default()).unwrap();
    let rendered = config.to_toml();
    assert!(rendered.contains("[tenants.initech.limits]"), "{rendered}");
    assert!(rendered.contains("timeout = \"500ms\""), "{rendered}");
    std::fs::write(&file.path, &rendered).unwrap();
    assert_eq!(file.load().unwrap(), config, "{rendered}");

    let defaults = Config::default().to_toml();
    std::fs::write(&file.path, &defaults).unwrap();
    assert_eq!(file.load().unwrap(), Config::default(), "{defaults}");
}
