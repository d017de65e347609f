//! Point 7: one tenant cannot take another's processes. A tenant at level
//! `session` that churns session ids holds at most its quota and evicts only
//! its own processes; with `session_scope = "namespace"` it cannot take
//! another tenant's session id either.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bulkhead::ErrorKind;
use bulkhead::isolation::{IsolationLevel, SessionScope, TenantPolicy};

use crate::isolation::{Host, Options};

fn session_tenant(max_processes: usize) -> TenantPolicy {
    TenantPolicy {
        level: IsolationLevel::Session,
        max_processes: Some(max_processes),
        ..TenantPolicy::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_churning_sessions_never_evicts_another_tenants_worker() {
    let host = Arc::new(
        Host::start(Options {
            max_processes: 6,
            tenants: vec![("initech", session_tenant(3))],
            ..Options::default()
        })
        .await,
    );
    // acme counts its calls in its own worker: an eviction would restart
    // the count at 1.
    assert_eq!(host.ok("acme", None, "counter", "").await, "1");
    let stop = Arc::new(AtomicBool::new(false));
    let victim = {
        let (host, stop) = (Arc::clone(&host), Arc::clone(&stop));
        tokio::spawn(async move {
            let (mut expected, mut errors) = (2u64, Vec::new());
            while !stop.load(Ordering::Relaxed) {
                match host.call("acme", None, "counter", "").await {
                    Ok(out) => {
                        let count: u64 = String::from_utf8(out.output).unwrap().parse().unwrap();
                        if count != expected {
                            errors.push(format!("count {count}, expected {expected}"));
                        }
                        expected = count + 1;
                    }
                    Err(e) => errors.push(e.to_string()),
                }
            }
            (expected, errors)
        })
    };
    let mut refused = 0;
    for i in 0..40 {
        match host.call("initech", Some(&format!("s{i}")), "echo", "churn").await {
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::WorkerUnavailable => refused += 1,
            Err(e) => panic!("session s{i}: {e}"),
        }
        let held = host
            .service
            .processes()
            .iter()
            .filter(|p| p.assignment.namespace.as_ref().is_some_and(|n| n.as_str() == "initech"))
            .count();
        assert!(held <= 3, "initech holds {held} processes, over its quota");
    }
    assert_eq!(refused, 0, "idle sessions make room for its own new ones");
    stop.store(true, Ordering::Relaxed);
    let (next, errors) = victim.await.unwrap();
    assert!(errors.is_empty(), "acme's counter: {errors:?}");
    assert!(next > 2, "acme kept calling");
    Arc::into_inner(host).unwrap().stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_whose_quota_is_busy_gets_its_own_typed_error() {
    let host = Arc::new(
        Host::start(Options {
            tenants: vec![("initech", session_tenant(2))],
            ..Options::default()
        })
        .await,
    );
    let neighbour = super::Neighbour::start(&host, "acme").await;
    for i in 0..2 {
        host.ok("initech", Some(&format!("busy{i}")), "echo", "warm").await;
    }
    let slow: Vec<_> = (0..2)
        .map(|i| {
            let host = Arc::clone(&host);
            tokio::spawn(async move { host.call("initech", Some(&format!("busy{i}")), "sleep", "1500").await })
        })
        .collect();
    for i in 0..2 {
        host.wait_load(&format!("session:busy{i}"), |load| load.in_flight > 0)
            .await;
    }
    let err = host.call("initech", Some("third"), "echo", "x").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::WorkerUnavailable, "{err}");
    assert!(err.to_string().contains("tenants.initech.max_processes"), "{err}");
    for call in slow {
        call.await.unwrap().unwrap();
    }
    neighbour.stop().await.assert_untouched();
    Arc::into_inner(host).unwrap().stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_namespace_session_scope_a_session_id_cannot_be_taken_first() {
    for (scope, squatted) in [(SessionScope::Global, true), (SessionScope::Namespace, false)] {
        let host = Host::start(Options {
            level: IsolationLevel::Session,
            session_scope: scope,
            ..Options::default()
        })
        .await;
        // The attacker takes the victim's predictable session id first.
        host.ok("initech", Some("checkout"), "echo", "mine").await;
        let victim = host.call("acme", Some("checkout"), "echo", "x").await;
        match (squatted, victim) {
            (true, Err(e)) => assert_eq!(e.kind(), ErrorKind::Forbidden, "{e}"),
            (false, Ok(out)) => assert_eq!(out.process_id.as_str(), "session:acme:checkout"),
            (expected, got) => panic!("{scope}: squatted {expected}, got {got:?}"),
        }
        host.stop().await;
    }
}
