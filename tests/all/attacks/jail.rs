//! The worker's OS sandbox, layer by layer, against a stand-in for an
//! escaped guest: `bulkhead sandbox probe` enters exactly a worker's jail
//! (the same code path, `Jail::enter`, with the arguments the host gives a
//! worker) and then tries, natively, what an escaped guest would: read
//! another namespace's data, write the compile cache, the plugin store, the
//! host's binary and `/etc/shadow`, connect to the host's API on loopback,
//! signal or `ptrace` the host and a sibling, raise its cgroup limits, fork,
//! exec a setuid binary, write a file past its size limit. Each layer is
//! tested alone (`--only`), with the same attempts run with the sandbox off
//! as the positive control, so a denial proves the layer and not the test.
//! Under `CI=true` a layer this machine lacks fails its test.

use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::service::{Server, config, scratch};
use crate::tools::Reaped;

/// The uid/gid the probe drops to (the workers' default).
const WORKER_ID: u32 = 65534;

/// What one probe attempt did.
#[derive(Debug, serde::Deserialize)]
struct Attempt {
    attempt: String,
    allowed: bool,
    detail: String,
}

/// The files an escaped guest goes for, laid out as a host lays them out.
struct Scene {
    root: tempfile::TempDir,
    /// A process standing in for the host or a sibling worker.
    sibling: Reaped,
    /// A pids cgroup with the host's ownership, standing in for the
    /// worker's own.
    cgroup: Option<CgroupDir>,
    /// Something listening on loopback, standing in for the host's API.
    api: TcpListener,
}

/// A cgroup directory removed on drop.
struct CgroupDir(PathBuf);

impl Drop for CgroupDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir(&self.0);
    }
}

impl Scene {
    fn new() -> Self {
        let root = tempfile::tempdir().unwrap();
        let p = root.path();
        for dir in [
            "cache/engine",
            "data/victim",
            "data/mine",
            "data/.plugins",
            "data/.images",
            "plugins",
            "bin",
        ] {
            std::fs::create_dir_all(p.join(dir)).unwrap();
        }
        // The host's own entries of the data root (the default plugin store
        // and quota images live there).
        std::fs::write(p.join("data/.plugins/echo.plugin"), "stored plugin").unwrap();
        std::fs::write(p.join("data/.images/victim.img"), "victim's filesystem").unwrap();
        std::fs::set_permissions(
            p.join("data/.images/victim.img"),
            std::fs::Permissions::from_mode(0o600),
        )
        .unwrap();
        std::fs::write(p.join("data/victim/secret"), "victim's data").unwrap();
        std::fs::write(p.join("cache/engine/plugin.cwasm"), "artifact").unwrap();
        std::fs::write(p.join("plugins/echo.plugin"), "stored plugin").unwrap();
        std::fs::copy(env!("CARGO_BIN_EXE_bulkhead"), p.join("bin/bulkhead")).unwrap();
        // As `supervisor::dirs` leaves them: the data root root's, each
        // namespace's directory the workers', the cache root's with the
        // workers' group reading it.
        for ns in ["victim", "mine"] {
            for entry in walk(&p.join("data").join(ns)) {
                std::os::unix::fs::lchown(&entry, Some(WORKER_ID), Some(WORKER_ID)).unwrap();
            }
        }
        for dir in [p.join("cache"), p.join("cache/engine")] {
            std::os::unix::fs::chown(&dir, None, Some(WORKER_ID)).unwrap();
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o750)).unwrap();
        }
        let sibling = Reaped(Command::new("sleep").arg("120").stdin(Stdio::null()).spawn().unwrap());
        let cgroup = Path::new("/sys/fs/cgroup/pids")
            .is_dir()
            .then(|| {
                // One per scene: tests run in parallel in this process.
                static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
                let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                PathBuf::from(format!("/sys/fs/cgroup/pids/bulkhead-probe-{}-{n}", std::process::id()))
            })
            .filter(|dir| std::fs::create_dir_all(dir).is_ok())
            .map(CgroupDir);
        Self {
            root,
            sibling,
            cgroup,
            api: TcpListener::bind("127.0.0.1:0").unwrap(),
        }
    }

    fn path(&self, rel: &str) -> String {
        self.root.path().join(rel).display().to_string()
    }

    fn sibling_pid(&self) -> u32 {
        self.sibling.0.id()
    }

    /// `sandbox probe` with the worker's jail arguments, `extra` and one
    /// `--attempt` per entry of `attempts`.
    fn probe(&self, extra: &[&str], attempts: &[String]) -> (std::process::ExitStatus, Vec<Attempt>, String) {
        self.probe_as(Some("mine"), extra, attempts)
    }

    /// [`Scene::probe`] for a worker assigned to `namespace`, or for one
    /// not assigned to any (in the pool, or the shared worker of `none`).
    fn probe_as(
        &self,
        namespace: Option<&str>,
        extra: &[&str],
        attempts: &[String],
    ) -> (std::process::ExitStatus, Vec<Attempt>, String) {
        let mut command = Command::new(env!("CARGO_BIN_EXE_bulkhead"));
        command
            .args(["sandbox", "probe", "--cache-dir"])
            .arg(self.root.path().join("cache"))
            .arg("--data-dir")
            .arg(self.root.path().join("data"))
            .args(["--uid", "65534", "--gid", "65534"])
            .args(namespace.map(|ns| ["--namespace", ns]).into_iter().flatten())
            .args(extra);
        for attempt in attempts {
            command.arg("--attempt").arg(attempt);
        }
        let out = command.env_clear().stdin(Stdio::null()).output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let attempts = stdout.lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
        (out.status, attempts, stdout + &String::from_utf8_lossy(&out.stderr))
    }

    /// The layer's state on this machine, from the probe's own report.
    fn layer_is_on(&self, layer: &str) -> bool {
        let (status, _, out) = self.probe(&["--only", layer, "--report"], &[]);
        assert!(status.success(), "{out}");
        let report: serde_json::Value = serde_json::from_str(out.lines().next().unwrap_or("")).unwrap();
        let state = report["layers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l[0] == layer)
            .map(|l| l[1]["state"].clone());
        state == Some(serde_json::json!("on"))
    }

    /// The attempts with `layer` alone must each be denied; with the sandbox
    /// off, each must be allowed.
    fn assert_denied_alone(&self, test: &str, layer: &str, attempts: &[String]) {
        if !crate::needs::facility(
            test,
            &format!("the {layer} layer of the worker sandbox"),
            self.layer_is_on(layer),
        ) {
            return;
        }
        let (status, denied, out) = self.probe(&["--only", layer], attempts);
        assert!(status.success(), "{out}");
        let tried: Vec<&String> = denied.iter().map(|a| &a.attempt).collect();
        assert_eq!(tried, attempts.iter().collect::<Vec<_>>(), "{out}");
        for attempt in &denied {
            assert!(!attempt.allowed, "{layer} let through {attempt:?}");
        }
        let (status, allowed, out) = self.probe(&["--sandbox", "off"], attempts);
        assert!(status.success(), "{out}");
        assert_eq!(allowed.len(), attempts.len(), "{out}");
        for attempt in &allowed {
            assert!(
                attempt.allowed,
                "positive control failed, so the denial proves nothing: {attempt:?}"
            );
        }
    }
}

fn walk(root: &Path) -> Vec<PathBuf> {
    let mut all = vec![root.to_owned()];
    let mut i = 0;
    while i < all.len() {
        if all[i].is_dir() {
            let children: Vec<PathBuf> = std::fs::read_dir(&all[i]).unwrap().map(|e| e.unwrap().path()).collect();
            all.extend(children);
        }
        i += 1;
    }
    all
}

#[test]
fn the_mount_and_network_namespaces_hide_the_hosts_files_and_network() {
    let scene = Scene::new();
    let api = scene.api.local_addr().unwrap();
    scene.assert_denied_alone(
        "the_mount_and_network_namespaces_hide_the_hosts_files_and_network",
        "namespaces",
        &[
            "read:/etc/shadow".into(),
            format!("write:{}", scene.path("bin/bulkhead")),
            format!("write:{}", scene.path("plugins/echo.plugin")),
            format!("write:{}", scene.path("cache/engine/plugin.cwasm")),
            format!("connect:{api}"),
        ],
    );
}

#[test]
fn the_unprivileged_uid_cannot_touch_the_hosts_files_processes_or_cgroups() {
    let scene = Scene::new();
    let mut attempts = vec![
        "read:/etc/shadow".to_string(),
        format!("write:{}", scene.path("bin/bulkhead")),
        format!("write:{}", scene.path("plugins/echo.plugin")),
        format!("write:{}", scene.path("cache/engine/plugin.cwasm")),
        format!("signal:{}", std::process::id()),
        format!("ptrace:{}", scene.sibling_pid()),
    ];
    if let Some(cgroup) = &scene.cgroup {
        attempts.push(format!("write:{}", cgroup.0.join("pids.max").display()));
    }
    scene.assert_denied_alone(
        "the_unprivileged_uid_cannot_touch_the_hosts_files_processes_or_cgroups",
        "identity",
        &attempts,
    );
}

#[test]
fn landlock_confines_an_assigned_worker_to_its_namespace_and_scopes_its_signals() {
    let scene = Scene::new();
    let api = scene.api.local_addr().unwrap();
    scene.assert_denied_alone(
        "landlock_confines_an_assigned_worker_to_its_namespace_and_scopes_its_signals",
        "landlock",
        &[
            format!("read:{}", scene.path("data/victim/secret")),
            format!("write:{}", scene.path("data/victim/planted")),
            format!("write:{}", scene.path("cache/engine/plugin.cwasm")),
            format!("write:{}", scene.path("plugins/echo.plugin")),
            "read:/etc/shadow".into(),
            format!("connect:{api}"),
            format!("signal:{}", scene.sibling_pid()),
        ],
    );
    // Its own namespace's directory stays writable.
    let (status, own, out) = scene.probe(
        &["--only", "landlock"],
        &[format!("write:{}", scene.path("data/mine/note"))],
    );
    assert!(status.success() && own.len() == 1 && own[0].allowed, "{out}");
    // Landlock restricts a thread at a time: a thread that existed before
    // the assignment (as a worker's epoch ticker does) takes the
    // namespace's layer too. Only that layer can deny it another
    // namespace's data: the start-time layer allows the whole data root.
    let attempts = [
        format!("read:{}", scene.path("data/victim/secret")),
        format!("write:{}", scene.path("data/victim/planted")),
        format!("write:{}", scene.path("data/mine/from-thread")),
    ];
    let (status, done, out) = scene.probe(&["--only", "landlock", "--from-thread"], &attempts);
    assert!(status.success() && done.len() == 3, "{out}");
    assert!(
        !done[0].allowed && !done[1].allowed,
        "the other thread escaped the layer: {out}"
    );
    assert!(done[2].allowed, "{out}");
    let (status, done, out) = scene.probe_as(None, &["--only", "landlock", "--from-thread"], &attempts);
    assert!(
        status.success() && done.iter().all(|a| a.allowed),
        "unassigned control: {out}"
    );
}

#[test]
fn seccomp_kills_a_worker_that_forks_execs_opens_a_socket_ptraces_or_signals() {
    let scene = Scene::new();
    let test = "seccomp_kills_a_worker_that_forks_execs_opens_a_socket_ptraces_or_signals";
    if !crate::needs::facility(
        test,
        "the seccomp layer of the worker sandbox",
        scene.layer_is_on("seccomp"),
    ) {
        return;
    }
    let api = scene.api.local_addr().unwrap();
    for attempt in [
        "fork".to_string(),
        "exec:/usr/bin/mount".into(),
        format!("connect:{api}"),
        format!("ptrace:{}", scene.sibling_pid()),
        format!("signal:{}", std::process::id()),
        format!("setown:{}", scene.sibling_pid()),
    ] {
        let (status, done, out) = scene.probe(&["--only", "seccomp"], std::slice::from_ref(&attempt));
        assert_eq!(
            status.signal(),
            Some(libc_sigsys()),
            "{attempt} was not killed by seccomp: {out}"
        );
        assert!(done.is_empty(), "{attempt} reported back: {out}");
        let (status, done, out) = scene.probe(&["--sandbox", "off"], std::slice::from_ref(&attempt));
        let allowed = if attempt.starts_with("exec:") {
            // Replaced by the program: its own output is the proof.
            status.success() && out.contains("util-linux")
        } else {
            status.success() && done.len() == 1 && done[0].allowed
        };
        assert!(allowed, "positive control of {attempt} failed: {out}");
    }
}

const fn libc_sigsys() -> i32 {
    31
}

#[test]
fn a_file_past_max_file_size_fails_inside_the_worker_which_lives_on() {
    let scene = Scene::new();
    let big = format!("fill:{}:{}", scene.path("data/mine/big"), 3 << 20);
    let (status, done, out) = scene.probe(&["--file-size", &(1u64 << 20).to_string()], std::slice::from_ref(&big));
    assert!(status.success(), "the probe died instead of getting EFBIG: {out}");
    assert!(!done[0].allowed && done[0].detail.contains("File too large"), "{out}");
    let (status, done, out) = scene.probe(&["--sandbox", "off"], &[big]);
    assert!(status.success() && done[0].allowed, "positive control: {out}");
}

#[test]
fn the_whole_sandbox_denies_everything_an_escaped_guest_tries() {
    let scene = Scene::new();
    let test = "the_whole_sandbox_denies_everything_an_escaped_guest_tries";
    let (status, _, out) = scene.probe(&["--report"], &[]);
    assert!(status.success(), "{out}");
    let report: serde_json::Value = serde_json::from_str(out.lines().next().unwrap_or("")).unwrap();
    for (i, layer) in ["namespaces", "identity", "landlock", "seccomp"].iter().enumerate() {
        let state = &report["layers"][i];
        assert_eq!(state[0], *layer, "{report}");
        if !crate::needs::facility(
            test,
            &format!("the {layer} layer ({})", state[1]),
            state[1]["state"] == "on",
        ) {
            return;
        }
    }
    let mut attempts = vec![
        format!("read:{}", scene.path("data/victim/secret")),
        format!("write:{}", scene.path("data/victim/planted")),
        format!("write:{}", scene.path("cache/engine/plugin.cwasm")),
        format!("write:{}", scene.path("cache/engine/planted.cwasm")),
        format!("write:{}", scene.path("plugins/echo.plugin")),
        format!("write:{}", scene.path("bin/bulkhead")),
        "read:/etc/shadow".into(),
    ];
    if let Some(cgroup) = &scene.cgroup {
        attempts.push(format!("write:{}", cgroup.0.join("pids.max").display()));
    }
    let (status, denied, out) = scene.probe(&[], &attempts);
    assert!(status.success(), "{out}");
    assert_eq!(denied.len(), attempts.len(), "{out}");
    assert!(denied.iter().all(|a| !a.allowed), "{out}");
    // Even a worker not yet assigned to a namespace (a pool worker, or the
    // shared worker of level `none`, which may write every namespace) can
    // neither read nor replace the host's entries of the data root, nor
    // add one.
    let host_entries = [
        format!("read:{}", scene.path("data/.plugins/echo.plugin")),
        format!("write:{}", scene.path("data/.plugins/echo.plugin")),
        format!("write:{}", scene.path("data/.plugins/planted.plugin")),
        format!("read:{}", scene.path("data/.images/victim.img")),
        format!("write:{}", scene.path("data/.images/victim.img")),
        format!("write:{}", scene.path("data/.evil")),
        format!("write:{}", scene.path("cache/engine/plugin.cwasm")),
    ];
    let (status, denied, out) = scene.probe_as(None, &[], &host_entries);
    assert!(status.success() && denied.len() == host_entries.len(), "{out}");
    assert!(denied.iter().all(|a| !a.allowed), "{out}");
    let (status, allowed, out) = scene.probe_as(None, &["--sandbox", "off"], &host_entries);
    assert!(
        status.success() && allowed.iter().all(|a| a.allowed),
        "positive control: {out}"
    );
    let (status, own, out) = scene.probe_as(None, &[], &[format!("write:{}", scene.path("data/victim/shared"))]);
    assert!(
        status.success() && own[0].allowed,
        "unassigned, it serves every namespace: {out}"
    );
    let (status, own, out) = scene.probe(&[], &[format!("write:{}", scene.path("data/mine/note"))]);
    assert!(status.success() && own[0].allowed, "its own namespace: {out}");
    let api = scene.api.local_addr().unwrap();
    for attempt in [
        format!("connect:{api}"),
        "fork".into(),
        format!("signal:{}", std::process::id()),
    ] {
        let (status, _, out) = scene.probe(&[], std::slice::from_ref(&attempt));
        assert_eq!(status.signal(), Some(libc_sigsys()), "{attempt}: {out}");
    }
}

/// The real thing: a worker of a running host is in the sandbox the probe
/// showed (uid, seccomp, no_new_privs, its own namespaces).
#[test]
fn a_hosts_workers_run_inside_the_sandbox() {
    let dir = scratch();
    let server = Server::start(&config(dir.path(), ""), &[]);
    assert_eq!(server.invoke("tenant-a", "echo", "x").status, 200);
    let pid = server.worker_pids_of("ns:tenant-a");
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .map(str::trim)
            .unwrap_or_default()
            .to_owned()
    };
    if !crate::needs::facility(
        "a_hosts_workers_run_inside_the_sandbox",
        "root (to drop workers' uid)",
        rustix::process::geteuid().is_root(),
    ) {
        return;
    }
    assert!(field("Uid:").starts_with("65534"), "{status}");
    assert_eq!(field("NoNewPrivs:"), "1", "{status}");
    assert_eq!(field("Seccomp:"), "2", "{status}");
    assert_eq!(field("CapEff:"), "0000000000000000", "{status}");
    for ns in ["net", "mnt", "ipc"] {
        let host = std::fs::read_link(format!("/proc/self/ns/{ns}")).unwrap();
        let worker = std::fs::read_link(format!("/proc/{pid}/ns/{ns}")).unwrap();
        assert_ne!(host, worker, "the worker shares the host's {ns} namespace");
    }
    // The host says so in its health report and log.
    let health = server.call("GET", "/v1/health", &[], b"").json();
    for layer in ["namespaces", "identity", "landlock", "seccomp"] {
        assert_eq!(health["sandbox"]["layers"][layer]["state"], "on", "{health}");
    }
    assert!(health["sandbox"]["landlock_abi"].as_u64().unwrap() >= 6, "{health}");
    assert!(
        health["sandbox"]["cgroups"].as_str().unwrap().starts_with('v'),
        "{health}"
    );
    assert!(
        server
            .log_text()
            .contains("worker sandbox (best-effort): namespaces on"),
        "{}",
        server.log_text()
    );
    assert_eq!(server.invoke("tenant-b", "echo", "y").text(), "y");
}

/// Replaces `path` with `bytes` the way an attacker with write access would
/// without disturbing processes that mapped the old file: a new file
/// renamed over it.
fn replace_file(path: &Path, bytes: &[u8]) {
    let tmp = path.with_extension("evil");
    std::fs::write(&tmp, bytes).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

/// Every artifact in the compile cache under `data`.
fn artifacts(data: &Path) -> Vec<PathBuf> {
    walk(&data.join(".cache"))
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "cwasm"))
        .collect()
}

#[test]
fn a_tampered_artifact_is_never_run_by_a_worker_or_loaded_by_the_host() {
    let dir = scratch();
    let server = Server::start(&config(dir.path(), ""), &[]);
    assert_eq!(server.invoke("first", "echo", "before").text(), "before");
    // The pool's refill after `first` is ready before the change: otherwise
    // a worker could read the old bytes while starting, become ready after
    // the change, and serve `third` below.
    let started = std::time::Instant::now();
    let idle = || {
        let metrics = crate::service::metrics::scrape(&server);
        crate::service::metrics::get(&metrics, "bulkhead_workers{state=idle}")
    };
    while idle() < 1.0 {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(60),
            "the warm pool never refilled"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    // Every artifact changed on disk, as by someone with the host's rights.
    let data = dir.path().join("data");
    let found = artifacts(&data);
    assert!(!found.is_empty(), "no artifact under {}", data.display());
    for artifact in &found {
        let mut bytes = std::fs::read(artifact).unwrap();
        let middle = bytes.len() / 2;
        bytes[middle] ^= 0xff;
        replace_file(artifact, &bytes);
    }
    // `first` keeps its worker, which mapped the artifact before.
    assert_eq!(server.invoke("first", "echo", "still").text(), "still");
    // A worker started after the change refuses to map it: its own
    // invalid_plugin error for the tenant, a log line for the operator.
    // (`second` may still adopt the one pool worker that was started
    // before the change; `third`'s worker was started after it.)
    let _ = server.invoke("second", "echo", "after");
    let reply = server.invoke("third", "echo", "after");
    assert_eq!(reply.status, 400, "{}", reply.text());
    assert_eq!(reply.json()["error"]["kind"], "invalid_plugin", "{}", reply.text());
    assert!(reply.text().contains("tampered"), "{}", reply.text());
    assert_eq!(server.invoke("first", "echo", "beside").text(), "beside");
    assert!(server.log_text().contains("was tampered with"), "{}", server.log_text());
    let (status, _) = server.terminate();
    assert!(status.success(), "{status}");

    // The next host finds the damage, says so, and compiles again: the
    // tampered bytes are never loaded.
    let server = Server::start(&config(dir.path(), ""), &[]);
    assert_eq!(server.invoke("fourth", "echo", "healed").text(), "healed");
    assert!(
        server.log_text().contains("does not have the digest recorded"),
        "{}",
        server.log_text()
    );
}

/// `worker.sandbox = "strict"` on a host that cannot have every layer (here:
/// run as an unprivileged user, so no mount or network namespace and no uid
/// to give): `sandbox check` says so and fails, and the host refuses to
/// start, naming the layer, instead of running workers with less.
#[test]
fn strict_refuses_to_start_without_every_layer_and_names_the_missing_one() {
    let test = "strict_refuses_to_start_without_every_layer_and_names_the_missing_one";
    if !crate::needs::facility(test, "root and setpriv (to run the host unprivileged)", {
        rustix::process::geteuid().is_root() && Path::new("/usr/bin/setpriv").exists()
    }) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::os::unix::fs::chown(dir.path(), Some(WORKER_ID), Some(WORKER_ID)).unwrap();
    let file = dir.path().join("strict.toml");
    std::fs::write(
        &file,
        format!(
            "[server]\nlisten = \"127.0.0.1:0\"\n[worker]\nsandbox = \"strict\"\n[data]\ndir = \"{}\"\n",
            dir.path().join("data").display()
        ),
    )
    .unwrap();
    let unprivileged = |args: &[&str]| {
        let mut command = Command::new("/usr/bin/setpriv");
        command
            .args(["--reuid", "65534", "--regid", "65534", "--clear-groups"])
            .arg(env!("CARGO_BIN_EXE_bulkhead"))
            .args(args)
            .arg("--config")
            .arg(&file)
            .current_dir(dir.path());
        // With a deadline: a host that started after all is killed.
        let out = crate::tools::output_within(&mut command, std::time::Duration::from_secs(60))
            .unwrap_or_else(|| panic!("bulkhead {args:?} did not exit within 60 s under strict"));
        let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
        (out.status, text)
    };
    let (status, text) = unprivileged(&["sandbox", "check"]);
    assert_eq!(status.code(), Some(1), "{text}");
    assert!(
        text.contains("strict and the namespaces layer is unavailable"),
        "{text}"
    );
    let (status, text) = unprivileged(&["serve"]);
    assert!(!status.success(), "{text}");
    assert!(
        text.contains("strict and the namespaces layer is unavailable"),
        "{text}"
    );
}

/// The pids cgroup under the sandbox: a worker (here the probe, run inside
/// a pids cgroup as the host places workers) cannot fork past `pids.max`,
/// even with seccomp off; outside the cgroup the same fork works.
#[test]
fn a_fork_past_pids_max_fails() {
    use std::os::unix::process::CommandExt;
    let test = "a_fork_past_pids_max_fails";
    if !crate::needs::facility(test, "a writable cgroup v1 pids hierarchy", {
        Path::new("/sys/fs/cgroup/pids").is_dir() && crate::isolation::faults::cgroups_writable()
    }) {
        return;
    }
    let scene = Scene::new();
    let cgroup = scene.cgroup.as_ref().expect("a pids cgroup for the scene");
    std::fs::write(cgroup.0.join("pids.max"), "1").unwrap();
    let procs = cgroup.0.join("cgroup.procs");
    let mut command = Command::new(env!("CARGO_BIN_EXE_bulkhead"));
    command
        .args(["sandbox", "probe", "--sandbox", "off", "--cache-dir"])
        .arg(scene.root.path().join("cache"))
        .arg("--data-dir")
        .arg(scene.root.path().join("data"))
        .args(["--attempt", "fork"])
        .stdin(Stdio::null());
    // SAFETY: only a write(2) of the child's own pid to a file, before exec.
    unsafe {
        command.pre_exec(move || std::fs::write(&procs, std::process::id().to_string()));
    }
    let out = command.output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let done: Vec<Attempt> = text.lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
    assert!(
        out.status.success() && done.len() == 1,
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!done[0].allowed, "forked past pids.max = 1: {text}");
    let (status, done, out) = scene.probe(&["--sandbox", "off"], &["fork".into()]);
    assert!(status.success() && done[0].allowed, "positive control: {out}");
}
