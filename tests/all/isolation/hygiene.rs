//! Process hygiene: grace periods are enforced, nothing leaks, and no worker
//! outlives the host, even one killed with SIGKILL.
//!
//! Three tests run in a child copy of this test binary (an ignored helper test
//! started with `--ignored --exact`), so that they see only their own
//! processes and descriptors, and so the host can be SIGKILLed.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use bulkhead::ErrorKind;
use rustix::process::{Pid, PidfdFlags, Signal, kill_process, pidfd_open};

use super::{Host, Options, is_running};

const HELPER_ENV: &str = "BULKHEAD_TEST_HELPER";

/// A child process killed and reaped when dropped, so a failing assertion
/// cannot leave it running.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs the ignored helper test `name` in a child test process.
fn helper(name: &str) -> KillOnDrop {
    KillOnDrop(
        Command::new(std::env::current_exe().unwrap())
            .args(["--ignored", "--exact", "--nocapture", "--test-threads=1", name])
            .env(HELPER_ENV, "1")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn helper"),
    )
}

/// Runs the ignored helper test `name` in a child test process and
/// requires it to pass.
fn helper_passes(name: &str) {
    let mut child = helper(name);
    let status = child.0.wait().unwrap();
    assert!(status.success(), "helper {name} failed: {status}");
}

fn in_helper() -> bool {
    std::env::var_os(HELPER_ENV).is_some()
}

/// Waits until `pid` has exited, by its pidfd (no polling), at most `timeout`.
pub(super) async fn wait_gone(pid: u32, timeout: Duration) -> bool {
    let Some(pid) = Pid::from_raw(pid as i32) else {
        return true;
    };
    let fd = match pidfd_open(pid, PidfdFlags::empty()) {
        Ok(fd) => fd,
        Err(_) => return true,
    };
    // SAFETY: the AsyncFd owns the pidfd until it is dropped at the end of
    // this function.
    let fd = unsafe { tokio::io::unix::AsyncFd::register(fd) }.unwrap();
    let gone = tokio::time::timeout(timeout, fd.readable())
        .await
        .is_ok_and(|r| r.is_ok());
    gone || !is_running(pid.as_raw_nonzero().get() as u32)
}

fn children_of_self() -> Vec<u32> {
    super::children_of(std::process::id())
}

/// Waits (bounded) until the warm pool is back at its target.
async fn pool_full(host: &Host) {
    assert!(
        host.service.wait_pool_filled(Duration::from_secs(20)).await,
        "the pool did not refill"
    );
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_that_ignores_shutdown_is_killed_at_its_grace_period() {
    let host = Host::start(Options::default()).await;
    host.ok("tenant-a", None, "echo", "x").await;
    let pid = host.pid_of("ns:tenant-a");
    // A stopped process cannot answer Shutdown; only SIGKILL ends it.
    kill_process(Pid::from_raw(pid as i32).unwrap(), Signal::STOP).unwrap();
    let grace = Duration::from_millis(500);
    let started = Instant::now();
    host.service.terminate("ns:tenant-a", Some(grace)).await.unwrap();
    let took = started.elapsed();
    assert!(took >= grace, "killed before its grace period: {took:?}");
    // The kill comes at the grace deadline; a loaded machine may take a
    // while to report the exit, but never the seconds of a missed kill.
    assert!(took < grace + Duration::from_secs(5), "took {took:?}");
    assert!(!is_running(pid));
    host.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_in_flight_finishes_within_the_grace_period() {
    let host = std::sync::Arc::new(Host::start(Options::default()).await);
    host.ok("tenant-a", None, "echo", "x").await;
    let call = {
        let host = std::sync::Arc::clone(&host);
        tokio::spawn(async move { host.call("tenant-a", None, "sleep", "300").await })
    };
    host.wait_load("ns:tenant-a", |load| load.in_flight > 0).await;
    host.service
        .terminate("ns:tenant-a", Some(Duration::from_secs(10)))
        .await
        .unwrap();
    assert_eq!(call.await.unwrap().unwrap().output, b"slept 300");
    let err = host.call("tenant-b", None, "nope", "").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PluginNotFound);
    std::sync::Arc::into_inner(host).unwrap().stop().await;
}

#[test]
fn create_terminate_cycles_leak_no_process_and_no_descriptor() {
    helper_passes("isolation::hygiene::helper_create_terminate_cycles");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "helper: run in a child process by create_terminate_cycles_leak_no_process_and_no_descriptor"]
async fn helper_create_terminate_cycles() {
    assert!(in_helper(), "run through its parent test");
    let host = Host::start(Options {
        warm: 2,
        ..Options::default()
    })
    .await;
    host.ok("warmup", None, "echo", "x").await;
    host.service.terminate("ns:warmup", None).await.unwrap();
    // Count with the pool full, as at the end.
    pool_full(&host).await;
    let fds_before = open_fds();
    for i in 0..200 {
        let ns = format!("cycle-{}", i % 7);
        assert_eq!(host.ok(&ns, None, "echo", "x").await, "x");
        host.service.terminate(&format!("ns:{ns}"), None).await.unwrap();
    }
    // Let the pool settle back to its target before counting.
    pool_full(&host).await;
    let fds_after = open_fds();
    assert_eq!(host.service.processes().len(), 0);
    let workers = children_of_self();
    assert_eq!(workers.len(), 2, "only the two pool workers may be left: {workers:?}");
    // A leak grows with the 200 cycles; allow one worker's descriptors
    // (socket, pidfd, stderr pipe) that its last task is still releasing.
    assert!(
        fds_after <= fds_before + 4,
        "descriptors grew from {fds_before} to {fds_after}"
    );
    host.stop().await;
    let left = children_of_self();
    assert!(
        left.is_empty(),
        "children left after shutdown (zombies or strays): {left:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_worker_survives_a_host_killed_with_sigkill() {
    let mut child = helper("isolation::hygiene::helper_host_that_gets_killed");
    let stdout = child.0.stdout.take().unwrap();
    let line = tokio::task::spawn_blocking(move || {
        BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            // libtest may print "test <name> ... " on the same line first.
            .find_map(|l| l.split_once("WORKERS").map(|(_, pids)| pids.to_owned()))
            .expect("the helper prints its workers")
    })
    .await
    .unwrap();
    let pids: Vec<u32> = line.split_whitespace().map(|p| p.parse().unwrap()).collect();
    assert!(pids.len() >= 3, "{line}");
    assert!(pids.iter().all(|&p| is_running(p)));
    child.0.kill().unwrap();
    child.0.wait().unwrap();
    for pid in pids {
        assert!(
            wait_gone(pid, Duration::from_secs(10)).await,
            "worker {pid} outlived its host"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "helper: run in a child process by no_worker_survives_a_host_killed_with_sigkill"]
async fn helper_host_that_gets_killed() {
    assert!(in_helper(), "run through its parent test");
    let host = Host::start(Options {
        warm: 1,
        ..Options::default()
    })
    .await;
    for ns in ["tenant-a", "tenant-b"] {
        host.ok(ns, None, "echo", "x").await;
    }
    pool_full(&host).await;
    let pids = children_of_self();
    println!(
        "WORKERS {}",
        pids.iter().map(u32::to_string).collect::<Vec<_>>().join(" ")
    );
    // Wait to be killed; give up (and fail) if the parent never does.
    tokio::time::sleep(Duration::from_secs(120)).await;
    panic!("the parent test never killed this helper");
}

/// `controller` -> path, from a `/proc/.../cgroup` file (v1 lines only).
fn v1_cgroups(path: &str) -> std::collections::BTreeMap<String, String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|line| {
            let mut parts = line.splitn(3, ':');
            let (_, controllers, cgroup) = (parts.next()?, parts.next()?, parts.next()?);
            let controller = ["memory", "pids"]
                .into_iter()
                .find(|c| controllers.split(',').any(|x| x == *c))?;
            Some((controller.to_owned(), cgroup.to_owned()))
        })
        .collect()
}

fn cgroup_v1_writable() -> bool {
    super::faults::cgroups_writable() && !std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists()
}

#[test]
fn a_worker_is_born_in_its_own_cgroups_and_no_host_thread_stays_there() {
    if !crate::needs::facility(
        "a_worker_is_born_in_its_own_cgroups_and_no_host_thread_stays_there",
        "writable cgroup v1 hierarchies",
        cgroup_v1_writable(),
    ) {
        return;
    }
    // In a child process: it must see no other host's spawner thread, which
    // may be inside a worker's cgroup for the moment of a spawn.
    helper_passes("isolation::hygiene::helper_workers_born_in_their_cgroups");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "helper: run in a child process by a_worker_is_born_in_its_own_cgroups_and_no_host_thread_stays_there"]
async fn helper_workers_born_in_their_cgroups() {
    assert!(in_helper(), "run through its parent test");
    // No warm pool: once the calls have returned, nothing is being spawned.
    let host = Host::start(Options {
        cgroups: true,
        warm: 0,
        ..Options::default()
    })
    .await;
    let home = v1_cgroups("/proc/self/cgroup");
    assert_eq!(home.len(), 2, "memory and pids are mounted: {home:?}");
    host.ok("tenant-a", None, "echo", "a").await;
    host.ok("tenant-b", None, "echo", "b").await;
    let (a, b) = (host.pid_of("ns:tenant-a"), host.pid_of("ns:tenant-b"));
    let (in_a, in_b) = (
        v1_cgroups(&format!("/proc/{a}/cgroup")),
        v1_cgroups(&format!("/proc/{b}/cgroup")),
    );
    for (controller, path) in &home {
        let (pa, pb) = (&in_a[controller], &in_b[controller]);
        let parent = format!("{}/bulkhead-{}/", path.trim_end_matches('/'), std::process::id());
        assert!(
            pa.starts_with(&parent) && pb.starts_with(&parent),
            "{controller}: {pa} and {pb} under {parent}"
        );
        assert_ne!(pa, pb, "{controller}: each worker has its own cgroup");
    }
    for task in std::fs::read_dir("/proc/self/task").unwrap() {
        let task = task.unwrap().path();
        let comm = std::fs::read_to_string(task.join("comm")).unwrap_or_default();
        assert_eq!(
            v1_cgroups(&task.join("cgroup").to_string_lossy()),
            home,
            "host thread {} is outside the host's cgroups",
            comm.trim()
        );
    }
    host.stop().await;
}
