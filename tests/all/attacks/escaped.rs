//! What a guest that escaped wasmtime would find in its worker: what it
//! forks dies with the worker (a process in the worker's cgroup that
//! ignores SIGTERM, double-forks and leaves its session is gone after
//! `terminate` and after the host's shutdown); no descriptor the host
//! inherited by mistake; no way to gain privileges by exec.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

use crate::isolation::{hygiene_wait_gone, is_running};
use crate::service::{Server, config, scratch};

/// Waits for a line on stdin, then forks a child that forks a grandchild
/// (which leaves the session); each ignores SIGTERM and records its pid in
/// a file of the directory `argv[1]`. Prints `ready` once all three have.
const FORKER: &str = r#"
import os, signal, sys, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
out = sys.argv[1]
def record(role):
    path = os.path.join(out, role)
    with open(path + ".tmp", "w") as f:
        f.write(str(os.getpid()))
    os.rename(path + ".tmp", path)
sys.stdin.readline()
if os.fork() == 0:
    if os.fork() == 0:
        os.setsid()
        record("grandchild")
        time.sleep(600)
        os._exit(0)
    record("child")
    time.sleep(600)
    os._exit(0)
record("parent")
deadline = time.time() + 30
while not all(os.path.exists(os.path.join(out, r)) for r in ("child", "grandchild")):
    if time.time() > deadline:
        sys.exit("the children did not start")
    time.sleep(0.01)
print("ready", flush=True)
time.sleep(600)
"#;

/// The forker and its descendants; killed on drop if a test fails first.
struct Forked {
    forker: std::process::Child,
    pids: Vec<u32>,
}

impl Drop for Forked {
    fn drop(&mut self) {
        for pid in self
            .pids
            .iter()
            .filter_map(|&p| rustix::process::Pid::from_raw(p as i32))
        {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
        }
        let _ = self.forker.kill();
        let _ = self.forker.wait();
    }
}

/// Starts [`FORKER`] inside the cgroups of `worker` (v1: memory and pids)
/// once all three of its processes run there.
fn fork_inside(worker: u32) -> Forked {
    let out = tempfile::tempdir().unwrap();
    let mut forker = Command::new("python3")
        .args(["-c", FORKER])
        .arg(out.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let cgroups = std::fs::read_to_string(format!("/proc/{worker}/cgroup")).unwrap();
    let mut moved = 0;
    for line in cgroups.lines() {
        let mut parts = line.splitn(3, ':');
        let (_, controllers, path) = (parts.next().unwrap(), parts.next().unwrap(), parts.next().unwrap());
        for controller in ["memory", "pids"] {
            if controllers.split(',').any(|c| c == controller) {
                let procs = format!("/sys/fs/cgroup/{controller}{path}/cgroup.procs");
                std::fs::write(&procs, forker.id().to_string()).unwrap_or_else(|e| panic!("{procs}: {e}"));
                moved += 1;
            }
        }
    }
    assert_eq!(moved, 2, "the worker's cgroups: {cgroups}");
    forker.stdin.as_mut().unwrap().write_all(b"go\n").unwrap();
    let mut ready = String::new();
    let _ = BufReader::new(forker.stdout.take().unwrap()).read_line(&mut ready);
    if ready.trim() != "ready" {
        let _ = forker.kill();
        let mut stderr = String::new();
        let _ = std::io::Read::read_to_string(forker.stderr.as_mut().unwrap(), &mut stderr);
        panic!("the forker said {ready:?}: {stderr}");
    }
    let pids: Vec<u32> = ["parent", "child", "grandchild"]
        .iter()
        .map(|role| std::fs::read_to_string(out.path().join(role)).unwrap().parse().unwrap())
        .collect();
    let forked = Forked { forker, pids };
    assert!(forked.pids.iter().all(|&p| is_running(p)), "{:?}", forked.pids);
    forked
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn processes_forked_in_a_workers_cgroup_die_with_it_at_terminate_and_at_shutdown() {
    if !crate::needs::facility(
        "processes_forked_in_a_workers_cgroup_die_with_it_at_terminate_and_at_shutdown",
        "writable cgroup v1 hierarchies",
        crate::isolation::faults::cgroups_writable(),
    ) {
        return;
    }
    let dir = scratch();
    let server = Server::start(&config(dir.path(), ""), &[]);
    assert_eq!(server.invoke("victim", "echo", "x").status, 200);
    assert_eq!(server.invoke("other", "echo", "x").status, 200);

    // At terminate.
    let forked = fork_inside(server.worker_pids_of("ns:victim"));
    let reply = server.call("DELETE", "/v1/processes/ns:victim?grace=1", &[], b"");
    assert_eq!(reply.status, 200, "{}", reply.text());
    for &pid in &forked.pids {
        assert!(hygiene_wait_gone(pid).await, "{pid} outlived its worker's termination");
    }
    drop(forked);
    assert!(
        server
            .log_text()
            .contains("killed processes the worker left in its cgroup"),
        "{}",
        server.log_text()
    );
    assert_eq!(server.invoke("other", "echo", "still").text(), "still");

    // At shutdown.
    let forked = fork_inside(server.worker_pids_of("ns:other"));
    let (status, _) = server.terminate();
    assert!(status.success(), "{status}");
    for &pid in &forked.pids {
        assert!(hygiene_wait_gone(pid).await, "{pid} outlived the host's shutdown");
    }
}

/// Where each descriptor of `pid` points.
fn descriptors(pid: u32) -> Vec<String> {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .map(|p| p.display().to_string())
        .collect()
}

#[test]
fn a_worker_keeps_no_inherited_descriptor_and_can_gain_no_privilege() {
    let dir = scratch();
    // A descriptor the host inherits by mistake (no close-on-exec).
    let marker = dir.path().join("leaked-descriptor");
    let leaked = std::fs::File::create(&marker).unwrap();
    rustix::io::fcntl_setfd(&leaked, rustix::io::FdFlags::empty()).unwrap();
    let server = Server::start(&config(dir.path(), ""), &[]);
    let marker = marker.display().to_string();
    assert!(
        descriptors(server.pid()).contains(&marker),
        "the host inherited the descriptor (the positive control)"
    );
    assert_eq!(server.invoke("tenant-a", "echo", "x").status, 200);
    let worker = server.worker_pids_of("ns:tenant-a");
    let fds = descriptors(worker);
    assert!(!fds.contains(&marker), "the worker kept it: {fds:?}");
    let status = std::fs::read_to_string(format!("/proc/{worker}/status")).unwrap();
    assert!(status.contains("NoNewPrivs:\t1"), "{status}");
    drop(leaked);
}
