//! The isolation manager on procmgr's fake syncer, on paused time: routing,
//! concurrent first calls, a crash while a call waits, backoff, eviction,
//! timeouts and the idle reaper. No process is spawned; each test runs in
//! milliseconds.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::{IsolationError, IsolationKey, IsolationLevel, IsolationManager, IsolationSettings, TenantPolicy};
use crate::ipc::Assignment;
use crate::names::{Namespace, SessionId};
use crate::procmgr::testing::{FakeSyncer, Hook, LONG, Step};
use crate::procmgr::{Managed, ProcessManagerOptions, ProcessState, ProcmgrError, SyncOutcome};

type Manager = Arc<IsolationManager<FakeSyncer<Assignment>>>;

fn settings(level: IsolationLevel) -> IsolationSettings {
    IsolationSettings {
        default_policy: TenantPolicy {
            level,
            ..TenantPolicy::default()
        },
        ..IsolationSettings::default()
    }
}

fn manager_with(settings: IsolationSettings) -> Manager {
    let options = ProcessManagerOptions::default().with_backoff_period(Duration::from_secs(60));
    IsolationManager::new(settings, FakeSyncer::default(), options)
}

fn manager(level: IsolationLevel) -> Manager {
    manager_with(settings(level))
}

fn key(namespace: &str, session: &str) -> IsolationKey {
    IsolationKey {
        namespace: Namespace::new(namespace).unwrap(),
        session: SessionId::new(session).unwrap(),
    }
}

fn syncer(manager: &Manager) -> &FakeSyncer<Assignment> {
    manager.procmgr.syncer()
}

#[tokio::test(start_paused = true)]
async fn keys_route_to_the_memos_process_ids_at_each_level() {
    for (level, ids) in [
        (IsolationLevel::None, ["shared", "shared", "shared"]),
        (IsolationLevel::Namespace, ["ns:a", "ns:a", "ns:b"]),
        (IsolationLevel::Session, ["session:s1", "session:s2", "session:s3"]),
    ] {
        let m = manager(level);
        for (k, id) in [key("a", "s1"), key("a", "s2"), key("b", "s3")].iter().zip(ids) {
            let acquired = m.get_or_create_process(k).await.unwrap();
            assert_eq!(acquired.process_id.as_str(), id, "{level}");
            assert_eq!(acquired.level, level);
            assert!(acquired.handle.is_live());
        }
        let created: usize = ["shared", "ns:a", "ns:b", "session:s1", "session:s2", "session:s3"]
            .iter()
            .map(|id| syncer(&m).started(id).len())
            .sum();
        let distinct = ids.iter().collect::<std::collections::BTreeSet<_>>().len();
        assert_eq!(created, distinct, "{level}: one worker per process id");
    }
}

#[tokio::test(start_paused = true)]
async fn the_assignment_names_what_the_worker_is_bound_to() {
    let m = manager(IsolationLevel::Session);
    m.get_or_create_process(&key("acme", "s1")).await.unwrap();
    let calls = syncer(&m).calls_of(Hook::Sync, "session:s1");
    let assignment = &calls[0].config;
    assert_eq!(assignment.level, IsolationLevel::Session);
    assert_eq!(assignment.namespace.as_ref().map(Namespace::as_str), Some("acme"));
    assert_eq!(assignment.session.as_ref().map(SessionId::as_str), Some("s1"));
    let shared = manager(IsolationLevel::None);
    shared.get_or_create_process(&key("acme", "s1")).await.unwrap();
    let calls = syncer(&shared).calls_of(Hook::Sync, "shared");
    assert_eq!(
        (calls[0].config.namespace.as_ref(), calls[0].config.session.as_ref()),
        (None, None)
    );
}

#[tokio::test(start_paused = true)]
async fn the_first_call_is_cold_and_the_next_one_warm() {
    let m = manager(IsolationLevel::Namespace);
    let first = m.get_or_create_process(&key("a", "s")).await.unwrap();
    let second = m.get_or_create_process(&key("a", "s")).await.unwrap();
    assert!(first.cold && !second.cold);
    assert_eq!(first.handle, second.handle);
    assert!(
        Arc::ptr_eq(&first.admission, &second.admission),
        "one bulkhead per process"
    );
}

#[tokio::test(start_paused = true)]
async fn concurrent_first_calls_share_one_create() {
    let m = manager(IsolationLevel::Namespace);
    syncer(&m).script_sync(
        "ns:a",
        Step::ok(SyncOutcome::started(crate::procmgr::testing::FakeHandle::new())).after(Duration::from_millis(50)),
    );
    let calls = (0..10).map(|_| {
        let m = Arc::clone(&m);
        tokio::spawn(async move { m.get_or_create_process(&key("a", "s")).await })
    });
    let acquired: Vec<_> = futures_util::future::join_all(calls)
        .await
        .into_iter()
        .map(|r| r.unwrap().unwrap())
        .collect();
    assert_eq!(
        syncer(&m).count(Hook::Sync, "ns:a"),
        1,
        "one Create, no duplicate syncs"
    );
    assert!(acquired.iter().all(|a| a.handle == acquired[0].handle && a.cold));
}

#[tokio::test(start_paused = true)]
async fn a_crash_reported_while_a_call_waits_answers_unavailable_with_the_backoff() {
    let m = manager(IsolationLevel::Namespace);
    let handle = m.get_or_create_process(&key("a", "s")).await.unwrap().handle;
    // The worker dies; procmgr has not heard yet when the next call comes.
    handle.kill();
    let err = m.get_or_create_process(&key("a", "s")).await.unwrap_err();
    let IsolationError::Unavailable {
        reason, retry_after, ..
    } = &err
    else {
        panic!("{err:?}");
    };
    assert!(reason.contains("died"), "{reason}");
    let retry = retry_after.expect("the backoff").as_secs_f64();
    assert!((1.5..=2.5).contains(&retry), "first crash backs off 2 s +-25%: {retry}");
    // During the backoff the answer stays the same, without waiting.
    let started = Instant::now();
    let again = m.get_or_create_process(&key("a", "s")).await.unwrap_err();
    assert!(matches!(again, IsolationError::Unavailable { .. }), "{again:?}");
    assert_eq!(started.elapsed(), Duration::ZERO);
    // After it, a new worker serves (procmgr restarted it meanwhile).
    tokio::time::sleep(Duration::from_secs(3)).await;
    let back = m.get_or_create_process(&key("a", "s")).await.unwrap();
    assert_ne!(back.handle, handle);
    let status = m.watch("ns:a").unwrap().current();
    assert_eq!((status.restart_count, status.error_count), (1, 0));
}

#[tokio::test(start_paused = true)]
async fn a_call_waiting_for_a_start_that_fails_is_told_why() {
    let m = manager(IsolationLevel::Namespace);
    syncer(&m).script_sync(
        "ns:a",
        Step::err(ProcmgrError::hook("spawning the worker: no such file")).after(Duration::from_millis(20)),
    );
    let err = m.get_or_create_process(&key("a", "s")).await.unwrap_err();
    match &err {
        IsolationError::Unavailable {
            reason, retry_after, ..
        } => {
            assert!(reason.contains("no such file"), "{reason}");
            assert!(retry_after.is_some());
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(err.kind(), crate::ErrorKind::WorkerUnavailable);
}

#[tokio::test(start_paused = true)]
async fn a_start_that_never_ends_times_out_at_the_start_timeout() {
    let m = manager_with(IsolationSettings {
        start_timeout: Duration::from_secs(5),
        ..settings(IsolationLevel::Namespace)
    });
    syncer(&m).script_sync(
        "ns:a",
        Step::ok(SyncOutcome::running()).after(Duration::from_secs(3600)),
    );
    let started = Instant::now();
    let err = m.get_or_create_process(&key("a", "s")).await.unwrap_err();
    assert!(matches!(err, IsolationError::StartTimeout { .. }), "{err:?}");
    assert_eq!(started.elapsed(), Duration::from_secs(5));
}

#[tokio::test(start_paused = true)]
async fn a_session_belongs_to_the_namespace_that_created_it() {
    let m = manager(IsolationLevel::Session);
    m.get_or_create_process(&key("acme", "checkout")).await.unwrap();
    let err = m.get_or_create_process(&key("globex", "checkout")).await.unwrap_err();
    assert!(
        matches!(err, IsolationError::SessionOfAnotherNamespace { .. }),
        "{err:?}"
    );
    assert_eq!(err.kind(), crate::ErrorKind::Forbidden);
    assert!(m.get_or_create_process(&key("acme", "checkout")).await.is_ok());
}

#[tokio::test(start_paused = true)]
async fn at_max_processes_the_least_recently_used_idle_process_makes_room() {
    let m = manager_with(IsolationSettings {
        max_processes: 2,
        ..settings(IsolationLevel::Namespace)
    });
    m.get_or_create_process(&key("a", "s")).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1)).await;
    m.get_or_create_process(&key("b", "s")).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1)).await;
    m.touch(&"ns:a".into());
    m.get_or_create_process(&key("c", "s")).await.unwrap();
    let ids: Vec<String> = m
        .list_processes()
        .iter()
        .map(|p| p.assignment.process_id.to_string())
        .collect();
    assert_eq!(ids, ["ns:a", "ns:c"], "b was the least recently used");
    syncer(&m).wait_calls(Hook::Terminating, "ns:b", 1).await;
}

#[tokio::test(start_paused = true)]
async fn at_max_processes_a_busy_process_is_never_evicted() {
    let m = manager_with(IsolationSettings {
        max_processes: 1,
        ..settings(IsolationLevel::Namespace)
    });
    let busy = m.get_or_create_process(&key("a", "s")).await.unwrap();
    let running = busy.admission.admit().await.unwrap();
    let err = m.get_or_create_process(&key("b", "s")).await.unwrap_err();
    assert_eq!(err, IsolationError::Full { max: 1 });
    assert!(err.to_string().contains("max_processes"), "{err}");
    drop(running);
    m.get_or_create_process(&key("b", "s")).await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_terminated_key_is_created_again_at_once() {
    let m = manager(IsolationLevel::Namespace);
    let first = m.get_or_create_process(&key("a", "s")).await.unwrap();
    m.terminate_process("ns:a", Some(Duration::from_secs(1))).await.unwrap();
    assert!(!first.handle.is_live(), "the fake's termination kills it");
    assert!(m.get_process("ns:a").is_none());
    let again = m.get_or_create_process(&key("a", "s")).await.unwrap();
    assert_ne!(again.handle, first.handle);
    let err = m.terminate_process("ns:nobody", None).await.unwrap_err();
    assert!(matches!(err, IsolationError::NotFound { .. }), "{err:?}");
}

#[tokio::test(start_paused = true)]
async fn idle_processes_are_terminated_after_the_idle_timeout() {
    let m = manager_with(IsolationSettings {
        idle_timeout: Some(Duration::from_secs(30)),
        ..settings(IsolationLevel::Namespace)
    });
    let idle = m.get_or_create_process(&key("idle", "s")).await.unwrap();
    let busy = m.get_or_create_process(&key("busy", "s")).await.unwrap();
    let running = busy.admission.admit().await.unwrap();
    tokio::time::sleep(Duration::from_secs(29)).await;
    assert!(idle.handle.is_live(), "not before its time");
    let mut watch = m.watch("ns:idle").unwrap();
    let status = watch
        .wait_for_timeout(|s| s.state.is_terminated(), LONG)
        .await
        .expect("terminated");
    assert!(status.state >= ProcessState::Terminated);
    assert!(!idle.handle.is_live());
    assert!(busy.handle.is_live(), "a process with a call running is never idle");
    drop(running);
}

#[tokio::test(start_paused = true)]
async fn shutdown_terminates_every_process_and_refuses_new_ones() {
    let m = manager(IsolationLevel::Namespace);
    let a = m.get_or_create_process(&key("a", "s")).await.unwrap();
    let b = m.get_or_create_process(&key("b", "s")).await.unwrap();
    m.shutdown(Instant::now() + Duration::from_secs(10)).await.unwrap();
    assert!(!a.handle.is_live() && !b.handle.is_live());
    let err = m.get_or_create_process(&key("c", "s")).await.unwrap_err();
    assert_eq!(err, IsolationError::ShuttingDown);
}

#[tokio::test(start_paused = true)]
async fn after_a_terminate_the_next_call_waits_for_a_new_worker() {
    for level in [IsolationLevel::None, IsolationLevel::Namespace, IsolationLevel::Session] {
        let m = manager(level);
        let first = m.get_or_create_process(&key("a", "s1")).await.unwrap();
        m.terminate_process(first.process_id.as_str(), None).await.unwrap();
        let second = m.get_or_create_process(&key("a", "s1")).await.unwrap();
        assert!(second.cold, "{level}: a new worker");
        assert_ne!(second.handle, first.handle, "{level}");
    }
}

fn tenant(level: IsolationLevel, max_processes: Option<usize>) -> TenantPolicy {
    TenantPolicy {
        level,
        max_processes,
        ..TenantPolicy::default()
    }
}

#[tokio::test(start_paused = true)]
async fn a_tenant_at_its_quota_evicts_only_its_own_processes() {
    let mut settings = settings(IsolationLevel::Namespace);
    settings.max_processes = 4;
    let attacker = Namespace::new("initech").unwrap();
    settings
        .tenants
        .insert(attacker.clone(), tenant(IsolationLevel::Session, Some(2)));
    let m = manager_with(settings);
    let victim = m.get_or_create_process(&key("acme", "s")).await.unwrap();
    for i in 0..10 {
        tokio::time::sleep(Duration::from_millis(1)).await;
        m.get_or_create_process(&key("initech", &format!("s{i}")))
            .await
            .unwrap();
        let held = m
            .list_processes()
            .iter()
            .filter(|p| p.assignment.namespace.as_ref() == Some(&attacker))
            .count();
        assert!(held <= 2, "round {i}: the quota holds ({held})");
    }
    assert!(victim.handle.is_live(), "the other tenant's worker was never evicted");
    assert!(m.get_process("ns:acme").is_some());
    // With every one of its processes busy, the attacker is refused.
    let busy: Vec<_> = ["s8", "s9"]
        .iter()
        .map(|s| m.get_process(&format!("session:{s}")).expect("live"))
        .collect();
    let _running: Vec<_> = {
        let mut running = Vec::new();
        for p in &busy {
            let admission = m.admission(p.assignment.process_id.as_str()).unwrap();
            running.push(admission.admit().await.unwrap());
        }
        running
    };
    let err = m.get_or_create_process(&key("initech", "s10")).await.unwrap_err();
    assert!(matches!(err, IsolationError::QuotaFull { max: 2, .. }), "{err:?}");
    assert_eq!(err.kind(), crate::ErrorKind::WorkerUnavailable);
    assert!(err.to_string().contains("tenants.initech.max_processes"), "{err}");
}

#[tokio::test(start_paused = true)]
async fn a_full_host_takes_room_from_a_tenant_holding_more_never_from_one_holding_as_few() {
    let mut settings = settings(IsolationLevel::Session);
    settings.max_processes = 3;
    settings
        .tenants
        .insert(Namespace::new("big").unwrap(), tenant(IsolationLevel::Session, Some(3)));
    let m = manager_with(settings);
    m.get_or_create_process(&key("small", "only")).await.unwrap();
    for s in ["b1", "b2"] {
        tokio::time::sleep(Duration::from_millis(1)).await;
        m.get_or_create_process(&key("big", s)).await.unwrap();
    }
    // The host is full. A newcomer (holding none) takes the least recently
    // used idle process of a tenant holding more than it: big's b1, although
    // small's is older.
    m.get_or_create_process(&key("new", "n1")).await.unwrap();
    assert!(m.get_process("session:only").is_some(), "small keeps its process");
    assert!(m.get_process("session:b1").is_none());
    // big (holding 1 now) cannot take a slot from small or new (1 each).
    tokio::time::sleep(Duration::from_millis(1)).await;
    m.get_or_create_process(&key("big", "b3")).await.unwrap();
    assert!(m.get_process("session:b2").is_none(), "it evicted its own");
    assert!(m.get_process("session:only").is_some() && m.get_process("session:n1").is_some());
}

#[tokio::test(start_paused = true)]
async fn with_a_namespace_scope_no_tenant_can_take_another_tenants_session_id() {
    let mut settings = settings(IsolationLevel::Session);
    settings.session_scope = super::SessionScope::Namespace;
    let m = manager_with(settings);
    let a = m.get_or_create_process(&key("acme", "checkout")).await.unwrap();
    let b = m.get_or_create_process(&key("globex", "checkout")).await.unwrap();
    assert_eq!(a.process_id.as_str(), "session:acme:checkout");
    assert_eq!(b.process_id.as_str(), "session:globex:checkout");
    assert_ne!(a.handle, b.handle);
}

#[tokio::test(start_paused = true)]
async fn prewarmed_processes_start_first_stay_warm_and_are_never_reaped_or_evicted() {
    let mut tenants = std::collections::HashMap::new();
    tenants.insert(
        Namespace::new("shared-tenant").unwrap(),
        tenant(IsolationLevel::None, None),
    );
    let m = manager_with(IsolationSettings {
        idle_timeout: Some(Duration::from_secs(30)),
        max_processes: 3,
        prewarm: ["warm", "shared-tenant"]
            .iter()
            .map(|ns| Namespace::new(*ns).unwrap())
            .collect(),
        tenants,
        ..settings(IsolationLevel::Namespace)
    });
    let all: Vec<Namespace> = m.settings().prewarm.iter().cloned().collect();
    let mut created: Vec<String> = m.prewarm(&all).iter().map(ToString::to_string).collect();
    created.sort();
    assert_eq!(created, ["ns:warm", "shared"]);
    assert!(m.is_pinned("ns:warm") && m.is_pinned("shared") && !m.is_pinned("ns:other"));
    assert!(m.wait_prewarmed(LONG).await);
    assert!(m.prewarm(&all).is_empty(), "created once");
    assert!(
        m.prewarm(&[Namespace::new("other").unwrap()]).is_empty(),
        "not a pre-warmed tenant"
    );

    // The tenant's first call finds its process live: warm.
    let first = m.get_or_create_process(&key("warm", "default")).await.unwrap();
    assert!(!first.cold);
    assert_eq!(first.process_id.as_str(), "ns:warm");

    // Past the idle timeout only the unpinned process goes.
    let other = m.get_or_create_process(&key("other", "s")).await.unwrap();
    let mut watch = m.watch("ns:other").unwrap();
    watch
        .wait_for_timeout(|s| s.state.is_terminated(), LONG)
        .await
        .expect("the unpinned process is reaped");
    assert!(!other.handle.is_live());
    assert!(first.handle.is_live(), "a pre-warmed process is never idle");

    // At max_processes, room comes from unpinned processes only.
    m.get_or_create_process(&key("b", "s")).await.unwrap();
    let err = m.get_or_create_process(&key("c", "s")).await;
    assert!(err.is_ok(), "b made room: {err:?}");
    let err = m.get_or_create_process(&key("d", "s")).await;
    assert!(err.is_ok(), "c made room: {err:?}");
    let mut ids: Vec<String> = m
        .list_processes()
        .iter()
        .map(|p| p.assignment.process_id.to_string())
        .collect();
    ids.sort();
    assert_eq!(ids, ["ns:d", "ns:warm", "shared"]);
    assert!(first.handle.is_live());
}

#[tokio::test(start_paused = true)]
async fn a_prewarmed_process_that_fails_to_start_does_not_hold_up_readiness() {
    let m = manager_with(IsolationSettings {
        prewarm: ["broken", "fine"]
            .iter()
            .map(|ns| Namespace::new(*ns).unwrap())
            .collect(),
        ..settings(IsolationLevel::Namespace)
    });
    syncer(&m).script_sync(
        "ns:broken",
        Step::err(ProcmgrError::hook("spawning the worker: no such file")).after(Duration::from_millis(20)),
    );
    let all: Vec<Namespace> = m.settings().prewarm.iter().cloned().collect();
    assert_eq!(m.prewarm(&all).len(), 2);
    // Settled: fine is live, broken failed its start (procmgr retries it).
    assert!(m.wait_prewarmed(Duration::from_secs(5)).await);
    let fine = m.get_or_create_process(&key("fine", "default")).await.unwrap();
    assert!(!fine.cold);
    assert!(m.get_process("ns:broken").is_some(), "still pinned, being retried");
}
