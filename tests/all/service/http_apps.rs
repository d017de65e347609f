//! wasi:http apps through the real host: `/v1/http/{plugin}/{path}` both
//! ways, at levels `namespace` and `session`; an app's faults as typed
//! errors while a neighbour's requests all succeed; and egress, denied by
//! default and let out only to a tenant's `http_allow`.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use bulkhead::ErrorKind;

use super::{Reply, Server, config, request};

fn app_config(extra: &str) -> String {
    let dir = tempfile::tempdir().unwrap().keep();
    let extra = format!(
        r#"
[plugins.hello]
path = "{hello}"
[plugins.fetch]
path = "{fetch}"

[tenants.sess]
level = "session"

[tenants.spinner.limits]
timeout = "1s"
fuel = 1000000000000

[tenants.crasher.limits]
timeout = "30s"
{extra}"#,
        hello = crate::sandbox::guest_path("http-hello"),
        fetch = crate::sandbox::guest_path("fetch"),
    );
    config(&dir, &extra)
}

fn app(server: &Server, method: &str, ns: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Reply {
    let mut all = vec![("x-bulkhead-namespace", ns)];
    all.extend_from_slice(headers);
    request(method, &format!("{}/v1/http/hello{path}", server.url), &all, body)
}

#[test]
fn apps_get_requests_and_send_responses_both_ways_at_every_level() {
    let server = Server::start(&app_config(""), &[]);
    let plugins = server.call("GET", "/v1/plugins", &[], b"").json();
    let world = |name: &str| {
        plugins
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .map(|p| p["world"].clone())
    };
    assert_eq!(world("hello"), Some("wasi:http/proxy".into()), "{plugins}");
    assert_eq!(world("echo"), Some("bulkhead:plugin".into()), "{plugins}");

    for (ns, session) in [("tenant-a", None), ("sess", Some("s-1")), ("sess", Some("s-2"))] {
        let mut headers = vec![("x-echo", "ping")];
        if let Some(session) = session {
            headers.push(("x-bulkhead-session", session));
        }
        let get = app(&server, "GET", ns, "/a/b?c=1", &headers, b"");
        assert_eq!(get.status, 200, "{}", get.text());
        assert_eq!(get.text(), "hello from rust\n");
        assert_eq!(get.header("x-app"), Some("rust"));
        assert_eq!(get.header("x-path"), Some("/a/b?c=1"));
        assert_eq!(get.header("x-echo"), Some("ping"));
        assert_eq!(get.header("content-type"), Some("text/plain"));
        let expected = match session {
            Some(session) => format!("session:{session}"),
            None => format!("ns:{ns}"),
        };
        assert_eq!(get.header("x-bulkhead-process-id"), Some(expected.as_str()));

        headers.push(("content-type", "application/json"));
        let post = app(&server, "POST", ns, "/items", &headers, br#"{"n":1}"#);
        assert_eq!(post.status, 201, "{}", post.text());
        assert_eq!(post.body, br#"{"n":1}"#);
        assert_eq!(post.header("x-body-length"), Some("7"));
        assert_eq!(post.header("content-type"), Some("application/json"));
        assert_eq!(post.header("x-method"), Some("POST"));

        // The app's own status passes through as it is, not as an error.
        let missing = app(&server, "GET", ns, "/status/404", &headers, b"");
        assert_eq!(missing.status, 404);
        assert_eq!(missing.text(), "status 404\n");
    }

    // Each world is called at its own route.
    app(&server, "GET", "sess", "/", &[], b"").assert_error(ErrorKind::InvalidRequest);
    server
        .invoke("tenant-a", "hello", "x")
        .assert_error(ErrorKind::InvalidRequest);
    let wrong = request(
        "GET",
        &format!("{}/v1/http/echo/", server.url),
        &[("x-bulkhead-namespace", "tenant-a")],
        b"",
    );
    wrong.assert_error(ErrorKind::InvalidRequest);
    let none = request(
        "GET",
        &format!("{}/v1/http/nope/x", server.url),
        &[("x-bulkhead-namespace", "tenant-a")],
        b"",
    );
    none.assert_error(ErrorKind::PluginNotFound);
    request("GET", &format!("{}/v1/http/hello/", server.url), &[], b"").assert_error(ErrorKind::InvalidRequest);
}

/// A tenant calling the app in a loop until stopped; counts what failed.
struct Neighbour {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<(usize, Vec<String>)>,
}

impl Neighbour {
    fn start(url: &str, ns: &str) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let (url, ns) = (url.to_owned(), ns.to_owned());
        let thread = std::thread::spawn({
            let stop = Arc::clone(&stop);
            move || {
                let (mut ok, mut failed) = (0, Vec::new());
                while !stop.load(Ordering::Relaxed) || ok < 5 {
                    let reply = request(
                        "POST",
                        &format!("{url}/v1/http/hello/n"),
                        &[("x-bulkhead-namespace", &ns)],
                        b"neighbour",
                    );
                    if reply.status == 201 && reply.body == b"neighbour" {
                        ok += 1;
                    } else {
                        failed.push(format!("{}: {}", reply.status, reply.text()));
                    }
                }
                (ok, failed)
            }
        });
        Self { stop, thread }
    }

    fn assert_untouched(self) {
        self.stop.store(true, Ordering::Relaxed);
        let (ok, failed) = self.thread.join().unwrap();
        assert!(
            failed.is_empty(),
            "the neighbour saw {} errors: {failed:?}",
            failed.len()
        );
        assert!(ok >= 5, "{ok}");
    }
}

#[test]
fn an_apps_faults_are_its_tenants_typed_errors_and_a_neighbour_sees_none() {
    let server = Server::start(&app_config(""), &[]);
    assert_eq!(app(&server, "GET", "tenant-b", "/", &[], b"").status, 200);
    let neighbour = Neighbour::start(&server.url, "tenant-b");

    app(&server, "GET", "spinner", "/spin", &[], b"").assert_error(ErrorKind::Timeout);
    app(&server, "GET", "tenant-a", "/bomb", &[], b"").assert_error(ErrorKind::MemoryLimit);
    app(&server, "GET", "tenant-a", "/spin", &[], b"").assert_error(ErrorKind::FuelExhausted);

    assert_eq!(app(&server, "GET", "crasher", "/", &[], b"").status, 200);
    let pid = server.worker_pids_of("ns:crasher");
    let url = server.url.clone();
    let in_flight = std::thread::spawn(move || {
        request(
            "GET",
            &format!("{url}/v1/http/hello/sleep/20000"),
            &[("x-bulkhead-namespace", "crasher")],
            b"",
        )
    });
    server.wait_in_flight("ns:crasher");
    crate::isolation::sigkill(pid);
    in_flight.join().unwrap().assert_error(ErrorKind::WorkerCrashed);

    neighbour.assert_untouched();
    // The attacker's own requests work again once its faults are over.
    assert_eq!(app(&server, "GET", "tenant-a", "/", &[], b"").status, 200);
}

/// A loopback HTTP server answering every request with `body`, counting
/// connections; stopped and joined on drop.
struct Upstream {
    port: u16,
    connections: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Upstream {
    fn start(body: &'static str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let connections = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = std::thread::spawn({
            let (connections, stop) = (Arc::clone(&connections), Arc::clone(&stop));
            move || {
                for stream in listener.incoming() {
                    if stop.load(Ordering::Relaxed) {
                        return;
                    }
                    let Ok(mut stream) = stream else { continue };
                    connections.fetch_add(1, Ordering::Relaxed);
                    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
                    let mut head = Vec::new();
                    let mut byte = [0u8; 1];
                    while !head.ends_with(b"\r\n\r\n") && stream.read(&mut byte).is_ok_and(|n| n == 1) {
                        head.push(byte[0]);
                    }
                    let reply = format!(
                        "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = stream.write_all(reply.as_bytes());
                }
            }
        });
        Self {
            port,
            connections,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[test]
fn egress_is_denied_by_default_and_let_out_only_to_the_tenants_allow_list() {
    let allowed = Upstream::start("upstream ok");
    let other = Upstream::start("must not be reached");
    let extra = format!(
        "[tenants.egress]\nhttp_allow = [\"127.0.0.1:{}\"]\n[tenants.shared]\nlevel = \"none\"\n",
        allowed.port
    );
    let server = Server::start(&app_config(&extra), &[]);

    let reached = app(
        &server,
        "GET",
        "egress",
        &format!("/fetch/127.0.0.1:{}/x", allowed.port),
        &[],
        b"",
    );
    assert_eq!(reached.status, 200, "{}", reached.text());
    assert_eq!(reached.text(), "upstream ok");
    assert_eq!(reached.header("x-upstream-status"), Some("200"));
    // Our own world's components have the same egress.
    let fetched = server.invoke("egress", "fetch", &format!("127.0.0.1:{}/y", allowed.port));
    assert_eq!(fetched.status, 200, "{}", fetched.text());
    assert_eq!(fetched.text(), "200\nupstream ok");

    // Another port of the same host, and every tenant without a list (also
    // one sharing the level-none worker), are refused.
    let refused = [
        app(
            &server,
            "GET",
            "egress",
            &format!("/fetch/127.0.0.1:{}/", other.port),
            &[],
            b"",
        ),
        app(
            &server,
            "GET",
            "tenant-a",
            &format!("/fetch/127.0.0.1:{}/", allowed.port),
            &[],
            b"",
        ),
        app(
            &server,
            "GET",
            "shared",
            &format!("/fetch/127.0.0.1:{}/", allowed.port),
            &[],
            b"",
        ),
    ];
    for reply in &refused {
        assert_eq!(reply.status, 502, "{}", reply.text());
        assert!(reply.text().contains("HttpRequestDenied"), "{}", reply.text());
    }
    let denied = server.invoke("tenant-a", "fetch", &format!("127.0.0.1:{}/", allowed.port));
    let json = denied.assert_error(ErrorKind::GuestError);
    assert!(
        json["error"]["message"].as_str().unwrap().contains("HttpRequestDenied"),
        "{json}"
    );

    assert_eq!(allowed.connections.load(Ordering::Relaxed), 2);
    assert_eq!(other.connections.load(Ordering::Relaxed), 0);
}
