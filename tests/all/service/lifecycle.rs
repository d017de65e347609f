//! A host's life: deployed plugins survive restarts, replacement under load
//! loses no call, and SIGTERM under load ends cleanly.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use super::{Server, config, scratch, try_request};

/// Streams calls for `ns` until `stop`; returns every status seen.
fn stream(
    url: &str,
    ns: &'static str,
    plugin: &'static str,
    stop: &Arc<AtomicBool>,
) -> std::thread::JoinHandle<Vec<(u16, String)>> {
    let (url, stop) = (url.to_owned(), Arc::clone(stop));
    std::thread::spawn(move || {
        let mut seen = Vec::new();
        while !stop.load(Ordering::Relaxed) {
            let target = format!("{url}/v1/invoke/{plugin}");
            match try_request("POST", &target, &[("x-bulkhead-namespace", ns)], b"7") {
                Ok(reply) => seen.push((reply.status, reply.text())),
                // The host is gone (the SIGTERM test): nothing more to send.
                Err(_) => break,
            }
        }
        seen
    })
}

#[test]
fn a_deployed_plugin_survives_a_restart_of_the_host() {
    let dir = scratch();
    let text = config(dir.path(), "");
    let counter = std::fs::read(crate::sandbox::guest_path("counter")).unwrap();
    {
        let server = Server::start_in(dir.path(), &text, &[]);
        let reply = server.call("PUT", "/v1/plugins/tally?instance=per-process", &[], &counter);
        assert_eq!(reply.status, 201, "{}", reply.text());
        let json = reply.json();
        assert_eq!(json["name"], "tally");
        assert_eq!(json["size"], counter.len());
        assert_eq!(json["sha256"].as_str().unwrap().len(), 64);
        assert!(json["compile_ms"].is_u64());
        assert_eq!(server.invoke("tenant-a", "tally", "").text(), "1");
        assert_eq!(server.invoke("tenant-a", "tally", "").text(), "2");
        let (status, _) = server.terminate();
        assert!(status.success());
    }
    let server = Server::start_in(dir.path(), &text, &[]);
    let list = server.call("GET", "/v1/plugins", &[], b"").json();
    let tally = list
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "tally")
        .expect("tally is back");
    assert_eq!(tally["instance"], "per-process");
    assert_eq!(
        server.invoke("tenant-a", "tally", "").text(),
        "1",
        "a new worker, the same plugin"
    );
    assert_eq!(server.call("DELETE", "/v1/plugins/tally", &[], b"").status, 204);
    let (status, _) = server.terminate();
    assert!(status.success());
    let server = Server::start_in(dir.path(), &text, &[]);
    assert_eq!(
        server.invoke("tenant-a", "tally", "").status,
        404,
        "a removed plugin stays removed"
    );
}

#[test]
fn a_damaged_stored_plugin_is_listed_quarantined_and_the_host_serves_the_rest() {
    let dir = scratch();
    let text = config(dir.path(), "");
    let echo = std::fs::read(crate::sandbox::guest_path("echo")).unwrap();
    {
        let server = Server::start_in(dir.path(), &text, &[]);
        assert_eq!(server.call("PUT", "/v1/plugins/doomed", &[], &echo).status, 201);
        assert!(server.terminate().0.success());
    }
    // Truncated on disk while the host is down.
    let stored = dir.path().join("data/.plugins/doomed.plugin");
    let data = std::fs::read(&stored).unwrap();
    std::fs::write(&stored, &data[..data.len() / 3]).unwrap();
    let server = Server::start_in(dir.path(), &text, &[]);
    let list = server.call("GET", "/v1/plugins", &[], b"").json();
    let doomed = list
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "doomed")
        .expect("listed");
    assert!(
        doomed["quarantined"]
            .as_str()
            .unwrap()
            .contains("the stored file is damaged"),
        "{doomed}"
    );
    let json = server
        .invoke("tenant-a", "doomed", "x")
        .assert_error(bulkhead::ErrorKind::WorkerUnavailable);
    assert!(
        json["error"]["message"].as_str().unwrap().contains("quarantined"),
        "{json}"
    );
    assert_eq!(
        server.invoke("tenant-a", "echo", "up").text(),
        "up",
        "the rest is served"
    );
}

#[test]
fn replacing_a_plugin_under_load_loses_no_call() {
    let dir = scratch();
    let server = Server::start(&config(dir.path(), ""), &[]);
    let echo = std::fs::read(crate::sandbox::guest_path("echo")).unwrap();
    let sleep = std::fs::read(crate::sandbox::guest_path("sleep")).unwrap();
    assert_eq!(server.call("PUT", "/v1/plugins/hot", &[], &echo).status, 201);
    let stop = Arc::new(AtomicBool::new(false));
    let streams: Vec<_> = ["tenant-a", "tenant-b"]
        .into_iter()
        .map(|ns| stream(&server.url, ns, "hot", &stop))
        .collect();
    for version in [&sleep, &echo, &sleep] {
        assert_eq!(server.call("PUT", "/v1/plugins/hot", &[], version).status, 201);
    }
    stop.store(true, Ordering::Relaxed);
    for handle in streams {
        let seen = handle.join().unwrap();
        assert!(!seen.is_empty());
        for (status, body) in seen {
            // Either version answers "7" or "slept 7"; no call fails.
            assert_eq!(status, 200, "{body}");
            assert!(body == "7" || body == "slept 7", "{body}");
        }
    }
}

#[test]
fn sigterm_under_load_exits_cleanly_and_leaves_no_worker() {
    let dir = scratch();
    let server = Server::start(&config(dir.path(), ""), &[]);
    for ns in ["tenant-a", "tenant-b", "tenant-c"] {
        assert_eq!(server.invoke(ns, "echo", "x").status, 200);
    }
    let workers = server.children();
    assert!(workers.len() >= 3, "{workers:?}");
    let stop = Arc::new(AtomicBool::new(false));
    let streams: Vec<_> = ["tenant-a", "tenant-b", "tenant-c"]
        .into_iter()
        .map(|ns| stream(&server.url, ns, "sleep", &stop))
        .collect();
    let (status, took) = server.terminate();
    stop.store(true, Ordering::Relaxed);
    assert!(status.success(), "{status}");
    assert!(
        took < std::time::Duration::from_secs(10),
        "took {took:?} (grace period 5 s)"
    );
    for handle in streams {
        // Every call ended: answered (any status), or refused once the host was gone.
        for (status, body) in handle.join().unwrap() {
            assert!(status == 200 || status == 503, "{status}: {body}");
        }
    }
    for pid in workers {
        assert!(!crate::isolation::is_running(pid), "worker {pid} outlived the host");
    }
}
