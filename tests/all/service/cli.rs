//! The CLI against a real host, and configuration errors at start.

use std::process::Command;

use super::{BIN, Server, config, scratch};

fn bulkhead(args: &[&str]) -> std::process::Output {
    Command::new(BIN).args(args).output().unwrap()
}

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn the_client_commands_work_against_a_real_host() {
    let dir = scratch();
    let server = Server::start(&config(dir.path(), ""), &[]);
    let url = server.url.as_str();
    let out = bulkhead(&[
        "invoke",
        "echo",
        "--namespace",
        "tenant-a",
        "--data",
        "hello",
        "--url",
        url,
    ]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(stdout(&out), "hello");

    let wasm = crate::sandbox::guest_path("counter");
    let out = bulkhead(&["deploy", wasm, "--name", "tally", "--url", url]);
    assert!(
        out.status.success() && stdout(&out).starts_with("deployed tally"),
        "{out:?}"
    );
    let out = bulkhead(&["invoke", "tally", "--namespace", "tenant-a", "--url", url]);
    assert_eq!(stdout(&out), "1");

    let out = bulkhead(&["processes", "--url", url]);
    assert!(stdout(&out).contains("ns:tenant-a"), "{out:?}");
    let out = bulkhead(&["health", "--url", url]);
    assert!(stdout(&out).starts_with("=== Isolation Health Report ==="), "{out:?}");

    let out = bulkhead(&[
        "invoke",
        "sleep",
        "--namespace",
        "tenant-a",
        "--data",
        "abc",
        "--url",
        url,
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("guest_error"), "{out:?}");

    let out = bulkhead(&["terminate", "ns:tenant-a", "--grace", "2", "--url", url]);
    assert!(out.status.success(), "{out:?}");
    let out = bulkhead(&["terminate", "ns:tenant-a", "--url", url]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("process_not_found"),
        "{out:?}"
    );
}

#[test]
fn config_check_prints_the_resolved_values_or_names_the_bad_key() {
    let dir = scratch();
    let good = dir.path().join("good.toml");
    std::fs::write(&good, "[isolation]\nlevel = \"session\"\n").unwrap();
    let out = bulkhead(&["config", "check", "--config", good.to_str().unwrap()]);
    assert!(out.status.success(), "{out:?}");
    assert!(stdout(&out).contains("level = \"session\""), "{}", stdout(&out));

    for (text, key) in [
        ("[isolation]\nlevle = \"session\"\n", "levle"),
        ("[limits]\ntimeout = \"10 parsecs\"\n", "limits.timeout"),
        ("[limits]\nmemory = \"lots\"\n", "limits.memory"),
        ("[isolation]\nlevel = \"galaxy\"\n", "isolation.level"),
        ("[server\nlisten = 1\n", "bad.toml"),
    ] {
        let bad = dir.path().join("bad.toml");
        std::fs::write(&bad, text).unwrap();
        let out = bulkhead(&["config", "check", "--config", bad.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(2), "{text}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(key), "{text}: {stderr}");
        // serve refuses the same file before binding anything.
        let out = bulkhead(&["serve", "--config", bad.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(2), "{text}");
    }

    let out = Command::new(BIN)
        .args(["config", "check"])
        .env("BULKHEAD_LIMITS__TIMEOUT", "soon")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("BULKHEAD_LIMITS__TIMEOUT"),
        "{out:?}"
    );
    let out = bulkhead(&["config", "check", "--config", "/no/such/file.toml"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("/no/such/file.toml"),
        "{out:?}"
    );
}

#[test]
fn an_unreachable_host_is_a_clear_error() {
    let out = bulkhead(&["processes", "--url", "http://127.0.0.1:1"]);
    assert_eq!(out.status.code(), Some(3));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("cannot reach bulkhead"),
        "{out:?}"
    );
}

#[test]
fn bench_cold_start_measures_every_level_and_the_baselines() {
    let out = bulkhead(&[
        "bench",
        "cold-start",
        "--iterations",
        "3",
        "--levels",
        "none,session",
        "--pool",
        "both",
        "--sandbox",
        "both",
        "--json",
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let rows = rows.as_array().unwrap();
    let keys: Vec<[String; 3]> = rows
        .iter()
        .map(|r| ["level", "pool", "sandbox"].map(|k| r[k].as_str().unwrap().to_owned()))
        .collect();
    let expected = [
        ["none", "on", "on"],
        ["none", "on", "off"],
        ["session", "on", "on"],
        ["session", "on", "off"],
        ["none", "off", "on"],
        ["none", "off", "off"],
        ["session", "off", "on"],
        ["session", "off", "off"],
        ["baseline:spawn", "-", "-"],
        ["baseline:in-process", "-", "-"],
    ];
    assert_eq!(keys, expected.map(|row| row.map(str::to_owned)));
    for row in rows {
        assert_eq!(row["n"], 3, "{row}");
        let (p50, p99, max) = (
            row["p50_us"].as_u64().unwrap(),
            row["p99_us"].as_u64().unwrap(),
            row["max_us"].as_u64().unwrap(),
        );
        assert!(p50 > 0 && p50 <= p99 && p99 <= max, "{row}");
    }
    let out = bulkhead(&[
        "bench",
        "cold-start",
        "--iterations",
        "2",
        "--levels",
        "namespace",
        "--pool",
        "on",
        "--idle-ms",
        "50",
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        table.lines().any(|l| l.starts_with("namespace") && l.contains(" on ")),
        "{table}"
    );
    let out = bulkhead(&["bench", "cold-start", "--idle-ms", "soon"]);
    assert_eq!(out.status.code(), Some(2), "a non-number idle time is a usage error");
    assert!(String::from_utf8_lossy(&out.stderr).contains("--idle-ms"));
    let out = bulkhead(&["bench", "cold-start", "--idle-ms", "60001"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "an idle time over a minute is a usage error"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("60001"));
    let out = bulkhead(&["bench", "cold-start", "--iterations", "0"]);
    assert_eq!(out.status.code(), Some(2), "zero iterations is a usage error");
    let out = bulkhead(&["bench", "cold-start", "--levels", "galaxy"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("galaxy"));
}
