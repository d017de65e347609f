//! Deploys that race or are cut short leave a whole plugin: the old one or
//! the new one, its mode with it, on disk as in memory.

use std::time::Instant;

use super::HttpNeighbour;
use crate::service::{Server, config, scratch, try_request};

/// `(sha256, instance)` of `name` as listed, and whether it is quarantined.
fn listed(server: &Server, name: &str) -> Option<(String, String, bool)> {
    let list = server.call("GET", "/v1/plugins", &[], b"").json();
    list.as_array().unwrap().iter().find(|p| p["name"] == name).map(|p| {
        (
            p["sha256"].as_str().unwrap().to_owned(),
            p["instance"].as_str().unwrap().to_owned(),
            p.get("quarantined").is_some(),
        )
    })
}

#[test]
fn concurrent_uploads_of_one_name_leave_one_whole_plugin_on_disk_and_in_memory() {
    let dir = scratch();
    let text = config(dir.path(), "");
    let server = Server::start_in(dir.path(), &text, &[]);
    let echo: &'static [u8] = std::fs::read(crate::sandbox::guest_path("echo")).unwrap().leak();
    let counter: &'static [u8] = std::fs::read(crate::sandbox::guest_path("counter")).unwrap().leak();
    let neighbour = HttpNeighbour::start(&server, "bystander", &[]);
    let mut last = None;
    for round in 0..8 {
        let (a, b) = std::thread::scope(|s| {
            let put = |path: &str, body: &'static [u8]| {
                let url = format!("{}{path}", server.url);
                s.spawn(move || try_request("PUT", &url, &[], body).unwrap())
            };
            let a = put("/v1/plugins/raced", echo);
            let b = put("/v1/plugins/raced?instance=per-process", counter);
            (a.join().unwrap(), b.join().unwrap())
        });
        assert_eq!((a.status, b.status), (201, 201), "{} {}", a.text(), b.text());
        let echo_sha = a.json()["sha256"].as_str().unwrap().to_owned();
        let counter_sha = b.json()["sha256"].as_str().unwrap().to_owned();
        let now = listed(&server, "raced").expect("listed");
        let is_echo = now == (echo_sha.clone(), "per-request".to_owned(), false);
        let is_counter = now == (counter_sha.clone(), "per-process".to_owned(), false);
        assert!(is_echo || is_counter, "round {round}: a mix: {now:?}");
        // What is listed is what runs.
        let ns = format!("round-{round}");
        let reply = server.invoke(&ns, "raced", "payload");
        assert_eq!(reply.status, 200, "{}", reply.text());
        let expected = if is_echo { "payload" } else { "1" };
        assert_eq!(reply.text(), expected, "round {round}: listed {now:?}");
        last = Some(now);
    }
    neighbour.assert_untouched("racing uploads of one name");
    // What is on disk is what was in memory.
    assert!(server.terminate().0.success());
    let server = Server::start_in(dir.path(), &text, &[]);
    assert_eq!(listed(&server, "raced"), last);
    let leftovers: Vec<_> = std::fs::read_dir(dir.path().join("data/.plugins"))
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn a_host_killed_in_the_middle_of_a_deploy_boots_with_the_old_or_the_new_plugin() {
    let dir = scratch();
    let text = config(dir.path(), "");
    let old = std::fs::read(crate::sandbox::guest_path("echo")).unwrap();
    let new = std::fs::read(crate::sandbox::guest_path("fs")).unwrap();
    // How long a whole deploy of the new plugin takes here.
    let (old_sha, new_sha, whole) = {
        let server = Server::start_in(dir.path(), &text, &[]);
        let started = Instant::now();
        let reply = server.call("PUT", "/v1/plugins/swapped", &[], &new);
        let whole = started.elapsed();
        let new_sha = reply.json()["sha256"].as_str().unwrap().to_owned();
        let reply = server.call("PUT", "/v1/plugins/swapped", &[], &old);
        let old_sha = reply.json()["sha256"].as_str().unwrap().to_owned();
        assert!(server.terminate().0.success());
        (old_sha, new_sha, whole)
    };
    let mut seen = Vec::new();
    for fraction in [0.3, 0.6, 0.8, 0.9, 0.95, 1.0, 1.05, 1.1, 1.3] {
        let server = Server::start_in(dir.path(), &text, &[]);
        let before = listed(&server, "swapped").expect("listed");
        let url = format!("{}/v1/plugins/swapped", server.url);
        let body = new.clone();
        let upload = std::thread::spawn(move || try_request("PUT", &url, &[], &body));
        std::thread::sleep(whole.mul_f64(fraction));
        drop(server); // SIGKILL
        let _ = upload.join();
        let server = Server::start_in(dir.path(), &text, &[]);
        let after = listed(&server, "swapped").expect("still listed");
        let whole_plugin = after == (old_sha.clone(), "per-request".to_owned(), false)
            || after == (new_sha.clone(), "per-request".to_owned(), false);
        assert!(whole_plugin, "killed at {fraction} of a deploy: {after:?}");
        // Served: echo answers, fs answers its own way to a command it
        // does not know (a guest error, not a missing or broken plugin).
        let reply = server.invoke("tenant-a", "swapped", "alive");
        let served = if after.0 == new_sha { 422 } else { 200 };
        assert_eq!(reply.status, served, "{}", reply.text());
        seen.push((
            fraction,
            if after.0 == new_sha { "new" } else { "old" },
            before.0 == after.0,
        ));
        // Back to the old plugin for the next round.
        assert_eq!(server.call("PUT", "/v1/plugins/swapped", &[], &old).status, 201);
        drop(server);
    }
    eprintln!("a deploy takes {whole:?}; SIGKILL at fractions of it booted with {seen:?}");
}
