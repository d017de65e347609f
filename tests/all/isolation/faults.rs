//! A fault in one compartment stays there.

use std::sync::Arc;
use std::time::Duration;

use bulkhead::ErrorKind;
use bulkhead::isolation::TenantPolicy;
use bulkhead::sandbox::CallLimits;
use bulkhead::supervisor::ExitReason;

use super::{Host, Options, sigkill};
use crate::attacks::Neighbour;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_one_tenants_worker_leaves_the_others_untouched() {
    let host = Arc::new(
        Host::start(Options {
            warm: 2,
            ..Options::default()
        })
        .await,
    );
    for ns in ["tenant-a", "tenant-b", "tenant-c"] {
        host.ok(ns, None, "echo", "warm").await;
    }
    let b = Neighbour::start(&host, "tenant-b").await;
    let c = Neighbour::start(&host, "tenant-c").await;

    let pid = host.pid_of("ns:tenant-a");
    let in_flight = {
        let host = Arc::clone(&host);
        tokio::spawn(async move { host.call("tenant-a", None, "sleep", "20000").await })
    };
    // Kill once the call is admitted: sent to the worker or about to be, it
    // fails with worker_crashed either way.
    host.wait_load("ns:tenant-a", |load| load.in_flight > 0).await;
    sigkill(pid);
    let err = in_flight.await.unwrap().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::WorkerCrashed, "{err}");
    assert_eq!(err.process_id.as_ref().map(|id| id.as_str()), Some("ns:tenant-a"));

    host.wait_restarted("ns:tenant-a", 1).await;
    assert_eq!(host.ok("tenant-a", None, "echo", "back").await, "back");
    let process = host.service.process("ns:tenant-a").unwrap();
    assert_eq!(process.status.restart_count, 1);
    assert_ne!(super::pid(&process), Some(pid));

    for neighbour in [b, c] {
        neighbour.stop().await.assert_untouched();
    }
    Arc::into_inner(host).unwrap().stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guest_faults_are_typed_errors_for_their_tenant_only() {
    let policy = TenantPolicy {
        call: CallLimits {
            fuel: Some(50_000_000),
            memory: 16 << 20,
            timeout: Duration::from_millis(300),
        },
        ..TenantPolicy::default()
    };
    let host = Arc::new(
        Host::start(Options {
            policy,
            ..Options::default()
        })
        .await,
    );
    let b = Neighbour::start(&host, "tenant-b").await;
    for (plugin, payload, kind) in [
        ("spin", "", ErrorKind::FuelExhausted),
        ("hog", "", ErrorKind::MemoryLimit),
        ("trap", "panic", ErrorKind::GuestTrap),
        ("sleep", "5000", ErrorKind::Timeout),
        ("sleep", "abc", ErrorKind::GuestError),
    ] {
        let err = host.call("tenant-a", None, plugin, payload).await.unwrap_err();
        assert_eq!(err.kind(), kind, "{plugin} {payload}: {err}");
    }
    assert_eq!(host.ok("tenant-a", None, "echo", "fine").await, "fine");
    assert_eq!(host.service.process("ns:tenant-a").unwrap().status.restart_count, 0);
    b.stop().await.assert_untouched();
    Arc::into_inner(host).unwrap().stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_that_keeps_crashing_is_backed_off_longer_each_time_and_recovers() {
    let host = Host::start(Options {
        backoff: Duration::from_secs(5),
        ..Options::default()
    })
    .await;
    host.ok("tenant-a", None, "echo", "up").await;
    let mut waits = Vec::new();
    for round in 1..=3 {
        sigkill(host.pid_of("ns:tenant-a"));
        // Until procmgr's backoff runs out, calls are refused with a retry hint.
        let err = loop {
            match host.call("tenant-a", None, "echo", "x").await {
                Err(e) if e.kind() == ErrorKind::WorkerUnavailable => break e,
                Err(e) if e.kind() == ErrorKind::WorkerCrashed => continue,
                other => panic!("round {round}: expected worker_unavailable, got {other:?}"),
            }
        };
        waits.push(err.retry_after().expect("a retry hint"));
        host.wait_restarted("ns:tenant-a", round).await;
    }
    // Each worker died right after its restart: the backoff grew
    // (2 s, then 4 s, +-25%), up to the 5 s backoff period.
    assert!(waits[0] >= Duration::from_secs(1), "{waits:?}");
    assert!(waits[1] > waits[0], "{waits:?}");
    assert!(waits[2] <= Duration::from_millis(6250), "{waits:?}");
    // It stopped crashing: calls succeed again.
    assert_eq!(host.ok("tenant-a", None, "echo", "recovered").await, "recovered");
    let status = host.service.process("ns:tenant-a").unwrap().status;
    assert_eq!(status.restart_count, 3);
    assert!(status.healthy);
    host.stop().await;
}

pub(crate) fn cgroups_writable() -> bool {
    let probe = std::path::Path::new("/sys/fs/cgroup/memory");
    let dir = probe.join(format!("bulkhead-probe-{}", std::process::id()));
    let ok = std::fs::create_dir(&dir).is_ok();
    let _ = std::fs::remove_dir(&dir);
    ok || std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists() && rustix::process::geteuid().is_root()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_over_its_cgroup_memory_is_killed_by_the_kernel_and_the_host_carries_on() {
    if !crate::needs::facility(
        "a_worker_over_its_cgroup_memory_is_killed_by_the_kernel_and_the_host_carries_on",
        "writable cgroups (the OOM path)",
        cgroups_writable(),
    ) {
        return;
    }
    let policy = TenantPolicy {
        call: CallLimits {
            fuel: None,
            memory: 1 << 30,
            timeout: Duration::from_secs(60),
        },
        ..TenantPolicy::default()
    };
    let host = Host::start(Options {
        policy,
        cgroups: true,
        memory_max: 96 << 20,
        sandbox_max_memory: 1 << 30,
        ..Options::default()
    })
    .await;
    host.ok("tenant-b", None, "echo", "ok").await;
    let err = host.call("tenant-a", None, "hog", "").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::WorkerCrashed, "{err}");
    assert_eq!(host.ok("tenant-b", None, "echo", "still ok").await, "still ok");
    host.wait_restarted("ns:tenant-a", 1).await;
    let reasons: Vec<_> = host
        .exits
        .borrow()
        .iter()
        .filter(|e| e.process_id == "ns:tenant-a")
        .map(|e| e.exit.reason)
        .collect();
    assert_eq!(reasons, [ExitReason::Oom]);
    assert_eq!(host.ok("tenant-a", None, "echo", "again").await, "again");
    host.stop().await;
}

/// The cpu cgroup directory of `pid` (cgroup v1 `cpu` hierarchy, or v2).
fn cpu_cgroup_of(pid: u32) -> Option<std::path::PathBuf> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    text.lines().find_map(|line| {
        let mut parts = line.splitn(3, ':');
        let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
        let path = path.trim_start_matches('/');
        if controllers.split(',').any(|c| c == "cpu") {
            Some(std::path::Path::new("/sys/fs/cgroup/cpu").join(path))
        } else if controllers.is_empty() && std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
            Some(std::path::Path::new("/sys/fs/cgroup").join(path))
        } else {
            None
        }
    })
}

#[test]
fn a_tenants_cpu_weight_and_cap_are_applied_to_its_workers_cgroup_at_assignment() {
    let test = "a_tenants_cpu_weight_and_cap_are_applied_to_its_workers_cgroup_at_assignment";
    if !crate::needs::facility(test, "writable cgroups with the cpu controller", cgroups_writable()) {
        return;
    }
    let dir = crate::service::scratch();
    let extra = "[tenants.capped]\n[tenants.capped.limits]\ncpu_weight = 50\ncpu_max = 0.25\n";
    let server = crate::service::Server::start(&crate::service::config(dir.path(), extra), &[]);
    assert_eq!(server.invoke("capped", "echo", "x").text(), "x");
    assert_eq!(server.invoke("free", "echo", "y").text(), "y");
    let read = |pid: u32, file: &str| {
        let dir = cpu_cgroup_of(pid).unwrap_or_else(|| panic!("no cpu cgroup for {pid}"));
        std::fs::read_to_string(dir.join(file))
            .unwrap_or_else(|e| panic!("{}: {e}", dir.join(file).display()))
            .trim()
            .to_owned()
    };
    let (capped, free) = (server.worker_pids_of("ns:capped"), server.worker_pids_of("ns:free"));
    let host_dir = format!("bulkhead-{}", server.pid());
    for pid in [capped, free] {
        let dir = cpu_cgroup_of(pid).unwrap();
        assert!(
            dir.display().to_string().contains(&host_dir),
            "{pid} is not in its own cpu cgroup: {}",
            dir.display()
        );
    }
    if std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        assert_eq!(read(capped, "cpu.weight"), "50");
        assert_eq!(read(capped, "cpu.max"), "25000 100000");
        assert_eq!(read(free, "cpu.max"), "max 100000");
    } else {
        assert_eq!(read(capped, "cpu.shares"), "512");
        assert_eq!(read(capped, "cpu.cfs_quota_us"), "25000");
        assert_eq!(read(capped, "cpu.cfs_period_us"), "100000");
        assert_eq!(read(free, "cpu.shares"), "1024");
        assert_eq!(read(free, "cpu.cfs_quota_us"), "-1");
    }
}
