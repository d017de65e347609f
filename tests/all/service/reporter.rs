//! `bulkhead health --url A --url B ...` (the memo's
//! `IsolationHealthReporter`) over real hosts: a section per host in the
//! memo's format under the host's `server.name`, a stopped host and one
//! that accepts but never answers reported as unreachable within the
//! timeout, and the totals.

use std::net::TcpListener;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use super::{BIN, Server, config, scratch};

/// Runs `bulkhead ARGS`; fails the test if it takes more than `within`.
fn bulkhead_within(args: &[&str], within: Duration) -> (Output, Duration) {
    let started = Instant::now();
    let out = crate::tools::output_within(Command::new(BIN).args(args).env_remove("BULKHEAD_URL"), within)
        .unwrap_or_else(|| panic!("bulkhead {args:?} did not finish within {within:?}"));
    (out, started.elapsed())
}

#[test]
fn health_over_several_hosts_has_a_section_each_and_names_the_unreachable_within_the_timeout() {
    let mut hosts = Vec::new();
    for name in ["alpha", "beta", "gamma"] {
        let dir = scratch();
        let config = config(dir.path(), "");
        let server = Server::start_in(dir.path(), &config, &[("BULKHEAD_SERVER__NAME", name)]);
        assert_eq!(server.invoke(&format!("{name}-tenant"), "echo", "hi").status, 200);
        hosts.push((dir, server));
    }
    let urls: Vec<String> = hosts.iter().map(|(_, s)| s.url.clone()).collect();
    // gamma is stopped; a fourth "host" accepts connections and never answers.
    let (_, gamma) = hosts.pop().unwrap();
    let (status, _) = gamma.terminate();
    assert!(status.success());
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_url = format!("http://{}", silent.local_addr().unwrap());

    let mut args = vec!["health", "--timeout", "3"];
    for url in urls.iter().chain([&silent_url]) {
        args.extend(["--url", url.as_str()]);
    }
    let (out, took) = bulkhead_within(&args, Duration::from_secs(60));
    let report = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{report}\n{stderr}");
    assert!(stderr.contains("2 of 4 backends could not be asked"), "{stderr}");
    // The silent host is given up on at the timeout, not waited for.
    assert!(took < Duration::from_secs(30), "{took:?}");
    assert!(
        report.starts_with("=== Isolation Health Report ===\n\nBackend: alpha\n  Total Processes: "),
        "{report}"
    );
    for name in ["alpha", "beta"] {
        let section = format!("\nBackend: {name}\n  Total Processes: 1\n  Running: 1\n");
        assert!(report.contains(&section), "{report}");
        let process = format!("\n  Process ns:{name}-tenant:\n    State: Syncing\n    Healthy: true\n");
        assert!(report.contains(&process), "{report}");
    }
    let stopped = format!(
        "\nBackend: {}\n  Unreachable: cannot reach bulkhead at {}",
        urls[2], urls[2]
    );
    assert!(report.contains(&stopped), "{report}");
    // The client gives up on it at 3 s; on a busy machine the reporter's
    // own deadline (2 s later) may come first.
    let hung = format!("\nBackend: {silent_url}\n  Unreachable: bulkhead at {silent_url} did not answer within 3 s");
    let given_up = format!("\nBackend: {silent_url}\n  Unreachable: no answer within 3s");
    assert!(report.contains(&hung) || report.contains(&given_up), "{report}");
    assert!(
        report.contains("\nTotals: 4 backends, 2 reachable, 2 unreachable\n  Total Processes: 2\n  Running: 2\n"),
        "{report}"
    );

    args.push("--json");
    let (out, _) = bulkhead_within(&args, Duration::from_secs(60));
    assert_eq!(out.status.code(), Some(3));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let names: Vec<&str> = json["backends"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["alpha", "beta", urls[2].as_str(), silent_url.as_str()]);
    assert_eq!(
        json["backends"][0]["health"]["processes"]["ns:alpha-tenant"]["healthy"],
        true
    );
    assert_eq!(json["backends"][2]["reachable"], false);
    assert_eq!(json["totals"]["running_processes"], 2);

    // All reachable: exit 0. One --url: the host's own report, as before.
    let (out, _) = bulkhead_within(
        &["health", "--url", &urls[0], "--url", &urls[1]],
        Duration::from_secs(60),
    );
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let (out, _) = bulkhead_within(&["health", "--url", &urls[1]], Duration::from_secs(60));
    assert_eq!(out.status.code(), Some(0));
    let own = String::from_utf8_lossy(&out.stdout);
    assert!(
        own.starts_with("=== Isolation Health Report ===\n\nBackend: beta\n"),
        "{own}"
    );
    assert!(!own.contains("Totals:"), "{own}");
    drop(silent);
}
