//! `/metrics` is valid Prometheus text and its values move.

use std::collections::HashMap;

use super::{Server, config, scratch};

/// Parses the exposition with a real Prometheus text parser; returns
/// `name{labels}` -> value.
pub(crate) fn scrape(server: &Server) -> HashMap<String, f64> {
    scrape_as(server, &[])
}

/// [`scrape`] with these request headers (a token).
pub(crate) fn scrape_as(server: &Server, headers: &[(&str, &str)]) -> HashMap<String, f64> {
    let reply = server.call("GET", "/metrics", headers, b"");
    assert_eq!(reply.status, 200, "{}", reply.text());
    let text = reply.text();
    let lines = text.lines().map(|l| Ok(l.to_owned()));
    let scrape = prometheus_parse::Scrape::parse(lines).unwrap_or_else(|e| panic!("unparsable metrics ({e}):\n{text}"));
    scrape
        .samples
        .into_iter()
        .filter_map(|s| {
            let value = match s.value {
                prometheus_parse::Value::Counter(v)
                | prometheus_parse::Value::Gauge(v)
                | prometheus_parse::Value::Untyped(v) => v,
                _ => return None,
            };
            let mut labels: Vec<String> = s.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
            labels.sort();
            Some((format!("{}{{{}}}", s.metric, labels.join(",")), value))
        })
        .collect()
}

pub(crate) fn get(m: &HashMap<String, f64>, key: &str) -> f64 {
    m.get(key).copied().unwrap_or(0.0)
}

#[test]
fn metrics_parse_and_move_with_calls_faults_and_restarts() {
    let dir = scratch();
    let server = Server::start(&config(dir.path(), ""), &[]);
    let before = scrape(&server);
    assert_eq!(server.invoke("tenant-a", "echo", "x").status, 200);
    assert_eq!(server.invoke("tenant-a", "trap", "panic").status, 500);
    let pid = server.worker_pids_of("ns:tenant-a");
    crate::isolation::sigkill(pid);
    // The restart is asynchronous: watch the restart counter until it moves (bounded).
    let started = std::time::Instant::now();
    let after = loop {
        let m = scrape(&server);
        if get(&m, "procmgr_process_restarts_total{process_id=ns:tenant-a}") >= 1.0 {
            break m;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(30),
            "no restart counted"
        );
    };
    let ok = "bulkhead_requests_total{level=namespace,outcome=ok,plugin=echo}";
    let trap = "bulkhead_requests_total{level=namespace,outcome=guest_trap,plugin=trap}";
    assert_eq!(get(&after, ok) - get(&before, ok), 1.0);
    assert_eq!(get(&after, trap) - get(&before, trap), 1.0);
    assert!(get(&after, "bulkhead_guest_fuel_consumed_total{plugin=echo}") > 0.0);
    assert!(get(&after, "bulkhead_worker_exits_total{reason=crash}") >= 1.0);
    assert!(
        get(
            &after,
            "procmgr_process_state_transitions_total{from_state=Starting,process_id=ns:tenant-a,to_state=Syncing}"
        ) >= 1.0
    );
    assert!(after.contains_key("procmgr_work_queue_depth{}"));
    assert!(after.keys().any(|k| k.starts_with("bulkhead_workers{")));
    let text = server.call("GET", "/metrics", &[], b"").text();
    for name in [
        "procmgr_process_sync_duration_seconds",
        "procmgr_process_errors_total",
        "procmgr_work_queue_adds_total",
        "bulkhead_request_duration_seconds",
        "bulkhead_cold_start_seconds",
    ] {
        assert!(text.contains(&format!("# TYPE {name} ")), "{name} missing");
    }
}

#[test]
fn a_terminated_process_keeps_its_series_for_the_retention_then_they_go() {
    let dir = scratch();
    let server = Server::start(&config(dir.path(), ""), &[("BULKHEAD_PROCMGR__SERIES_RETENTION", "3s")]);
    assert_eq!(server.invoke("t2", "echo", "x").status, 200);
    let terminated = std::time::Instant::now();
    assert_eq!(
        server.call("DELETE", "/v1/processes/ns:t2?grace=1", &[], b"").status,
        200
    );
    assert_eq!(
        server.call("GET", "/v1/processes/ns:t2", &[], b"").status,
        404,
        "purged"
    );
    let m = scrape(&server);
    assert_eq!(
        get(
            &m,
            "procmgr_process_termination_duration_seconds_count{process_id=ns:t2}"
        ),
        1.0
    );
    for (from, to) in [("Terminating", "Terminated"), ("Terminated", "Finished")] {
        let key =
            format!("procmgr_process_state_transitions_total{{from_state={from},process_id=ns:t2,to_state={to}}}");
        assert_eq!(get(&m, &key), 1.0, "{key}");
    }
    // Gone after the retention (asked every 100 ms, bounded).
    let gone = loop {
        let text = server.call("GET", "/metrics", &[], b"").text();
        if !text.contains(r#"process_id="ns:t2""#) {
            break terminated.elapsed();
        }
        assert!(
            terminated.elapsed() < std::time::Duration::from_secs(30),
            "the series never went"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    eprintln!("series of a terminated process gone {gone:?} after the terminate (retention 3s)");
    assert!(gone >= std::time::Duration::from_millis(2500), "{gone:?}");
}
