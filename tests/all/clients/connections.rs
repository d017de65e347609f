//! Clients that hold connections: half-sent headers, trickled bodies,
//! silence, and more connections than the host takes.

use std::time::{Duration, Instant};

use super::{address, read_until_closed, stalled};
use crate::service::metrics::{get, scrape};
use crate::service::{Server, config, request, scratch};

const HALF_OPEN: usize = 2000;
const SLOW_BODIES: usize = 200;
const SILENT: usize = 100;

#[test]
fn thousands_of_half_open_connections_and_slow_bodies_leave_the_host_serving() {
    let dir = scratch();
    let server = Server::start(
        &config(dir.path(), ""),
        &[
            ("BULKHEAD_SERVER__HEADER_READ_TIMEOUT", "4s"),
            ("BULKHEAD_SERVER__IDLE_TIMEOUT", "4s"),
            ("BULKHEAD_SERVER__BODY_READ_TIMEOUT", "6s"),
        ],
    );
    let address = address(&server);
    let opened = Instant::now();
    // Headers never finished.
    let mut half_open: Vec<_> = (0..HALF_OPEN)
        .map(|i| {
            stalled(
                &address,
                format!("GET /healthz HTTP/1.1\r\nHost: {address}\r\nX-N: {i}").as_bytes(),
            )
        })
        .collect();
    // Uploads that announce 1 MiB and send 16 bytes of it.
    let mut slow: Vec<_> = (0..SLOW_BODIES)
        .map(|i| {
            let head = format!(
                "PUT /v1/plugins/slow{i} HTTP/1.1\r\nHost: {address}\r\nContent-Length: 1048576\r\n\r\n0123456789abcdef"
            );
            stalled(&address, head.as_bytes())
        })
        .collect();
    // Connections that never send a byte.
    let mut silent: Vec<_> = (0..SILENT).map(|_| stalled(&address, b"")).collect();
    let all_open = opened.elapsed();

    // A well-behaved client meanwhile: health, and a new tenant's first
    // call (a worker has to start: descriptors are left for it).
    let served = Instant::now();
    assert_eq!(server.call("GET", "/healthz", &[], b"").status, 200);
    let first = server.invoke("fresh-tenant", "echo", "hello");
    assert_eq!((first.status, first.text()), (200, "hello".to_owned()));
    assert_eq!(first.header("x-bulkhead-cold-start"), Some("true"));
    let metrics = scrape(&server);
    let served = served.elapsed();
    let open = get(&metrics, "bulkhead_http_connections{}");
    eprintln!(
        "{HALF_OPEN} half-open + {SLOW_BODIES} slow bodies + {SILENT} silent opened in {all_open:?}; \
         healthz, a cold start and a scrape took {served:?} with {open} connections open"
    );
    assert!(
        open >= (HALF_OPEN + SLOW_BODIES + SILENT) as f64,
        "the attack's connections were open while the client was served: {open}"
    );

    // The half-open ones go at the header timeout, the silent ones at the
    // idle timeout; the slow bodies are answered 400 at the body timeout.
    let bound = Duration::from_secs(30);
    let mut latest = Duration::ZERO;
    for stream in half_open.iter_mut().chain(silent.iter_mut()) {
        let (answer, closed) = read_until_closed(stream, bound);
        assert!(answer.is_empty(), "{}", String::from_utf8_lossy(&answer));
        latest = latest.max(closed - opened);
    }
    for stream in &mut slow {
        let (answer, _) = read_until_closed(stream, bound);
        let answer = String::from_utf8_lossy(&answer);
        assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
        assert!(answer.contains("body_read_timeout"), "{answer}");
    }
    eprintln!("every stalled connection closed by the host {latest:?} after the first was opened");
    let metrics = scrape(&server);
    let header = get(
        &metrics,
        "bulkhead_http_connections_closed_total{reason=header_timeout}",
    );
    let idle = get(&metrics, "bulkhead_http_connections_closed_total{reason=idle_timeout}");
    assert!(header >= HALF_OPEN as f64, "{header}");
    assert!(idle >= SILENT as f64, "{idle}");
    assert!(get(&metrics, "bulkhead_http_connections{}") < 10.0);
    // Nothing was deployed by the slow uploads; the host still serves.
    let list = server.call("GET", "/v1/plugins", &[], b"").text();
    assert!(!list.contains("slow"), "{list}");
    assert_eq!(server.invoke("fresh-tenant", "echo", "again").text(), "again");
}

#[test]
fn connections_over_the_cap_are_refused_at_once_and_counted() {
    let dir = scratch();
    let cap = 40;
    let server = Server::start(
        &config(dir.path(), ""),
        &[("BULKHEAD_SERVER__MAX_CONNECTIONS", &cap.to_string())],
    );
    let address = address(&server);
    let held: Vec<_> = (0..cap).map(|_| stalled(&address, b"")).collect();
    // The host has taken them all once it refuses the next one.
    let mut over = stalled(
        &address,
        format!("GET /healthz HTTP/1.1\r\nHost: {address}\r\n\r\n").as_bytes(),
    );
    let (answer, _) = read_until_closed(&mut over, Duration::from_secs(30));
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 429"), "{answer}");
    assert!(answer.contains(r#""kind":"bulkhead_full""#), "{answer}");
    assert!(answer.contains("max_connections"), "{answer}");
    drop(held);
    // Once they are gone, the host serves again (the slots come back as
    // their tasks end: wait for that, bounded).
    let started = Instant::now();
    loop {
        match crate::service::try_request("GET", &format!("{}/healthz", server.url), &[], b"") {
            Ok(reply) if reply.status == 200 => break,
            _ => assert!(started.elapsed() < Duration::from_secs(30), "the slots never came back"),
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let refused = get(&scrape(&server), "bulkhead_http_connections_refused_total{}");
    assert!(refused >= 1.0, "{refused}");
    assert_eq!(
        request(
            "POST",
            &format!("{}/v1/invoke/echo", server.url),
            &[("x-bulkhead-namespace", "a")],
            b"x"
        )
        .text(),
        "x"
    );
}

#[test]
fn a_request_head_over_max_header_size_is_refused_with_431() {
    let dir = scratch();
    let server = Server::start(
        &config(dir.path(), ""),
        &[("BULKHEAD_SERVER__MAX_HEADER_SIZE", "16KiB")],
    );
    let address = address(&server);
    // Exactly the limit and no end of the head: the host reads all of it
    // (so the answer is not lost to a reset over unread bytes) and refuses.
    let mut head = format!("GET /healthz HTTP/1.1\r\nHost: {address}\r\nX-Big: ").into_bytes();
    head.resize(16 << 10, b'h');
    let mut stream = stalled(&address, &head);
    let (answer, _) = read_until_closed(&mut stream, Duration::from_secs(30));
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer}");
    // A head within the limit is served.
    let fine = "f".repeat(8 << 10);
    let reply = server.call("GET", "/healthz", &[("x-fine", fine.as_str())], b"");
    assert_eq!(reply.status, 200, "{}", reply.text());
}
