//! SIGTERM ends the host within its bound whatever clients do.

use std::io::Write;
use std::time::Duration;

use super::{address, stalled};
use crate::isolation::is_running;
use crate::service::{Server, config, scratch};

/// The test host's `server.shutdown_timeout`.
const DRAIN: Duration = Duration::from_secs(2);
/// Its `isolation.grace_period` (see `service::config`).
const GRACE: Duration = Duration::from_secs(5);
/// `isolation::manager::TERMINATE_SLACK` and a second for the exit.
const SLACK: Duration = Duration::from_secs(6);

#[test]
fn sigterm_with_a_half_sent_request_and_a_stalled_reader_exits_zero_in_bound() {
    let dir = scratch();
    let server = Server::start(&config(dir.path(), ""), &[("BULKHEAD_SERVER__SHUTDOWN_TIMEOUT", "2s")]);
    let address = address(&server);
    // Workers to terminate.
    for ns in ["a", "b"] {
        assert_eq!(server.invoke(ns, "echo", "up").status, 200);
    }
    let workers = server.children();
    assert!(workers.len() >= 2, "{workers:?}");

    // A request whose headers came but not all of its body.
    let _half_sent = stalled(
        &address,
        format!(
            "POST /v1/invoke/echo HTTP/1.1\r\nHost: {address}\r\nx-bulkhead-namespace: a\r\nContent-Length: 1000\r\n\r\npartial"
        )
        .as_bytes(),
    );

    // A client that pipelines echo calls of 60 KiB and never reads: the
    // host's writes stall once the socket buffers are full. Writing stops
    // when the client's own buffer is full too (its write times out).
    let mut reader = stalled(&address, b"");
    reader.set_write_timeout(Some(Duration::from_secs(2))).unwrap();
    let payload = vec![b'x'; 60 << 10];
    let head = format!(
        "POST /v1/invoke/echo HTTP/1.1\r\nHost: {address}\r\nx-bulkhead-namespace: b\r\nContent-Length: {}\r\n\r\n",
        payload.len()
    );
    let mut sent = 0usize;
    let stalled_at = loop {
        let wrote = reader
            .write_all(head.as_bytes())
            .and_then(|()| reader.write_all(&payload));
        match wrote {
            Ok(()) => sent += 1,
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                break sent;
            }
            Err(e) => panic!("write: {e}"),
        }
        assert!(sent < 10_000, "the host read everything without being read from");
    };

    let (status, took) = server.terminate();
    eprintln!(
        "SIGTERM with a half-sent request and a reader stalled after {stalled_at} calls: {status} after {took:?}"
    );
    assert!(status.success(), "{status}");
    assert!(took < DRAIN + GRACE + SLACK, "{took:?}");
    for pid in workers {
        assert!(!is_running(pid), "worker {pid} outlived the host");
    }
}
