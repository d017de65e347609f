//! Per-tenant levels, limits and allow-lists, and configured plugins.

use super::*;

#[test]
fn tenant_overrides_merge_with_the_global_limits() {
    let config = load(
        r#"
        [isolation]
        level = "none"
        [limits]
        timeout = "3s"
        max_concurrent = 10
        [tenants.small]
        level = "session"
        [tenants.small.limits]
        max_concurrent = 2
        fuel = 0
        [tenants.plain]
        "#,
    )
    .unwrap();
    let small = policy(&config, "small");
    assert_eq!(small.admission.max_concurrent, 2);
    assert_eq!(small.call.fuel, None);
    assert_eq!(
        small.call.timeout,
        Duration::from_secs(3),
        "inherited from [limits], not the default"
    );
    assert_eq!(small.call.memory, Limits::DEFAULT_MEMORY);
    let (plain, unlisted) = (policy(&config, "plain"), policy(&config, "unlisted"));
    assert_eq!(
        (plain.call.clone(), plain.admission.clone()),
        (unlisted.call.clone(), unlisted.admission.clone())
    );
    assert_eq!(unlisted.admission.max_concurrent, 10);
    assert_eq!(unlisted.call.timeout, Duration::from_secs(3));
    assert_eq!(small.level, IsolationLevel::Session);
    assert_eq!(plain.level, IsolationLevel::None);
    assert_eq!(unlisted.level, IsolationLevel::None);
}

#[test]
fn allow_lists_limit_the_plugins_a_tenant_may_call() {
    let config = load("[tenants.a]\nplugins = [\"echo\"]\n[tenants.none]\nplugins = []\n").unwrap();
    assert!(allowed(&config, "a", "echo"));
    assert!(!allowed(&config, "a", "counter"));
    assert!(!allowed(&config, "none", "echo"));
    assert!(allowed(&config, "unlisted", "counter"));
}

#[test]
fn allow_list_naming_an_unknown_plugin_is_refused() {
    let file = File::new("[tenants.acme]\nplugins = [\"echo\", \"ecoh\"]\n");
    assert_invalid(
        file.load(),
        "tenants.acme.plugins",
        &file_origin(&file),
        &["\"ecoh\"", "counter, echo"],
    );
}

#[test]
fn invalid_tenant_and_plugin_names_are_refused() {
    let file = File::new("[tenants.\".hidden\"]\nlevel = \"none\"\n");
    assert_invalid(
        file.load(),
        "tenants.\".hidden\"",
        &file_origin(&file),
        &["not a valid name"],
    );

    let file = File::new("[plugins.\"a/b\"]\npath = \"x.wasm\"\n");
    assert_invalid(
        file.load(),
        "plugins.\"a/b\"",
        &file_origin(&file),
        &["not a valid name"],
    );
}

#[test]
fn plugin_paths_are_relative_to_the_config_file() {
    let file = File::new("[plugins.mine]\npath = \"plugins/mine.wasm\"\ninstance = \"per-process\"\n");
    std::fs::create_dir(file.dir.path().join("plugins")).unwrap();
    std::fs::write(file.dir.path().join("plugins/mine.wasm"), b"\0asm").unwrap();
    let config = file.load().unwrap();
    let mine = &config.plugins["mine"];
    assert_eq!(
        mine.source,
        PluginSource::File(file.dir.path().join("plugins/mine.wasm"))
    );
    assert_eq!(mine.instance, InstanceMode::PerProcess);
    assert_eq!(
        config.plugins["echo"].source,
        PluginSource::Builtin(crate::builtin::ECHO),
        "built-ins stay"
    );
}

#[test]
fn plugin_files_must_exist_and_fit_the_size_limit() {
    let file = File::new("[plugins.mine]\npath = \"missing.wasm\"\n");
    assert_invalid(
        file.load(),
        "plugins.mine.path",
        &file_origin(&file),
        &["missing.wasm", "expected a .wasm file"],
    );

    let file = File::new("[plugins.mine]\ninstance = \"per-request\"\n");
    assert_invalid(file.load(), "plugins.mine.path", &file_origin(&file), &["is missing"]);

    let file = File::new("[server]\nmax_plugin_size = 2\n[plugins.mine]\npath = \"big.wasm\"\n");
    std::fs::write(file.dir.path().join("big.wasm"), b"\0asm").unwrap();
    assert_invalid(
        file.load(),
        "plugins.mine.path",
        &file_origin(&file),
        &["4B, more than server.max_plugin_size"],
    );

    let file = File::new("[plugins.mine]\npath = \".\"\n");
    assert_invalid(file.load(), "plugins.mine.path", &file_origin(&file), &["not a file"]);
}

#[test]
fn builtin_plugins_can_be_reconfigured_or_replaced() {
    let file = File::new("[plugins.counter]\ninstance = \"per-request\"\n[plugins.echo]\npath = \"echo.wasm\"\n");
    std::fs::write(file.dir.path().join("echo.wasm"), b"\0asm").unwrap();
    let config = file.load().unwrap();
    assert_eq!(
        config.plugins["counter"].source,
        PluginSource::Builtin(crate::builtin::COUNTER)
    );
    assert_eq!(config.plugins["counter"].instance, InstanceMode::PerRequest);
    assert_eq!(
        config.plugins["echo"].source,
        PluginSource::File(file.dir.path().join("echo.wasm"))
    );
}

#[test]
fn prewarm_lists_and_tenant_flags_resolve_to_one_set() {
    let config = load(
        r#"
        [pool]
        prewarm = ["acme", "initech"]
        [tenants.globex]
        prewarm = true
        [tenants.initech]
        level = "none"
        prewarm = true
        [tenants.quiet]
        prewarm = false
        "#,
    )
    .unwrap();
    let names: Vec<&str> = config
        .pool
        .prewarm
        .iter()
        .map(crate::names::Namespace::as_str)
        .collect();
    assert_eq!(names, ["acme", "globex", "initech"]);
    let settings = crate::service::isolation_settings(&config);
    assert_eq!(settings.prewarm, config.pool.prewarm);
    let rendered = config.to_toml();
    assert!(
        rendered.contains(r#"prewarm = ["acme", "globex", "initech"]"#),
        "{rendered}"
    );
}

#[test]
fn prewarm_refuses_sessions_bad_names_and_more_than_max_processes() {
    let file = File::new("[tenants.s]\nlevel = \"session\"\nprewarm = true\n");
    assert_invalid(
        file.load(),
        "tenants.s.prewarm",
        &file_origin(&file),
        &["level is session"],
    );
    let file = File::new("[isolation]\nlevel = \"session\"\n[pool]\nprewarm = [\"acme\"]\n");
    assert_invalid(
        file.load(),
        "pool.prewarm",
        &file_origin(&file),
        &["\"acme\"", "one per session"],
    );
    let file = File::new("[pool]\nprewarm = [\"bad name\"]\n");
    assert_invalid(
        file.load(),
        "pool.prewarm",
        &file_origin(&file),
        &["not a valid namespace"],
    );
    // Two tenants at level none share one process: they count once.
    let file = File::new(
        "[isolation]\nmax_processes = 3\n[pool]\nwarm = 0\nprewarm = [\"a\", \"b\", \"c\"]\n[tenants.b]\nlevel = \"none\"\n[tenants.c]\nlevel = \"none\"\n",
    );
    assert!(file.load().is_ok());
    let file = File::new("[isolation]\nmax_processes = 3\n[pool]\nwarm = 0\nprewarm = [\"a\", \"b\", \"c\"]\n");
    assert_invalid(
        file.load(),
        "pool.prewarm",
        &file_origin(&file),
        &["3 processes", "(3)", "no room"],
    );
}
