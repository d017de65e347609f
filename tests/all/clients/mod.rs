//! Hostile and careless HTTP clients against the real binary: each test
//! causes the attack, and a well-behaved client is served at the same time.

mod connections;
mod labels;
mod refused;
mod shutdown;
mod store;
mod tls;
mod trust;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::service::Server;

/// `127.0.0.1:PORT` of `server`.
pub(crate) fn address(server: &Server) -> String {
    let url = &server.url;
    url.strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .unwrap_or(url)
        .to_owned()
}

/// A raw connection that has sent `prefix` and then nothing more.
pub(crate) fn stalled(address: &str, prefix: &[u8]) -> TcpStream {
    let mut stream = TcpStream::connect(address).unwrap_or_else(|e| panic!("connect {address}: {e}"));
    stream.write_all(prefix).unwrap();
    stream
}

/// Reads what the server sends until it closes the connection, failing
/// after `within`; returns the bytes and when the close came.
pub(crate) fn read_until_closed(stream: &mut TcpStream, within: Duration) -> (Vec<u8>, Instant) {
    let deadline = Instant::now() + within;
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(!left.is_zero(), "the server kept the connection open past {within:?}");
        stream.set_read_timeout(Some(left)).unwrap();
        match stream.read(&mut buf) {
            Ok(0) => return (answer, Instant::now()),
            Ok(n) => answer.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return (answer, Instant::now()),
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                panic!("the server kept the connection open past {within:?}")
            }
            Err(e) => panic!("read: {e}"),
        }
    }
}

/// The host's resident memory, from `/proc`.
pub(crate) fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// What a neighbour saw: calls, errors, the duration of each call.
type Seen = (usize, Vec<String>, Vec<Duration>);

/// A well-behaved tenant calling `echo` over one keep-alive connection
/// while a test attacks; stopped and checked with
/// [`HttpNeighbour::assert_untouched`].
pub(crate) struct HttpNeighbour {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<Seen>>,
    ns: String,
}

impl HttpNeighbour {
    /// Starts calling as namespace `ns`, with `headers` (a token) on each
    /// call; returns once its first call is answered, so that it is calling
    /// when the attack begins.
    pub(crate) fn start(server: &Server, ns: &str, headers: &[(&str, &str)]) -> Self {
        let url = format!("{}/v1/invoke/echo", server.url);
        let ns = ns.to_owned();
        let headers: Vec<(String, String)> = headers.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (first, first_done) = std::sync::mpsc::channel();
        let thread = {
            let stop = std::sync::Arc::clone(&stop);
            let ns = ns.clone();
            std::thread::spawn(move || {
                let agent = crate::service::agent();
                let (mut calls, mut errors, mut took) = (0, Vec::new(), Vec::new());
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let started = Instant::now();
                    let mut request = agent.post(&url).header("x-bulkhead-namespace", &ns);
                    for (k, v) in &headers {
                        request = request.header(k, v);
                    }
                    let payload = format!("call {calls}");
                    match request.send(payload.as_bytes()) {
                        Ok(mut r) if r.status() == 200 => {
                            let body = r.body_mut().read_to_string().unwrap_or_default();
                            if body != payload {
                                errors.push(format!("answered {body:?} to {payload:?}"));
                            }
                        }
                        Ok(mut r) => errors.push(format!(
                            "{}: {}",
                            r.status(),
                            r.body_mut().read_to_string().unwrap_or_default()
                        )),
                        Err(e) => errors.push(e.to_string()),
                    }
                    took.push(started.elapsed());
                    calls += 1;
                    if calls == 1 {
                        let _ = first.send(());
                    }
                }
                (calls, errors, took)
            })
        };
        let neighbour = Self {
            stop,
            thread: Some(thread),
            ns,
        };
        assert!(
            first_done.recv_timeout(Duration::from_secs(60)).is_ok(),
            "the neighbour's first call got no answer in 60 s"
        );
        neighbour
    }

    /// Stops, then asserts that every call succeeded; prints calls and p99.
    pub(crate) fn assert_untouched(mut self, attack: &str) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let (calls, errors, mut took) = self.thread.take().unwrap().join().unwrap();
        took.sort();
        let p99 = took
            .get(took.len().saturating_sub(1) * 99 / 100)
            .copied()
            .unwrap_or_default();
        eprintln!(
            "neighbour {} under {attack}: {calls} calls, {} errors, p99 {p99:?}",
            self.ns,
            errors.len()
        );
        assert!(calls > 0, "the neighbour made no call");
        assert!(
            errors.is_empty(),
            "the neighbour saw errors: {:?}",
            &errors[..errors.len().min(5)]
        );
    }
}

impl Drop for HttpNeighbour {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
