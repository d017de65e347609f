//! One test per defect of the reference implementation; each fails on the
//! defective behaviour. Paused time makes "at once" exact: zero virtual time.

use std::time::Duration;

use tokio::time::Instant;

use crate::procmgr::testing::{Hook, LONG, Step, manager, manager_with, wait_state};
use crate::procmgr::{
    ProcessManagerOptions, ProcessState, ProcessUpdate, ProcmgrError, PrometheusMetrics, SyncOutcome,
};

#[tokio::test(start_paused = true)]
async fn defect_1_terminal_sync_terminates_at_once() {
    // Reference: waited for the next resync (~30 s) before terminating.
    let pm = manager();
    pm.syncer().script_sync("p", Step::ok(SyncOutcome::running()));
    pm.syncer().script_sync("p", Step::ok(SyncOutcome::terminal()));
    let _ = pm.update_process(ProcessUpdate::create("p", "c".into()));
    wait_state(&pm, "p", ProcessState::Syncing).await;
    let start = Instant::now();
    let _ = pm.update_process(ProcessUpdate::sync("p"));
    wait_state(&pm, "p", ProcessState::Finished).await;
    assert_eq!(start.elapsed(), Duration::ZERO);
}

#[tokio::test(start_paused = true)]
async fn defect_2_orphan_is_terminated_at_once() {
    // Reference: the orphan's worker was not woken until its next resync.
    let pm = manager();
    let _ = pm.update_process(ProcessUpdate::create("orphan", "c".into()));
    wait_state(&pm, "orphan", ProcessState::Syncing).await;
    let start = Instant::now();
    let known = pm.sync_known_processes(Vec::<&str>::new());
    assert_eq!(known["orphan"].state, ProcessState::Terminating);
    wait_state(&pm, "orphan", ProcessState::Finished).await;
    assert_eq!(start.elapsed(), Duration::ZERO);
    assert_eq!(pm.syncer().count(Hook::Terminating, "orphan"), 1);
}

#[tokio::test(start_paused = true)]
async fn defect_3_shutdown_runs_termination_hooks_then_reports() {
    // Reference: cancelled everything first, so no termination hook ran, and
    // reported success.
    let pm = manager();
    pm.syncer()
        .set_default_termination(Step::ok(()).after(Duration::from_millis(200)));
    for i in 0..5 {
        let _ = pm.update_process(ProcessUpdate::create(format!("p{i}"), "c".into()));
    }
    for i in 0..5 {
        wait_state(&pm, &format!("p{i}"), ProcessState::Syncing).await;
    }
    let done = pm.shutdown(Instant::now() + Duration::from_secs(5)).await;
    assert_eq!(done, Ok(()));
    for i in 0..5 {
        let id = format!("p{i}");
        let term = pm.syncer().calls_of(Hook::Terminating, &id);
        assert_eq!(term.len(), 1, "{id}: termination hook ran");
        assert!(term[0].token_live_at_start, "{id}: with a live token");
        assert_eq!(term[0].cancelled_at, None, "{id}: and was not cut short");
        assert_eq!(pm.syncer().count(Hook::Cleanup, &id), 1, "{id}: cleanup ran");
    }
}

#[tokio::test(start_paused = true)]
async fn defect_4_terminated_key_can_be_created_again() {
    // Reference: the finished entry was never purged; every later create of
    // the key timed out.
    let pm = manager();
    for round in 0..3 {
        let start = Instant::now();
        let mut rx = pm
            .update_process(ProcessUpdate::create("k", format!("r{round}")))
            .expect("create accepted");
        let synced = rx.wait_for(|s| s.state == ProcessState::Syncing).await.is_ok();
        assert!(synced, "round {round}");
        assert_eq!(start.elapsed(), Duration::ZERO, "round {round}: at once");
        let mut rx = pm.update_process(ProcessUpdate::terminate("k")).expect("known");
        assert!(rx.wait_for(|s| s.state.is_terminated()).await.is_ok());
    }
    let configs: Vec<_> = pm
        .syncer()
        .calls_of(Hook::Sync, "k")
        .into_iter()
        .map(|c| c.config)
        .collect();
    assert_eq!(configs, ["r0", "r1", "r2"]);
}

#[tokio::test(start_paused = true)]
async fn defect_5_terminate_completion_survives_a_failed_first_attempt() {
    // Reference: the completion signal was tied to the first attempt; a
    // retry that succeeded never signalled it.
    let pm = manager();
    pm.syncer()
        .script_termination("p", Step::err(ProcmgrError::hook("still busy")));
    let _ = pm.update_process(ProcessUpdate::create("p", "c".into()));
    wait_state(&pm, "p", ProcessState::Syncing).await;
    let mut rx = pm.update_process(ProcessUpdate::terminate("p")).expect("known");
    let done = tokio::time::timeout(LONG, rx.wait_for(|s| s.state.is_terminated())).await;
    assert!(matches!(done, Ok(Ok(_))));
    assert_eq!(pm.syncer().count(Hook::Terminating, "p"), 2);
}

#[tokio::test(start_paused = true)]
async fn defect_6_termination_hooks_receive_the_process_config() {
    // Reference: they got the Terminate update's (empty) config.
    let pm = manager();
    let _ = pm.update_process(ProcessUpdate::create("p", "first".into()));
    let _ = pm.update_process(ProcessUpdate::update("p", "mine".into()));
    pm.syncer().wait_calls(Hook::Sync, "p", 2).await;
    let _ = pm.update_process(ProcessUpdate::terminate("p"));
    wait_state(&pm, "p", ProcessState::Finished).await;
    assert_eq!(pm.syncer().calls_of(Hook::Terminating, "p")[0].config, "mine");
    assert_eq!(pm.syncer().calls_of(Hook::Cleanup, "p")[0].config, "mine");
}

#[tokio::test(start_paused = true)]
async fn defect_7_no_polling_floor_and_no_tick() {
    // Reference: creates polled every 50 ms; delayed retries waited for a
    // 1 s tick. Here create -> Syncing takes no time at all, and a retry
    // runs exactly when it is due.
    let pm = manager();
    pm.syncer().script_sync("p", Step::err(ProcmgrError::hook("flaky")));
    let start = Instant::now();
    let _ = pm.update_process(ProcessUpdate::create("q", "c".into()));
    wait_state(&pm, "q", ProcessState::Syncing).await;
    assert_eq!(start.elapsed(), Duration::ZERO);

    let _ = pm.update_process(ProcessUpdate::create("p", "c".into()));
    let failed = pm.wait_for("p", |s| s.error_count == 1, LONG).await;
    let due = failed.ok().and_then(|s| s.next_sync_at).expect("retry queued");
    pm.syncer().wait_calls(Hook::Sync, "p", 2).await;
    let retried = pm.syncer().calls_of(Hook::Sync, "p")[1].at;
    // The timer wheel has 1 ms resolution; a tick would be up to 1 s late.
    assert!(
        retried >= due && retried - due <= Duration::from_millis(1),
        "{:?}",
        retried - due
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn defect_7_create_reaches_syncing_well_under_fifty_ms_in_real_time() {
    let pm = manager();
    let mut took = Vec::new();
    for i in 0..21 {
        let start = std::time::Instant::now();
        let mut rx = pm
            .update_process(ProcessUpdate::create(format!("p{i}"), "c".into()))
            .expect("create");
        let synced = rx.wait_for(|s| s.state == ProcessState::Syncing).await;
        assert!(synced.is_ok());
        took.push(start.elapsed());
    }
    took.sort();
    let median = took[took.len() / 2];
    // Generous for a loaded machine; the reference could never go below 50 ms.
    assert!(median < Duration::from_millis(10), "median {median:?}");
}

#[tokio::test(start_paused = true)]
async fn defect_8_restarts_are_counted() {
    // Reference: restart_count never moved and the metric was never emitted.
    let metrics = std::sync::Arc::new(PrometheusMetrics::new("procmgr").expect("metrics"));
    let pm = manager_with(ProcessManagerOptions::default().with_metrics(metrics.clone()));
    pm.syncer().script_sync("p", Step::ok(SyncOutcome::running()));
    pm.syncer().script_sync("p", Step::ok(SyncOutcome::restarted()));
    let _ = pm.update_process(ProcessUpdate::create("p", "c".into()));
    wait_state(&pm, "p", ProcessState::Syncing).await;
    let reported = pm.report_failure("p", "worker exited with signal 9");
    assert!(reported.is_ok());
    let restarted = pm.wait_for("p", |s| s.restart_count == 1, LONG).await;
    let status = restarted.expect("restart counted");
    assert_eq!(status.error_count, 0, "the successful restart resets errors");
    let text = super::metrics::exposition(&metrics);
    assert!(
        text.contains("procmgr_process_restarts_total{process_id=\"p\"} 1"),
        "{text}"
    );
    assert_eq!(pm.health().processes["p"].restart_count, 1);
}

#[tokio::test(start_paused = true)]
async fn defect_8_grace_is_enforced_and_an_overrun_reported() {
    // Reference: the grace period was advisory; nothing stopped a process
    // that outlived it.
    let pm = manager();
    // Told at the deadline, the hook takes 2 s more to kill the thing.
    pm.syncer().script_termination(
        "p",
        Step::ok(())
            .after(Duration::from_secs(3600))
            .lingering(Duration::from_secs(2)),
    );
    let _ = pm.update_process(ProcessUpdate::create("p", "c".into()));
    wait_state(&pm, "p", ProcessState::Syncing).await;
    let start = Instant::now();
    let _ = pm.update_process(ProcessUpdate::terminate("p").with_grace_period(Duration::from_secs(1)));
    let terminated = pm.wait_for("p", |s| s.state.is_terminated(), LONG).await;
    let term = &pm.syncer().calls_of(Hook::Terminating, "p")[0];
    assert_eq!(
        term.cancelled_at,
        Some(start + Duration::from_secs(1)),
        "killed at the deadline"
    );
    let status = terminated.expect("terminated");
    assert_eq!(status.grace_overrun, Some(Duration::from_secs(2)));
    wait_state(&pm, "p", ProcessState::Finished).await;
    let status = pm.process_status("p").expect("known");
    assert_eq!(
        status.grace_overrun,
        Some(Duration::from_secs(2)),
        "kept for the report"
    );
}
