//! Point 5: host-side memory a guest can drive is capped: leaked streams
//! and pollables stop at the resource bound, random bytes at 1 MiB; the
//! worker's memory stays bounded and it keeps serving.

use std::sync::Arc;

use bulkhead::ErrorKind;
use bulkhead::sandbox::MAX_RESOURCES;

use super::Neighbour;
use crate::isolation::{Host, Options};

/// Resident memory of `pid`, in bytes.
fn rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().strip_suffix("kB"))
        .and_then(|v| v.trim().parse().ok())
        .expect("VmRSS");
    kib << 10
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leaking_host_resources_is_the_guests_own_trap_and_costs_the_worker_little() {
    let host = Arc::new(Host::start(Options::default()).await);
    let neighbour = Neighbour::start(&host, "neighbour").await;
    host.ok("attacker", None, "echo", "warm").await;
    let pid = host.pid_of("ns:attacker");
    let before = rss(pid);
    for attack in [
        format!("streams {}", MAX_RESOURCES * 100),
        format!("pollables {}", MAX_RESOURCES * 100),
        format!("random {}", 64 << 20),
    ] {
        for _ in 0..3 {
            let err = host.call("attacker", None, "hostile", &attack).await.unwrap_err();
            assert_eq!(err.kind(), ErrorKind::GuestTrap, "{attack}: {err}");
        }
    }
    let after = rss(pid);
    assert_eq!(host.pid_of("ns:attacker"), pid, "the same worker, alive");
    // A million unbounded streams would have cost the worker gigabytes.
    assert!(
        after < before + (256 << 20),
        "the worker grew from {before} to {after} bytes"
    );
    assert_eq!(host.ok("attacker", None, "hostile", "output 2").await, "xx");
    neighbour.stop().await.assert_untouched();
    Arc::into_inner(host).unwrap().stop().await;
}
