use bulkhead::ErrorKind;
use bulkhead::isolation::IsolationLevel;

use super::{Host, Options};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn level_none_shares_one_counter_for_everyone() {
    let host = Host::start(Options {
        level: IsolationLevel::None,
        ..Options::default()
    })
    .await;
    let mut seen = Vec::new();
    for (ns, session) in [("tenant-a", "s1"), ("tenant-b", "s2"), ("tenant-a", "s3")] {
        let out = host.call(ns, Some(session), "counter", "").await.unwrap();
        assert_eq!(out.process_id, "shared");
        seen.push(String::from_utf8(out.output).unwrap());
    }
    assert_eq!(seen, ["1", "2", "3"]);
    host.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn level_namespace_keeps_one_counter_per_tenant() {
    let host = Host::start(Options::default()).await;
    let mut seen = Vec::new();
    for (ns, session) in [
        ("tenant-a", "s1"),
        ("tenant-b", "s1"),
        ("tenant-a", "s2"),
        ("tenant-b", "s3"),
    ] {
        let out = host.call(ns, Some(session), "counter", "").await.unwrap();
        assert_eq!(out.process_id, format!("ns:{ns}"));
        seen.push(String::from_utf8(out.output).unwrap());
    }
    assert_eq!(seen, ["1", "1", "2", "2"]);
    host.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn level_session_keeps_one_counter_per_session() {
    let host = Host::start(Options {
        level: IsolationLevel::Session,
        ..Options::default()
    })
    .await;
    let mut seen = Vec::new();
    for session in ["s1", "s2", "s1", "s1"] {
        let out = host.call("tenant-a", Some(session), "counter", "").await.unwrap();
        assert_eq!(out.process_id, format!("session:{session}"));
        seen.push(String::from_utf8(out.output).unwrap());
    }
    assert_eq!(seen, ["1", "1", "2", "3"]);
    host.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_bound_to_one_namespace_refuses_another() {
    let host = Host::start(Options {
        level: IsolationLevel::Session,
        ..Options::default()
    })
    .await;
    assert_eq!(host.ok("tenant-a", Some("shared-id"), "counter", "").await, "1");
    let err = host
        .call("tenant-b", Some("shared-id"), "counter", "")
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Forbidden, "{err}");
    assert_eq!(host.ok("tenant-a", Some("shared-id"), "counter", "").await, "2");
    host.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_session_header_is_required_at_level_session() {
    let host = Host::start(Options {
        level: IsolationLevel::Session,
        ..Options::default()
    })
    .await;
    let err = host.call("tenant-a", None, "echo", "x").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidRequest, "{err}");
    host.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_call_is_a_cold_start_and_the_next_is_warm() {
    let host = Host::start(Options {
        warm: 1,
        ..Options::default()
    })
    .await;
    let first = host.call("tenant-a", None, "echo", "x").await.unwrap();
    assert!(first.cold_start.is_some());
    let second = host.call("tenant-a", None, "echo", "x").await.unwrap();
    assert!(second.cold_start.is_none());
    host.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_first_calls_share_one_creation() {
    let host = Host::start(Options {
        level: IsolationLevel::Session,
        warm: 0,
        ..Options::default()
    })
    .await;
    let calls = (0..10).map(|_| host.call("tenant-a", Some("s1"), "counter", ""));
    let outs = futures_util::future::join_all(calls).await;
    let mut counts: Vec<u64> = outs
        .into_iter()
        .map(|o| String::from_utf8(o.unwrap().output).unwrap().parse().unwrap())
        .collect();
    counts.sort_unstable();
    // One worker served them all: its counter went 1..=10.
    assert_eq!(counts, (1..=10).collect::<Vec<_>>());
    assert_eq!(host.service.processes().len(), 1);
    host.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_terminated_key_is_created_again_at_once() {
    let host = Host::start(Options::default()).await;
    assert_eq!(host.ok("tenant-a", None, "counter", "").await, "1");
    host.service.terminate("ns:tenant-a", None).await.unwrap();
    assert!(host.service.process("ns:tenant-a").is_none());
    // The reference timed out here (its finished entry was never purged).
    assert_eq!(host.ok("tenant-a", None, "counter", "").await, "1", "a fresh worker");
    let err = host.service.terminate("ns:nobody", None).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ProcessNotFound);
    host.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_terminate_the_next_call_is_a_cold_start_at_every_level() {
    for level in [IsolationLevel::None, IsolationLevel::Namespace, IsolationLevel::Session] {
        let host = Host::start(Options {
            level,
            warm: 2,
            ..Options::default()
        })
        .await;
        for round in 0..20 {
            // A pool worker adopted at once is still this call's cold start.
            assert!(host.service.wait_pool_filled(std::time::Duration::from_secs(30)).await);
            let out = host.call("tenant-a", Some("s1"), "echo", "x").await.unwrap();
            assert!(out.cold_start.is_some(), "{level} round {round}: a new worker");
            host.service.terminate(out.process_id.as_str(), None).await.unwrap();
        }
        host.stop().await;
    }
}
