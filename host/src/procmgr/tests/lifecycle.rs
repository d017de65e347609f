//! Creating, updating, syncing, failing and retrying processes.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use crate::procmgr::testing::{FakeHandle, Hook, LONG, Manager, Step, manager, manager_with, wait_state};
use crate::procmgr::{
    DEFAULT_STABLE_UPTIME, ProcessManagerOptions, ProcessState, ProcessUpdate, ProcmgrError, SyncOutcome, UpdateType,
};

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

#[tokio::test(start_paused = true)]
async fn create_brings_process_to_syncing() {
    let pm = manager();
    let rx = pm.update_process(ProcessUpdate::create("p", "cfg".into()));
    assert!(rx.is_ok());
    wait_state(&pm, "p", ProcessState::Syncing).await;
    let status = pm.process_status("p").expect("known");
    assert_eq!(status.state, ProcessState::Syncing);
    assert!(status.healthy);
    assert_eq!(status.error_count, 0);
    assert!(status.last_sync.is_some() && status.started_at.is_some());
    let calls = pm.syncer().calls_of(Hook::Sync, "p");
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].update_type, Some(UpdateType::Create));
    assert_eq!(calls[0].config, "cfg");
}

#[tokio::test(start_paused = true)]
async fn update_runs_sync_with_the_new_config() {
    let pm = manager();
    let _ = pm.update_process(ProcessUpdate::create("p", "v1".into()));
    wait_state(&pm, "p", ProcessState::Syncing).await;
    let _ = pm.update_process(ProcessUpdate::update("p", "v2".into()));
    pm.syncer().wait_calls(Hook::Sync, "p", 2).await;
    let calls = pm.syncer().calls_of(Hook::Sync, "p");
    assert_eq!(calls[1].update_type, Some(UpdateType::Update));
    assert_eq!(calls[1].config, "v2");
}

#[tokio::test(start_paused = true)]
async fn update_of_unknown_id_without_config_is_rejected() {
    let pm = manager();
    let err = pm.update_process(ProcessUpdate::sync("nope")).err();
    assert!(matches!(err, Some(ProcmgrError::UnknownProcess { .. })));
    assert!(pm.process_status("nope").is_none());
}

#[tokio::test(start_paused = true)]
async fn update_of_unknown_id_with_config_creates_it() {
    let pm = manager();
    let _ = pm.update_process(ProcessUpdate::update("p", "cfg".into()));
    wait_state(&pm, "p", ProcessState::Syncing).await;
}

#[tokio::test(start_paused = true)]
async fn concurrent_processes_all_reach_syncing() {
    let pm = manager();
    for i in 0..20 {
        let _ = pm.update_process(ProcessUpdate::create(format!("p{i}"), format!("c{i}")));
    }
    for i in 0..20 {
        wait_state(&pm, &format!("p{i}"), ProcessState::Syncing).await;
        assert_eq!(
            pm.syncer().calls_of(Hook::Sync, &format!("p{i}"))[0].config,
            format!("c{i}")
        );
    }
    assert_eq!(pm.health().running_processes, 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_updates_of_a_never_created_id_make_one_process() {
    let pm = manager();
    let updates = 50;
    let tasks: Vec<_> = (0..updates)
        .map(|i| {
            let pm = pm.clone();
            tokio::spawn(async move {
                let _ = pm.update_process(ProcessUpdate::update("p", format!("v{i}")));
            })
        })
        .collect();
    for t in tasks {
        assert!(t.await.is_ok());
    }
    let status = pm
        .wait_for("p", |s| s.state == ProcessState::Syncing, Duration::from_secs(30))
        .await;
    assert!(status.is_ok());
    let syncs = pm.syncer().count(Hook::Sync, "p");
    assert!((1..=updates).contains(&syncs), "syncs {syncs} > updates {updates}");
    assert_eq!(pm.health().total_processes, 1);
}

#[tokio::test(start_paused = true)]
async fn sync_error_is_counted_and_kept() {
    let pm = manager();
    pm.syncer().script_sync("p", Step::err(ProcmgrError::hook("boom")));
    let _ = pm.update_process(ProcessUpdate::create("p", "c".into()));
    let status = pm.wait_for("p", |s| s.error_count == 1, LONG).await;
    let status = status.expect("error counted");
    assert_eq!(status.state, ProcessState::Starting, "state unchanged by an error");
    assert_eq!(status.last_error.as_deref(), Some("boom"));
    assert!(!status.healthy);
    assert!(status.next_sync_at.is_some(), "a retry is queued");
}

#[tokio::test(start_paused = true)]
async fn failed_sync_is_retried_until_it_succeeds() {
    let pm = manager();
    pm.syncer().script_sync("p", Step::err(ProcmgrError::hook("no")));
    pm.syncer().script_sync("p", Step::err(ProcmgrError::hook("no")));
    let _ = pm.update_process(ProcessUpdate::create("p", "c".into()));
    wait_state(&pm, "p", ProcessState::Syncing).await;
    let status = pm.process_status("p").expect("known");
    assert_eq!(status.error_count, 0, "errors reset on success");
    assert_eq!(status.last_error, None);
    assert_eq!(pm.syncer().count(Hook::Sync, "p"), 3);
}

/// tokio's timer wheel fires at millisecond resolution, rounding a deadline
/// up: with paused time a delay of `d` is observed as at most `d` + 1 ms.
const TIMER_SLACK: f64 = 0.002;

#[tokio::test(start_paused = true)]
async fn synced_process_is_resynced_periodically() {
    let pm = manager_with(ProcessManagerOptions::default().with_resync_interval(Duration::from_secs(1)));
    let _ = pm.update_process(ProcessUpdate::create("p", "c".into()));
    pm.syncer().wait_calls(Hook::Sync, "p", 5).await;
    let calls = pm.syncer().calls_of(Hook::Sync, "p");
    for pair in calls.windows(2) {
        let gap = secs(pair[1].at - pair[0].at);
        assert!((0.9..=1.1 + TIMER_SLACK).contains(&gap), "resync gap {gap}");
    }
    assert!(calls[1..].iter().all(|c| c.update_type == Some(UpdateType::Sync)));
}

#[tokio::test(start_paused = true)]
async fn retries_back_off_exponentially() {
    let pm = manager_with(ProcessManagerOptions::default().with_backoff_period(Duration::from_secs(60)));
    pm.syncer().set_default_sync(Step::err(ProcmgrError::hook("down")));
    let _ = pm.update_process(ProcessUpdate::create("p", "c".into()));
    pm.syncer().wait_calls(Hook::Sync, "p", 5).await;
    let calls = pm.syncer().calls_of(Hook::Sync, "p");
    // After the n-th consecutive failure: 2^n s +-25%.
    let bounds = [(1.5, 2.5), (3.0, 5.0), (6.0, 10.0), (12.0, 20.0)];
    for (pair, (lo, hi)) in calls.windows(2).zip(bounds) {
        let gap = secs(pair[1].at - pair[0].at);
        assert!(gap >= lo && gap <= hi + TIMER_SLACK, "gap {gap} not in [{lo},{hi}]");
    }
}

#[tokio::test(start_paused = true)]
async fn backoff_is_capped_by_the_backoff_period() {
    let pm = manager_with(ProcessManagerOptions::default().with_backoff_period(Duration::from_secs(2)));
    pm.syncer().set_default_sync(Step::err(ProcmgrError::hook("down")));
    let _ = pm.update_process(ProcessUpdate::create("p", "c".into()));
    pm.syncer().wait_calls(Hook::Sync, "p", 6).await;
    let calls = pm.syncer().calls_of(Hook::Sync, "p");
    for pair in calls.windows(2) {
        let gap = secs(pair[1].at - pair[0].at);
        assert!(gap <= 2.5 + TIMER_SLACK, "gap {gap} above the cap +25%");
    }
}

#[tokio::test(start_paused = true)]
async fn transient_error_is_retried_within_three_seconds() {
    let pm = manager();
    pm.syncer().script_sync("p", Step::err(ProcmgrError::hook("temporary")));
    let start = Instant::now();
    let _ = pm.update_process(ProcessUpdate::create("p", "c".into()));
    wait_state(&pm, "p", ProcessState::Syncing).await;
    assert!(start.elapsed() <= Duration::from_secs(3), "{:?}", start.elapsed());
}

#[tokio::test(start_paused = true)]
async fn cancelled_sync_is_retried_after_about_a_second() {
    let pm = manager();
    pm.syncer().script_sync("p", Step::err(ProcmgrError::Cancelled));
    pm.syncer().script_sync("p", Step::err(ProcmgrError::DeadlineExceeded));
    let _ = pm.update_process(ProcessUpdate::create("p", "c".into()));
    pm.syncer().wait_calls(Hook::Sync, "p", 3).await;
    let calls = pm.syncer().calls_of(Hook::Sync, "p");
    for pair in calls.windows(2) {
        let gap = secs(pair[1].at - pair[0].at);
        assert!((0.5..1.5 + TIMER_SLACK).contains(&gap), "transient retry gap {gap}");
    }
}

#[tokio::test(start_paused = true)]
async fn processes_failing_twice_then_succeeding_all_recover() {
    let pm = manager();
    for i in 0..5 {
        let id = format!("p{i}");
        pm.syncer().script_sync(&id, Step::err(ProcmgrError::hook("once")));
        pm.syncer().script_sync(&id, Step::err(ProcmgrError::hook("twice")));
        let _ = pm.update_process(ProcessUpdate::create(id, "c".into()));
    }
    for i in 0..5 {
        let id = format!("p{i}");
        wait_state(&pm, &id, ProcessState::Syncing).await;
        assert_eq!(pm.syncer().count(Hook::Sync, &id), 3);
        assert_eq!(pm.process_status(&id).map(|s| s.error_count), Some(0));
    }
}

#[tokio::test(start_paused = true)]
async fn finished_process_ignores_updates() {
    let pm = manager();
    let _ = pm.update_process(ProcessUpdate::create("p", "c".into()));
    wait_state(&pm, "p", ProcessState::Syncing).await;
    let _ = pm.update_process(ProcessUpdate::terminate("p"));
    wait_state(&pm, "p", ProcessState::Finished).await;
    let syncs = pm.syncer().calls().len();
    let rx = pm.update_process(ProcessUpdate::update("p", "c2".into()));
    assert_eq!(rx.map(|rx| rx.state()).ok(), Some(ProcessState::Finished));
    let _ = pm.update_process(ProcessUpdate::sync("p"));
    let _ = pm.update_process(ProcessUpdate::terminate("p"));
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert_eq!(pm.syncer().calls().len(), syncs, "no hook ran");
    assert!(pm.is_process_finished("p"));
    assert!(pm.is_process_terminated("p"), "terminated stays true after Finished");
}

#[tokio::test(start_paused = true)]
async fn late_subscriber_sees_the_state_change() {
    let pm = manager();
    let mut early = pm
        .update_process(ProcessUpdate::create("p", "c".into()))
        .expect("created");
    assert!(early.wait_for(|s| s.state == ProcessState::Syncing).await.is_ok());
    let start = Instant::now();
    let late = pm
        .wait_for("p", |s| s.state == ProcessState::Syncing, Duration::from_secs(1))
        .await;
    assert!(late.is_ok());
    assert_eq!(start.elapsed(), Duration::ZERO);
}

#[tokio::test(start_paused = true)]
async fn wait_for_times_out_when_the_state_never_comes() {
    let pm = manager();
    pm.syncer()
        .script_sync("p", Step::ok(SyncOutcome::running()).after(Duration::from_secs(3600)));
    let _ = pm.update_process(ProcessUpdate::create("p", "c".into()));
    let waited = pm
        .wait_for("p", |s| s.state == ProcessState::Syncing, Duration::from_secs(1))
        .await;
    assert!(matches!(waited, Err(ProcmgrError::WaitTimeout { .. })), "{waited:?}");
}

#[tokio::test(start_paused = true)]
async fn panicking_hook_is_an_error_not_a_dead_worker() {
    #[derive(Debug)]
    struct Panicky(std::sync::atomic::AtomicBool);
    impl crate::procmgr::ProcessSyncer for Panicky {
        type Config = ();
        type Handle = ();
        async fn sync_process(
            &self,
            _: crate::procmgr::SyncContext,
            _: UpdateType,
            _: &(),
        ) -> Result<SyncOutcome, ProcmgrError> {
            if !self.0.swap(true, std::sync::atomic::Ordering::SeqCst) {
                panic!("first sync explodes");
            }
            Ok(SyncOutcome::running())
        }
        async fn sync_terminating_process(
            &self,
            _: crate::procmgr::TerminatingContext,
            _: &(),
        ) -> Result<(), ProcmgrError> {
            Ok(())
        }
        async fn sync_terminated_process(&self, _: crate::procmgr::SyncContext, _: &()) -> Result<(), ProcmgrError> {
            Ok(())
        }
    }
    let pm = crate::procmgr::ProcessManager::new(
        Panicky(std::sync::atomic::AtomicBool::new(false)),
        ProcessManagerOptions::default(),
    );
    let pm = Arc::new(pm);
    let _ = pm.update_process(ProcessUpdate::create("p", ()));
    let status = pm.wait_for("p", |s| s.error_count == 1, LONG).await;
    let message = status.ok().and_then(|s| s.last_error);
    assert!(message.is_some_and(|m| m.contains("first sync explodes")));
    let synced = pm.wait_for("p", |s| s.state == ProcessState::Syncing, LONG).await;
    assert!(synced.is_ok());
}

#[tokio::test(start_paused = true)]
async fn dropping_the_manager_stops_its_tasks() {
    let pm = manager();
    for id in ["a", "b", "c"] {
        let _ = pm.update_process(ProcessUpdate::create(id, "c".into()));
        wait_state(&pm, id, ProcessState::Syncing).await;
    }
    let metrics = tokio::runtime::Handle::current().metrics();
    assert_eq!(
        metrics.num_alive_tasks(),
        7,
        "a dispatcher, three process tasks and three handle watchers"
    );
    drop(pm);
    // Advancing paused time lets every woken task run to completion.
    tokio::time::sleep(Duration::from_millis(1)).await;
    assert_eq!(metrics.num_alive_tasks(), 0);
}

/// Kills the `n`th handle started for `id` and returns the backoff procmgr
/// chose, in seconds, once it has taken the handle down.
async fn kill_handle(pm: &Manager, id: &str, n: usize) -> f64 {
    let handle = pm.syncer().wait_started(id, n).await;
    wait_state(pm, id, ProcessState::Syncing).await;
    handle.kill();
    let status = pm
        .wait_for(id, |s| s.handle.is_none() && s.error_count > 0, LONG)
        .await
        .expect("procmgr hears of the death");
    secs(status.retry_after().expect("a restart is queued"))
}

#[tokio::test(start_paused = true)]
async fn a_crash_streak_grows_the_backoff_though_restarts_succeed() {
    let pm = manager_with(ProcessManagerOptions::default().with_backoff_period(Duration::from_secs(60)));
    let _ = pm.update_process(ProcessUpdate::create("p", "c".into()));
    // The first death of a streak backs off by the error count alone.
    let first = kill_handle(&pm, "p", 1).await;
    assert!((1.5..=2.5 + TIMER_SLACK).contains(&first), "{first}");
    // Each restart succeeds (the error count goes back to 0), and each new
    // handle dies at once: the streak still doubles the backoff.
    let second = kill_handle(&pm, "p", 2).await;
    assert!((3.0..=5.0 + TIMER_SLACK).contains(&second), "{second}");
    let third = kill_handle(&pm, "p", 3).await;
    assert!((6.0..=10.0 + TIMER_SLACK).contains(&third), "{third}");
    let status = pm.process_status("p").unwrap();
    assert_eq!(status.restart_count, 2, "two handles replaced so far");
    // A handle that lived past the stable uptime starts a new streak.
    pm.syncer().wait_started("p", 4).await;
    wait_state(&pm, "p", ProcessState::Syncing).await;
    tokio::time::sleep(DEFAULT_STABLE_UPTIME).await;
    let fresh = kill_handle(&pm, "p", 4).await;
    assert!((1.5..=2.5 + TIMER_SLACK).contains(&fresh), "{fresh}");
    assert_eq!(pm.process_status("p").unwrap().restart_count, 3);
}

#[tokio::test(start_paused = true)]
async fn a_handle_is_published_while_syncing_and_taken_down_when_it_dies() {
    let pm = manager();
    let mut watch = pm.update_process(ProcessUpdate::create("p", "c".into())).unwrap();
    let live = watch
        .wait_for_timeout(|s| s.handle.is_some(), LONG)
        .await
        .expect("published");
    let handle = live.handle.expect("the handle");
    assert_eq!(Some(&handle), pm.syncer().started("p").first());
    handle.kill();
    let down = watch.wait_for_timeout(|s| s.handle.is_none(), LONG).await.unwrap();
    assert_eq!(down.state, ProcessState::Syncing, "still the same process, restarting");
    assert_eq!(down.error_count, 1);
    assert!(
        down.last_error.as_deref().is_some_and(|e| e.contains("died")),
        "{down:?}"
    );
    let back = watch.wait_for_timeout(|s| s.handle.is_some(), LONG).await.unwrap();
    assert_ne!(back.handle, Some(handle), "a new handle");
    assert_eq!((back.restart_count, back.error_count), (1, 0));
    // Terminating keeps the handle published (the worker drains its
    // calls) until the process is terminated; then it is gone.
    let back_handle = back.handle.clone();
    let _ = pm.update_process(ProcessUpdate::terminate("p"));
    let terminating = pm.process_status("p").unwrap();
    assert_eq!(terminating.state, ProcessState::Terminating);
    assert_eq!(terminating.handle, back_handle, "still draining");
    let gone = watch
        .wait_for_timeout(|s| s.state != ProcessState::Terminating, LONG)
        .await
        .unwrap();
    assert!(gone.handle.is_none(), "{gone:?}");
}

#[tokio::test(start_paused = true)]
async fn a_sync_that_finds_its_handle_running_does_not_undo_its_death_meanwhile() {
    let pm = manager();
    let _ = pm.update_process(ProcessUpdate::create("p", "c".into()));
    let first = pm.syncer().wait_started("p", 1).await;
    wait_state(&pm, "p", ProcessState::Syncing).await;
    // A slow sync that looked at the live handle and will say "running"...
    pm.syncer()
        .script_sync("p", Step::ok(SyncOutcome::running()).after(Duration::from_secs(5)));
    // ...and the restart after the death fails.
    pm.syncer()
        .script_sync("p", Step::err(ProcmgrError::hook("restart fails")));
    let _ = pm.update_process(ProcessUpdate::sync("p"));
    pm.syncer().wait_calls(Hook::Sync, "p", 2).await;
    // The handle dies while that sync runs.
    first.kill();
    let dead = pm
        .wait_for("p", |s| s.handle.is_none() && s.error_count == 1, LONG)
        .await
        .expect("the death is recorded");
    assert!(
        dead.last_error.as_deref().is_some_and(|e| e.contains("died")),
        "{dead:?}"
    );
    // The stale "running" must not reset the streak: the failed restart
    // counts on top of the death.
    pm.syncer().wait_calls(Hook::Sync, "p", 3).await;
    let failed = pm
        .wait_for(
            "p",
            |s| s.last_error.as_deref().is_some_and(|e| e.contains("restart fails")),
            LONG,
        )
        .await
        .expect("the failed restart is recorded");
    assert_eq!(failed.error_count, 2, "{failed:?}");
}

#[tokio::test(start_paused = true)]
async fn the_death_of_a_replaced_handle_is_no_news() {
    let pm = manager();
    let _ = pm.update_process(ProcessUpdate::create("p", "c".into()));
    let old = pm.syncer().wait_started("p", 1).await;
    wait_state(&pm, "p", ProcessState::Syncing).await;
    // The next sync replaces the (still live) handle, as a syncer does with
    // a worker that stopped answering.
    pm.syncer()
        .script_sync("p", Step::ok(SyncOutcome::started(FakeHandle::new())));
    let _ = pm.update_process(ProcessUpdate::sync("p"));
    let new = pm.syncer().wait_started("p", 2).await;
    let status = pm
        .wait_for("p", |s| s.handle.as_ref() == Some(&new), LONG)
        .await
        .unwrap();
    assert_eq!(status.restart_count, 1);
    old.kill();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let status = pm.process_status("p").unwrap();
    assert_eq!((status.error_count, status.handle.as_ref()), (0, Some(&new)));
}
