//! Every bad input is refused with the key, where it was set, and what is
//! expected.

use super::*;

#[test]
fn unknown_key_in_the_file_names_the_key_and_the_file() {
    let file = File::new("[limits]\ntimeout = \"1s\"\ntimeuot = \"2s\"\n");
    assert_invalid(
        file.load(),
        "limits.timeuot",
        &file_origin(&file),
        &["unknown key", "timeout"],
    );

    let file = File::new("[serverr]\nlisten = \"127.0.0.1:1\"\n");
    assert_invalid(file.load(), "serverr", &file_origin(&file), &["unknown key", "server"]);

    let file = File::new("[tenants.acme]\nlevle = \"none\"\n");
    assert_invalid(
        file.load(),
        "tenants.acme.levle",
        &file_origin(&file),
        &["unknown key", "level"],
    );

    let file = File::new("[tenants.acme.limits]\nfule = 1\n");
    assert_invalid(
        file.load(),
        "tenants.acme.limits.fule",
        &file_origin(&file),
        &["unknown key", "fuel"],
    );

    let file = File::new("[plugins.echo]\nmode = \"per-process\"\n");
    assert_invalid(
        file.load(),
        "plugins.echo.mode",
        &file_origin(&file),
        &["unknown key", "instance"],
    );
}

#[test]
fn unknown_key_from_the_environment_names_the_variable() {
    let file = File::new("[limits]\ntimeout = \"1s\"\n");
    let result = file.load_env(&[("BULKHEAD_LIMITS__TIMEOUTT", "2s")]);
    assert_invalid(
        result,
        "limits.timeoutt",
        &env_origin("BULKHEAD_LIMITS__TIMEOUTT"),
        &["unknown key"],
    );

    let result = load_env(&[("BULKHEAD_TENANTS__ACME__TOKEN", "x")]);
    assert_invalid(
        result,
        "tenants.acme.token",
        &env_origin("BULKHEAD_TENANTS__ACME__TOKEN"),
        &["token_sha256"],
    );

    let result = load_env(&[("BULKHEAD_NOPE__X", "1")]);
    assert_invalid(result, "nope", &env_origin("BULKHEAD_NOPE__X"), &["unknown key"]);
}

#[test]
fn malformed_environment_variables_are_refused() {
    let var = "BULKHEAD_LIMITS__";
    assert_invalid(
        load_env(&[(var, "1")]),
        "limits.\"\"",
        &env_origin(var),
        &["BULKHEAD_SECTION__KEY"],
    );

    let env = [("BULKHEAD_LIMITS__TIMEOUT", "1s"), ("BULKHEAD_limits__timeout", "2s")];
    let err = load_env(&env).unwrap_err().to_string();
    assert!(err.contains("conflicts with BULKHEAD_LIMITS__TIMEOUT"), "{err}");
}

#[test]
fn bad_duration_names_the_key_the_file_and_what_is_expected() {
    let file = File::new("[limits]\ntimeout = \"10x\"\n");
    assert_invalid(
        file.load(),
        "limits.timeout",
        &file_origin(&file),
        &["\"10x\"", "unknown unit", "\"250ms\""],
    );

    let file = File::new("[isolation]\ngrace_period = 10\n");
    assert_invalid(
        file.load(),
        "isolation.grace_period",
        &file_origin(&file),
        &["no unit", "\"10s\""],
    );

    let var = "BULKHEAD_LIMITS__QUEUE_TIMEOUT";
    assert_invalid(
        load_env(&[(var, "soon")]),
        "limits.queue_timeout",
        &env_origin(var),
        &["\"soon\""],
    );
}

#[test]
fn bad_size_names_the_key_the_file_and_what_is_expected() {
    let file = File::new("[limits]\nmemory = \"64M\"\n");
    assert_invalid(
        file.load(),
        "limits.memory",
        &file_origin(&file),
        &["ambiguous", "MiB", "\"64MiB\""],
    );

    let file = File::new("[worker]\nmemory_max = -1\n");
    assert_invalid(file.load(), "worker.memory_max", &file_origin(&file), &["negative"]);

    let var = "BULKHEAD_SERVER__MAX_PAYLOAD";
    assert_invalid(
        load_env(&[(var, "big")]),
        "server.max_payload",
        &env_origin(var),
        &["\"big\"", "\"64MiB\""],
    );
}

#[test]
fn bad_level_names_the_key_the_file_and_the_choices() {
    let file = File::new("[isolation]\nlevel = \"sesion\"\n");
    let expected = ["\"sesion\"", "\"none\", \"namespace\", \"session\""];
    assert_invalid(file.load(), "isolation.level", &file_origin(&file), &expected);

    let file = File::new("[tenants.acme]\nlevel = \"process\"\n");
    assert_invalid(file.load(), "tenants.acme.level", &file_origin(&file), &expected[1..]);

    let file = File::new("[plugins.echo]\ninstance = \"per-call\"\n");
    assert_invalid(
        file.load(),
        "plugins.echo.instance",
        &file_origin(&file),
        &["\"per-request\", \"per-process\""],
    );
}

#[test]
fn bad_listen_address_names_the_key_the_file_and_the_expected_form() {
    let file = File::new("[server]\nlisten = \"localhost:8080\"\n");
    assert_invalid(
        file.load(),
        "server.listen",
        &file_origin(&file),
        &["\"localhost:8080\"", "\"127.0.0.1:8080\""],
    );

    let file = File::new("[server]\nlisten = 8080\n");
    assert_invalid(
        file.load(),
        "server.listen",
        &file_origin(&file),
        &["IP address and port"],
    );
}

#[test]
fn out_of_range_values_name_the_key_and_the_bounds() {
    let cases = [
        (
            "[limits]\nmax_queued = 0\n",
            "limits.max_queued",
            "expected 1 to 100000",
        ),
        (
            "[limits]\nmax_concurrent = 0\n",
            "limits.max_concurrent",
            "expected 1 to 1000",
        ),
        ("[limits]\ntimeout = \"0s\"\n", "limits.timeout", "expected 1ms to 1h"),
        (
            "[limits]\nmemory = \"5GiB\"\n[worker]\nmemory_max = \"8GiB\"\n",
            "limits.memory",
            "to 4GiB",
        ),
        ("[limits]\nmemory = 1024\n", "limits.memory", "expected 64KiB"),
        (
            "[isolation]\ngrace_period = \"6m\"\n",
            "isolation.grace_period",
            "expected 0s to 5m",
        ),
        (
            "[isolation]\nmax_processes = 0\n",
            "isolation.max_processes",
            "expected 1 to 4096",
        ),
        (
            "[procmgr]\nresync_interval = \"1ms\"\n",
            "procmgr.resync_interval",
            "expected 100ms",
        ),
        (
            "[procmgr]\nmetrics_namespace = \"9lives\"\n",
            "procmgr.metrics_namespace",
            "[a-zA-Z_][a-zA-Z0-9_]*",
        ),
        (
            "[procmgr]\nmetrics_namespace = \"a-b\"\n",
            "procmgr.metrics_namespace",
            "Prometheus",
        ),
        ("[worker]\npids_max = 1\n", "worker.pids_max", "expected 8 to"),
        ("[server]\nname = \"\"\n", "server.name", "1 to 128 characters"),
        ("[server]\nname = \"a\\nb\"\n", "server.name", "no control characters"),
        ("[server]\nmax_payload = \"17MiB\"\n", "server.max_payload", "to 16MiB"),
        (
            "[tenants.acme.limits]\ntimeout = \"2h\"\n",
            "tenants.acme.limits.timeout",
            "expected 1ms to 1h",
        ),
        ("[limits]\ncpu_weight = 0\n", "limits.cpu_weight", "expected 1 to 10000"),
        (
            "[tenants.acme.limits]\ncpu_max = 0.001\n",
            "tenants.acme.limits.cpu_max",
            "expected 0.01 CPUs to 1024 CPUs",
        ),
        ("[worker]\nuid = 0\n", "worker.uid", "expected 1 to"),
        (
            "[worker]\nmax_file_size = \"1KiB\"\n",
            "worker.max_file_size",
            "expected 1MiB",
        ),
    ];
    for (text, key, words) in cases {
        let file = File::new(text);
        assert_invalid(file.load(), key, &file_origin(&file), &[words]);
    }
}

#[test]
fn rules_between_keys_name_the_key_and_the_other_key() {
    let file = File::new("[worker]\nmemory_max = \"32MiB\"\n");
    assert_invalid(
        file.load(),
        "limits.memory",
        &Origin::Default,
        &["worker.memory_max (32MiB, config file"],
    );

    let file = File::new("[tenants.big.limits]\nmemory = \"1GiB\"\n");
    assert_invalid(
        file.load(),
        "tenants.big.limits.memory",
        &file_origin(&file),
        &["worker.memory_max (512MiB"],
    );

    let file = File::new("[isolation]\nmax_processes = 4\n[pool]\nwarm = 5\n");
    assert_invalid(
        file.load(),
        "pool.warm",
        &file_origin(&file),
        &["isolation.max_processes (4)"],
    );
}

#[test]
fn host_directories_inside_data_dir_cannot_be_a_tenants_directory() {
    let file = File::new("[data]\ndir = \"/srv/b\"\ncache_dir = \"/srv/b/cache\"\n");
    assert_invalid(
        file.load(),
        "data.cache_dir",
        &file_origin(&file),
        &["namespace \"cache\"", "/srv/b/.cache"],
    );

    let file = File::new("[data]\ndir = \"/srv/b\"\nplugins_dir = \"/srv/b\"\n");
    assert_invalid(
        file.load(),
        "data.plugins_dir",
        &file_origin(&file),
        &["data.dir itself"],
    );

    let file = File::new("[data]\ncache_dir = \"/x\"\nplugins_dir = \"/x\"\n");
    assert_invalid(
        file.load(),
        "data.plugins_dir",
        &file_origin(&file),
        &["data.cache_dir"],
    );

    let config = load("[data]\ndir = \"/srv/b\"\ncache_dir = \"/var/cache/b\"\nplugins_dir = \"/srv/b/.p\"\n").unwrap();
    assert_eq!(config.data.cache_dir, Path::new("/var/cache/b"));
}

#[test]
fn missing_config_file_is_an_error_naming_the_path() {
    let path = Path::new("/nonexistent/bulkhead.toml");
    let err = Config::load(Some(path), NO_ENV, &Overrides::default()).unwrap_err();
    assert!(matches!(err, ConfigError::Read { .. }), "{err:?}");
    assert!(err.to_string().contains("/nonexistent/bulkhead.toml"), "{err}");
}

#[test]
fn toml_syntax_error_names_the_file_and_the_line() {
    let file = File::new("[server]\nname = \"ok\"\nlisten = 127.0.0.1:80\n");
    let err = file.load().unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, ConfigError::Syntax { .. }), "{err:?}");
    assert!(text.contains(&file.path.display().to_string()), "{text}");
    assert!(text.contains("line 3"), "{text}");

    let file = File::new("[limits]\nfuel = 1\nfuel = 2\n");
    let text = file.load().unwrap_err().to_string();
    assert!(text.contains("line 3") && text.contains("fuel"), "{text}");
}
