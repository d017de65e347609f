//! The health report, and failures reported from outside.

use std::time::Duration;

use tokio::time::Instant;

use crate::procmgr::testing::{Hook, LONG, Step, manager, manager_with, wait_state};
use crate::procmgr::{ProcessManagerOptions, ProcessState, ProcessUpdate, ProcmgrError};

#[tokio::test(start_paused = true)]
async fn health_of_an_empty_manager_is_all_zero() {
    let pm = manager();
    let h = pm.health();
    assert_eq!(
        (
            h.total_processes,
            h.running_processes,
            h.terminating_processes,
            h.failed_processes
        ),
        (0, 0, 0, 0)
    );
    assert_eq!(h.work_queue_depth, 0);
    assert!(h.processes.is_empty());
}

#[tokio::test(start_paused = true)]
async fn health_counts_three_running_processes() {
    let pm = manager();
    for id in ["a", "b", "c"] {
        let _ = pm.update_process(ProcessUpdate::create(id, "c".into()));
        wait_state(&pm, id, ProcessState::Syncing).await;
    }
    tokio::time::advance(Duration::from_secs(5)).await;
    let h = pm.health();
    assert_eq!((h.total_processes, h.running_processes, h.failed_processes), (3, 3, 0));
    for p in h.processes.values() {
        assert_eq!(p.state, ProcessState::Syncing);
        assert!(p.healthy && p.last_sync.is_some());
        assert_eq!((p.error_count, p.restart_count), (0, 0));
        assert_eq!(p.uptime, Duration::from_secs(5));
    }
    assert_eq!(h.work_queue_depth, 3, "each waits for its resync");
}

#[tokio::test(start_paused = true)]
async fn process_with_more_than_five_errors_counts_as_failed() {
    let pm = manager();
    pm.syncer().set_default_sync(Step::err(ProcmgrError::hook("down")));
    let _ = pm.update_process(ProcessUpdate::create("p", "c".into()));
    let status = pm.wait_for("p", |s| s.error_count == 6, LONG).await;
    assert!(status.is_ok());
    let h = pm.health();
    assert_eq!(h.failed_processes, 1);
    assert!(!h.processes["p"].healthy);
    assert_eq!(h.processes["p"].uptime, Duration::ZERO, "never synced");
}

#[tokio::test(start_paused = true)]
async fn health_counts_terminating_processes() {
    let pm = manager();
    pm.syncer()
        .script_termination("p", Step::ok(()).after(Duration::from_secs(3600)));
    let _ = pm.update_process(ProcessUpdate::create("p", "c".into()));
    wait_state(&pm, "p", ProcessState::Syncing).await;
    let _ = pm.update_process(ProcessUpdate::terminate("p"));
    pm.syncer().wait_calls(Hook::Terminating, "p", 1).await;
    let h = pm.health();
    assert_eq!((h.running_processes, h.terminating_processes), (0, 1));
    assert!(!h.processes["p"].healthy);
}

#[tokio::test(start_paused = true)]
async fn uptime_is_frozen_at_finished() {
    let pm = manager();
    let _ = pm.update_process(ProcessUpdate::create("p", "c".into()));
    wait_state(&pm, "p", ProcessState::Syncing).await;
    tokio::time::advance(Duration::from_secs(7)).await;
    let _ = pm.update_process(ProcessUpdate::terminate("p"));
    wait_state(&pm, "p", ProcessState::Finished).await;
    tokio::time::advance(Duration::from_secs(100)).await;
    assert_eq!(pm.health().processes["p"].uptime, Duration::from_secs(7));
}

#[tokio::test(start_paused = true)]
async fn reported_failure_schedules_a_sync_after_backoff() {
    let pm = manager();
    let _ = pm.update_process(ProcessUpdate::create("p", "c".into()));
    wait_state(&pm, "p", ProcessState::Syncing).await;
    let now = Instant::now();
    let status = pm.report_failure("p", "worker died").expect("known");
    assert_eq!(status.error_count, 1);
    assert_eq!(status.last_error.as_deref(), Some("worker died"));
    let retry = status.retry_after().expect("retry queued");
    assert!(
        retry >= Duration::from_millis(1500) && retry <= Duration::from_millis(2500),
        "{retry:?}"
    );
    pm.syncer().wait_calls(Hook::Sync, "p", 2).await;
    let resync = &pm.syncer().calls_of(Hook::Sync, "p")[1];
    let late = resync.at - (now + retry);
    assert!(
        late <= Duration::from_millis(1),
        "due then, not at the 30 s resync: {late:?}"
    );
    assert_eq!(pm.process_status("p").map(|s| s.error_count), Some(0));
}

#[tokio::test(start_paused = true)]
async fn consecutive_reported_failures_back_off_and_reset_on_success() {
    let pm = manager_with(ProcessManagerOptions::default().with_backoff_period(Duration::from_secs(60)));
    // The restarts fail twice, then work.
    pm.syncer()
        .script_sync("p", Step::ok(crate::procmgr::SyncOutcome::running()));
    pm.syncer()
        .script_sync("p", Step::err(ProcmgrError::hook("spawn failed")));
    let _ = pm.update_process(ProcessUpdate::create("p", "c".into()));
    wait_state(&pm, "p", ProcessState::Syncing).await;
    let first = pm.report_failure("p", "died").expect("known");
    assert_eq!(first.error_count, 1);
    pm.syncer().wait_calls(Hook::Sync, "p", 2).await;
    let after_failed_restart = pm.process_status("p").expect("known");
    assert_eq!(after_failed_restart.error_count, 2);
    let second = after_failed_restart.retry_after().expect("queued");
    assert!(
        second >= Duration::from_secs(3) && second <= Duration::from_secs(5),
        "{second:?}"
    );
    pm.syncer().wait_calls(Hook::Sync, "p", 3).await;
    assert_eq!(pm.process_status("p").map(|s| s.error_count), Some(0));
    let again = pm.report_failure("p", "died again").expect("known");
    let retry = again.retry_after().expect("queued");
    assert!(
        retry <= Duration::from_millis(2500),
        "back to the first step: {retry:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn reported_failure_of_unknown_or_terminating_process() {
    let pm = manager();
    assert!(matches!(
        pm.report_failure("nope", "x"),
        Err(ProcmgrError::UnknownProcess { .. })
    ));
    pm.syncer()
        .script_termination("p", Step::ok(()).after(Duration::from_secs(10)));
    let _ = pm.update_process(ProcessUpdate::create("p", "c".into()));
    let _ = pm.update_process(ProcessUpdate::terminate("p"));
    let status = pm.report_failure("p", "died while stopping").expect("known");
    assert_eq!(status.error_count, 0, "termination goes on undisturbed");
}
