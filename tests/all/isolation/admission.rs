//! The bulkhead: one tenant's flood fills its own compartment only.

use std::sync::Arc;
use std::time::Duration;

use bulkhead::ErrorKind;
use bulkhead::isolation::{AdmissionLimits, IsolationLevel, TenantPolicy};

use super::{Host, Options};

fn small_bulkhead() -> TenantPolicy {
    TenantPolicy {
        admission: AdmissionLimits {
            max_concurrent: 2,
            max_queued: 2,
            queue_timeout: Duration::from_secs(5),
        },
        ..TenantPolicy::default()
    }
}

/// Starts `n` slow calls for tenant-a and waits until they hold every slot
/// and queue place of their process.
async fn flood(host: &Arc<Host>, process_id: &str, n: usize) -> Vec<tokio::task::JoinHandle<()>> {
    host.ok("tenant-a", None, "echo", "warm").await;
    let calls = (0..n)
        .map(|_| {
            let host = Arc::clone(host);
            tokio::spawn(async move {
                let _ = host.call("tenant-a", None, "sleep", "1500").await;
            })
        })
        .collect();
    host.wait_load(process_id, |load| load.in_flight == 2 && load.queued == 2)
        .await;
    calls
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_level_none_a_flood_starves_the_other_tenant() {
    let host = Arc::new(
        Host::start(Options {
            level: IsolationLevel::None,
            policy: small_bulkhead(),
            ..Options::default()
        })
        .await,
    );
    host.ok("tenant-b", None, "echo", "warm").await;
    let flood = flood(&host, "shared", 4).await;
    let err = host.call("tenant-b", None, "echo", "hello").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::BulkheadFull, "{err}");
    assert!(err.kind().retry_after_secs(err.retry_after()).is_some());
    for call in flood {
        call.await.unwrap();
    }
    Arc::into_inner(host).unwrap().stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_level_namespace_the_same_flood_leaves_the_other_tenant_alone() {
    let host = Arc::new(
        Host::start(Options {
            policy: small_bulkhead(),
            ..Options::default()
        })
        .await,
    );
    host.ok("tenant-b", None, "echo", "warm").await;
    let flood = flood(&host, "ns:tenant-a", 4).await;
    // tenant-a's own extra calls are refused...
    let err = host.call("tenant-a", None, "echo", "more").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::BulkheadFull, "{err}");
    // ...while tenant-b is served, every time.
    for i in 0..20 {
        assert_eq!(host.ok("tenant-b", None, "echo", &i.to_string()).await, i.to_string());
    }
    for call in flood {
        call.await.unwrap();
    }
    Arc::into_inner(host).unwrap().stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_processes_evicts_the_least_recently_used_idle_process() {
    let host = Host::start(Options {
        max_processes: 2,
        ..Options::default()
    })
    .await;
    assert_eq!(host.ok("tenant-a", None, "counter", "").await, "1");
    assert_eq!(host.ok("tenant-b", None, "counter", "").await, "1");
    assert_eq!(host.ok("tenant-a", None, "counter", "").await, "2");
    // tenant-b is the least recently used: it makes room for tenant-c.
    assert_eq!(host.ok("tenant-c", None, "counter", "").await, "1");
    let ids: Vec<String> = host
        .service
        .processes()
        .into_iter()
        .map(|p| p.assignment.process_id.to_string())
        .collect();
    assert_eq!(ids, ["ns:tenant-a", "ns:tenant-c"]);
    host.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_processes_refuses_when_every_process_is_busy() {
    let host = Arc::new(
        Host::start(Options {
            max_processes: 1,
            ..Options::default()
        })
        .await,
    );
    host.ok("tenant-a", None, "echo", "x").await;
    let busy = {
        let host = Arc::clone(&host);
        tokio::spawn(async move { host.call("tenant-a", None, "sleep", "1000").await })
    };
    host.wait_load("ns:tenant-a", |load| load.in_flight > 0).await;
    let err = host.call("tenant-b", None, "echo", "x").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::WorkerUnavailable, "{err}");
    assert!(err.to_string().contains("max_processes"), "{err}");
    busy.await.unwrap().unwrap();
    Arc::into_inner(host).unwrap().stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_processes_are_terminated_after_the_idle_timeout() {
    let host = Host::start(Options {
        idle_timeout: Some(Duration::from_millis(300)),
        ..Options::default()
    })
    .await;
    host.ok("tenant-a", None, "echo", "x").await;
    let pid = host.pid_of("ns:tenant-a");
    // Gone from procmgr already means terminated and forgotten.
    if let Some(mut watch) = host.service.watch("ns:tenant-a") {
        watch
            .wait_for_timeout(|s| s.state.is_terminated(), Duration::from_secs(20))
            .await
            .expect("terminated when idle");
    }
    assert!(super::hygiene_wait_gone(pid).await);
    // The next call starts it again.
    assert_eq!(host.ok("tenant-a", None, "echo", "y").await, "y");
    host.stop().await;
}
