//! Black-box tests of the real `bulkhead` binary: `serve` on port 0, driven
//! over HTTP and through the CLI, as an operator or tenant would.

mod api_errors;
pub(crate) mod auth;
mod cli;
mod http_apps;
mod lifecycle;
mod logs;
pub(crate) mod metrics;
mod polyglot;
mod prewarm;
mod reporter;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tempfile::TempDir;

pub(crate) const BIN: &str = env!("CARGO_BIN_EXE_bulkhead");

/// A host process. Killed (and reaped) on drop if still running.
pub(crate) struct Server {
    child: Option<Child>,
    pub url: String,
    pub dir: PathBuf,
    /// Whether the directory goes with the server.
    owns_dir: bool,
    pub log: Arc<Mutex<Vec<String>>>,
}

/// A configuration for test hosts: the guests as plugins, small limits, a
/// tenant `tight` with a tiny bulkhead, data under `dir`.
pub(crate) fn config(dir: &Path, extra: &str) -> String {
    let guest = |name: &str| super::sandbox::guest_path(name).to_owned();
    format!(
        r#"
[server]
listen = "127.0.0.1:0"
max_payload = "64KiB"
max_plugin_size = "8MiB"

[isolation]
level = "namespace"
grace_period = "5s"

[procmgr]
backoff_period = "3s"

[pool]
warm = 1

[limits]
timeout = "2s"
memory = "32MiB"
fuel = 200000000

[data]
dir = "{data}"

[plugins.spin]
path = "{spin}"
[plugins.hog]
path = "{hog}"
[plugins.trap]
path = "{trap}"
[plugins.sleep]
path = "{sleep}"
[plugins.fs]
path = "{fs}"

[tenants.locked]
plugins = ["echo"]

[tenants.tight]
level = "namespace"
[tenants.tight.limits]
max_concurrent = 1
max_queued = 1
queue_timeout = "5s"

{extra}
"#,
        data = dir.join("data").display(),
        spin = guest("spin"),
        hog = guest("hog"),
        trap = guest("trap"),
        sleep = guest("sleep"),
        fs = guest("fs"),
    )
}

/// A response: status, headers we care about, body.
#[derive(Debug)]
pub(crate) struct Reply {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: Vec<u8>,
}

impl Reply {
    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub(crate) fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }

    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Asserts the contract's error shape, kind and status (and records, for
    /// this test's thread, that `kind` was seen; see [`asserted_kinds`]).
    pub(crate) fn assert_error(&self, kind: bulkhead::ErrorKind) -> serde_json::Value {
        ASSERTED.with(|seen| seen.borrow_mut().insert(kind.as_str()));
        let json = self.json();
        assert_eq!(json["error"]["kind"], kind.as_str(), "{json}");
        assert_eq!(self.status, kind.http_status(), "{json}");
        assert!(
            json["error"]["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{json}"
        );
        assert!(json["error"].get("process_id").is_some(), "{json}");
        json
    }
}

thread_local! {
    /// The error kinds [`Reply::assert_error`] checked on this thread (one
    /// test runs on one thread).
    static ASSERTED: std::cell::RefCell<std::collections::BTreeSet<&'static str>> = Default::default();
}

/// The error kinds this test has checked so far.
pub(crate) fn asserted_kinds() -> std::collections::BTreeSet<&'static str> {
    ASSERTED.with(|seen| seen.borrow().clone())
}

/// The test that causes each error kind through HTTP. It has no wildcard, so
/// a new kind does not compile until a test causes it; each of those tests
/// ends with [`assert_caused_here`].
pub(crate) fn caused_by(kind: bulkhead::ErrorKind) -> &'static str {
    use bulkhead::ErrorKind::*;
    match kind {
        Unauthorized => "tenant_tokens_are_bound_to_their_namespace",
        InvalidRequest | PayloadTooLarge | Forbidden | PluginNotFound | ProcessNotFound | InvalidPlugin
        | BulkheadFull | GuestError | GuestTrap | FuelExhausted | MemoryLimit | Timeout | WorkerCrashed
        | WorkerUnavailable => "every_error_kind_has_its_status_and_shape",
    }
}

/// Asserts that this test checked every kind [`caused_by`] assigns to `test`.
pub(crate) fn assert_caused_here(test: &str) {
    let seen = asserted_kinds();
    let missing: Vec<&str> = bulkhead::ErrorKind::ALL
        .into_iter()
        .filter(|kind| caused_by(*kind) == test && !seen.contains(kind.as_str()))
        .map(|kind| kind.as_str())
        .collect();
    assert!(missing.is_empty(), "{test} caused no {missing:?}");
}

pub(crate) fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(60)))
        .build()
        .into()
}

/// Sends one request; `Err` when no answer came (refused, reset).
pub(crate) fn try_request(method: &str, url: &str, headers: &[(&str, &str)], body: &[u8]) -> Result<Reply, String> {
    let mut builder = http::Request::builder().method(method).uri(url);
    for (k, v) in headers {
        builder = builder.header(*k, *v);
    }
    let mut response = agent()
        .run(builder.body(body.to_vec()).unwrap())
        .map_err(|e| format!("{method} {url}: {e}"))?;
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.body_mut().read_to_vec().unwrap_or_default();
    Ok(Reply { status, headers, body })
}

/// Sends one request that must be answered.
pub(crate) fn request(method: &str, url: &str, headers: &[(&str, &str)], body: &[u8]) -> Reply {
    try_request(method, url, headers, body).unwrap_or_else(|e| panic!("{e}"))
}

/// How often [`wait_field`] asks again: the API has no push channel.
const POLL: Duration = Duration::from_millis(5);

/// Waits until `process_id` at `url` reports `field` at least `n`, asking
/// every few milliseconds (so a waiting test leaves the CPU to the host) and
/// failing after 30 s.
pub(crate) fn wait_field(url: &str, process_id: &str, field: &str, n: u64) {
    let started = Instant::now();
    loop {
        let reply = request("GET", &format!("{url}/v1/processes/{process_id}"), &[], b"");
        if reply.status == 200 && reply.json()[field].as_u64().is_some_and(|v| v >= n) {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{process_id}: {field} never reached {n}: {}",
            reply.text()
        );
        std::thread::sleep(POLL);
    }
}

impl Server {
    /// Starts a host with `config` (TOML) in its own directory.
    pub(crate) fn start(config_text: &str, env: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().unwrap().keep();
        let mut server = Self::start_in(&dir, config_text, env);
        server.owns_dir = true;
        server
    }

    pub(crate) fn start_in(dir: &Path, config_text: &str, env: &[(&str, &str)]) -> Self {
        let path = dir.join("bulkhead.toml");
        std::fs::write(&path, config_text).unwrap();
        let mut child = Command::new(BIN)
            .args(["serve", "--config"])
            .arg(&path)
            .current_dir(dir)
            .envs(env.iter().copied())
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = mpsc::channel();
        {
            let log = Arc::clone(&log);
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    if let Some(url) = line.strip_prefix("listening on ") {
                        let _ = tx.send(url.to_owned());
                    }
                    log.lock().unwrap().push(line);
                }
            });
        }
        let mut server = Self {
            child: Some(child),
            url: String::new(),
            dir: dir.to_owned(),
            owns_dir: false,
            log,
        };
        match rx.recv_timeout(Duration::from_secs(120)) {
            Ok(url) => server.url = url,
            Err(_) => panic!("the host did not start:\n{}", server.log_text()),
        }
        server
    }

    pub(crate) fn log_text(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }

    pub(crate) fn call(&self, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Reply {
        request(method, &format!("{}{path}", self.url), headers, body)
    }

    /// `POST /v1/invoke/{plugin}` as namespace `ns`.
    pub(crate) fn invoke(&self, ns: &str, plugin: &str, payload: &str) -> Reply {
        self.call(
            "POST",
            &format!("/v1/invoke/{plugin}"),
            &[("x-bulkhead-namespace", ns)],
            payload.as_bytes(),
        )
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    /// The pid of one process id's worker.
    pub(crate) fn worker_pids_of(&self, process_id: &str) -> u32 {
        let reply = self.call("GET", &format!("/v1/processes/{process_id}"), &[], b"");
        reply.json()["pid"]
            .as_u64()
            .unwrap_or_else(|| panic!("no pid: {}", reply.text())) as u32
    }

    /// Waits until `process_id` has a call running.
    pub(crate) fn wait_in_flight(&self, process_id: &str) {
        wait_field(&self.url, process_id, "in_flight", 1);
    }

    /// Every direct child process of the host (workers, pooled or not).
    pub(crate) fn children(&self) -> Vec<u32> {
        super::isolation::children_of(self.pid())
    }

    /// SIGTERM, then waits (at most a minute) for the exit.
    pub(crate) fn terminate(mut self) -> (ExitStatus, Duration) {
        let mut child = self.child.take().unwrap();
        let pid = rustix::process::Pid::from_raw(child.id() as i32).unwrap();
        let started = Instant::now();
        rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(child.wait());
        });
        match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(status) => (status.unwrap(), started.elapsed()),
            Err(_) => {
                let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
                panic!("the host did not exit within 60 s of SIGTERM:\n{}", self.log_text());
            }
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if self.owns_dir {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// A fresh directory for hosts that share it (restarts).
pub(crate) fn scratch() -> TempDir {
    tempfile::tempdir().unwrap()
}
