//! Pre-warmed tenants (`pool.prewarm`, `[tenants.NS] prewarm`) through the
//! real host: their processes exist before any call and `/readyz` waits for
//! them, their first call is warm, the idle reaper passes them by, and a
//! crash is followed by a new worker, again before any call.

use std::time::{Duration, Instant};

use super::{POLL, Server, config, scratch};

/// Asks `check` every few milliseconds until it holds; fails after 60 s.
fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let started = Instant::now();
    while !check() {
        assert!(started.elapsed() < Duration::from_secs(60), "{what}: not within 60 s");
        std::thread::sleep(POLL);
    }
}

#[test]
fn a_prewarmed_tenant_is_warm_at_its_first_call_kept_when_idle_and_restarted_after_a_crash() {
    let dir = scratch();
    let config = config(
        dir.path(),
        "[tenants.vip]\nprewarm = true\n[tenants.shared-vip]\nlevel = \"none\"\n",
    );
    let env = [
        ("BULKHEAD_ISOLATION__IDLE_TIMEOUT", "1s"),
        ("BULKHEAD_POOL__PREWARM", "[\"shared-vip\"]"),
    ];
    let server = Server::start_in(dir.path(), &config, &env);
    eventually("/readyz", || server.call("GET", "/readyz", &[], b"").status == 200);

    // Both processes are live before any call: ns:vip (level namespace) and
    // the shared one (shared-vip is at level none).
    for id in ["ns:vip", "shared"] {
        let process = server.call("GET", &format!("/v1/processes/{id}"), &[], b"").json();
        assert_eq!(process["healthy"], true, "{process}");
    }
    for (ns, id) in [("vip", "ns:vip"), ("shared-vip", "shared")] {
        let first = server.invoke(ns, "echo", "first");
        assert_eq!(first.status, 200, "{}", first.text());
        assert_eq!(first.header("x-bulkhead-cold-start"), Some("false"), "{ns}");
        assert_eq!(first.header("x-bulkhead-process-id"), Some(id));
    }
    let pid = server.worker_pids_of("ns:vip");

    // Another tenant's process is reaped once idle for a second; vip's
    // stays, with the same worker.
    let other = server.invoke("other", "echo", "x");
    assert_eq!(other.header("x-bulkhead-cold-start"), Some("true"));
    eventually("the idle process ns:other reaped", || {
        server.call("GET", "/v1/processes/ns:other", &[], b"").status == 404
    });
    assert_eq!(
        server.worker_pids_of("ns:vip"),
        pid,
        "a pre-warmed process is never idle"
    );

    // Its worker is killed: procmgr starts a new one with no call asking.
    crate::isolation::sigkill(pid);
    eventually("a new worker for ns:vip", || {
        let process = server.call("GET", "/v1/processes/ns:vip", &[], b"").json();
        process["healthy"] == true && process["pid"].as_u64().is_some_and(|p| p != u64::from(pid))
    });
    let after = server.invoke("vip", "echo", "after");
    assert_eq!(after.text(), "after");
    assert_eq!(after.header("x-bulkhead-cold-start"), Some("false"));
}
