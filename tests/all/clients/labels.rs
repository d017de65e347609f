//! Calls to made-up plugin names cannot grow `/metrics` or the host.

use super::{HttpNeighbour, rss_kib};
use crate::service::{Server, config, scratch};

const CALLS: usize = 10_000;

#[test]
fn ten_thousand_made_up_plugin_names_leave_metrics_and_memory_flat() {
    let dir = scratch();
    let server = Server::start(&config(dir.path(), ""), &[]);
    let agent = crate::service::agent();
    let call = |ns: &str, name: &str| {
        let response = agent
            .post(&format!("{}/v1/invoke/{name}", server.url))
            .header("x-bulkhead-namespace", ns)
            .send(&b"x"[..])
            .unwrap();
        response.status().as_u16()
    };
    // Warm up: every path the attack takes, once, so what follows measures
    // growth, not first use.
    assert_eq!(call("tenant-a", "echo"), 200);
    for i in 0..200 {
        assert_eq!(call("tenant-a", &format!("warm-{i}")), 404);
        assert_eq!(call("locked", &format!("warm-{i}")), 403);
    }
    // The neighbour's own series exist before the baseline.
    let neighbour = HttpNeighbour::start(&server, "tenant-b", &[]);
    let metrics = || server.call("GET", "/metrics", &[], b"").text();
    let size_before = metrics().len();
    let rss_before = rss_kib(server.pid());
    let filler = "n".repeat(200);
    for i in 0..CALLS {
        // A tenant with every plugin (404) and one with an allow-list (403).
        let (ns, expected) = if i % 2 == 0 { ("tenant-a", 404) } else { ("locked", 403) };
        assert_eq!(call(ns, &format!("made-up-{i}-{filler}")), expected);
    }
    let text = metrics();
    let rss_after = rss_kib(server.pid());
    eprintln!(
        "{CALLS} made-up names: /metrics {size_before} -> {} bytes, host RSS {rss_before} -> {rss_after} KiB",
        text.len()
    );
    assert!(!text.contains("made-up"), "a made-up name became a label");
    assert!(text.contains(r#"plugin="_unknown""#), "{text}");
    // Only counter values changed (a few digits each).
    assert!(text.len() < size_before + 512, "{size_before} -> {}", text.len());
    assert!(rss_after < rss_before + 16 * 1024, "{rss_before} -> {rss_after} KiB");
    neighbour.assert_untouched("10,000 made-up plugin names");
}
