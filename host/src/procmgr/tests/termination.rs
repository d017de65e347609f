//! Terminating processes: phases, cancellation, grace, reconciliation,
//! re-creation, forgetting and shutdown.

use std::time::Duration;

use tokio::time::Instant;

use crate::procmgr::testing::{Event, Hook, LONG, Step, manager, recorded_manager, wait_state};
use crate::procmgr::{ProcessManagerOptions, ProcessState, ProcessUpdate, ProcmgrError, SyncOutcome};

const HOUR: Duration = Duration::from_secs(3600);

#[tokio::test(start_paused = true)]
async fn terminate_runs_termination_and_cleanup_hooks() {
    let pm = manager();
    let _ = pm.update_process(ProcessUpdate::create("p", "c".into()));
    wait_state(&pm, "p", ProcessState::Syncing).await;
    let rx = pm
        .update_process(ProcessUpdate::terminate("p").with_grace_period(Duration::from_secs(5)))
        .expect("known");
    assert!(rx.state() >= ProcessState::Terminating, "Terminating before returning");
    wait_state(&pm, "p", ProcessState::Finished).await;
    let term = pm.syncer().calls_of(Hook::Terminating, "p");
    assert_eq!(term.len(), 1);
    assert_eq!(term[0].grace, Some(Duration::from_secs(5)));
    assert_eq!(pm.syncer().count(Hook::Cleanup, "p"), 1);
    assert!(pm.is_process_terminated("p") && pm.is_process_finished("p"));
    assert_eq!(pm.work_queue_len(), 0, "no resync left for a finished process");
}

#[tokio::test(start_paused = true)]
async fn termination_goes_through_every_phase_in_order() {
    let (pm, recorder) = recorded_manager(ProcessManagerOptions::default());
    let _ = pm.update_process(ProcessUpdate::create("p", "c".into()));
    wait_state(&pm, "p", ProcessState::Syncing).await;
    let _ = pm.update_process(ProcessUpdate::terminate("p"));
    wait_state(&pm, "p", ProcessState::Finished).await;
    let transitions: Vec<_> = recorder
        .events()
        .into_iter()
        .filter_map(|e| match e {
            Event::Transition(_, from, to) => Some((from, to)),
            _ => None,
        })
        .collect();
    let order = ProcessState::ALL;
    let expected: Vec<_> = order.windows(2).map(|w| (w[0], w[1])).collect();
    assert_eq!(transitions, expected);
}

#[tokio::test(start_paused = true)]
async fn terminate_cancels_an_in_flight_sync() {
    let pm = manager();
    pm.syncer()
        .script_sync("p", Step::ok(SyncOutcome::running()).after(HOUR));
    let _ = pm.update_process(ProcessUpdate::create("p", "c".into()));
    pm.syncer().wait_calls(Hook::Sync, "p", 1).await;
    let start = Instant::now();
    let _ = pm.update_process(ProcessUpdate::terminate("p"));
    wait_state(&pm, "p", ProcessState::Finished).await;
    let sync = &pm.syncer().calls_of(Hook::Sync, "p")[0];
    assert_eq!(
        sync.cancelled_at,
        Some(start),
        "the sync saw its token cancelled at once"
    );
    assert_eq!(start.elapsed(), Duration::ZERO);
    assert_eq!(pm.process_status("p").map(|s| s.error_count), Some(0));
}

#[tokio::test(start_paused = true)]
async fn terminal_sync_terminates_the_process() {
    let pm = manager();
    pm.syncer().script_sync("p", Step::ok(SyncOutcome::terminal()));
    let _ = pm.update_process(ProcessUpdate::create("p", "c".into()));
    wait_state(&pm, "p", ProcessState::Finished).await;
    assert_eq!(pm.syncer().count(Hook::Terminating, "p"), 1);
    assert_eq!(pm.syncer().count(Hook::Cleanup, "p"), 1);
}

#[tokio::test(start_paused = true)]
async fn shorter_grace_reaches_a_running_termination() {
    let pm = manager();
    pm.syncer().script_termination("p", Step::ok(()).after(HOUR));
    let _ = pm.update_process(ProcessUpdate::create("p", "c".into()));
    wait_state(&pm, "p", ProcessState::Syncing).await;
    let start = Instant::now();
    let grace = |s| ProcessUpdate::terminate("p").with_grace_period(Duration::from_secs(s));
    let _ = pm.update_process(grace(30));
    pm.syncer().wait_calls(Hook::Terminating, "p", 1).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let _ = pm.update_process(grace(60)); // longer: ignored
    tokio::time::sleep(Duration::from_secs(1)).await;
    let _ = pm.update_process(grace(5)); // shorter: moves the deadline
    wait_state(&pm, "p", ProcessState::Terminated).await;
    let term = &pm.syncer().calls_of(Hook::Terminating, "p")[0];
    assert_eq!(term.grace, Some(Duration::from_secs(30)));
    assert_eq!(term.cancelled_at, Some(start + Duration::from_secs(5)));
}

#[tokio::test(start_paused = true)]
async fn grace_period_never_increases() {
    let pm = manager();
    pm.syncer().script_termination("p", Step::ok(()).after(HOUR));
    let _ = pm.update_process(ProcessUpdate::create("p", "c".into()));
    wait_state(&pm, "p", ProcessState::Syncing).await;
    let start = Instant::now();
    let _ = pm.update_process(ProcessUpdate::terminate("p").with_grace_period(Duration::from_secs(2)));
    let _ = pm.update_process(ProcessUpdate::terminate("p").with_grace_period(Duration::from_secs(60)));
    let _ = pm.update_process(ProcessUpdate::terminate("p"));
    wait_state(&pm, "p", ProcessState::Terminated).await;
    let term = &pm.syncer().calls_of(Hook::Terminating, "p")[0];
    assert_eq!(term.grace, Some(Duration::from_secs(2)));
    assert_eq!(term.cancelled_at, Some(start + Duration::from_secs(2)));
}

#[tokio::test(start_paused = true)]
async fn unset_grace_defaults_to_ten_seconds() {
    let pm = manager();
    let _ = pm.update_process(ProcessUpdate::create("p", "c".into()));
    let _ = pm.update_process(ProcessUpdate::terminate("p"));
    wait_state(&pm, "p", ProcessState::Finished).await;
    let term = &pm.syncer().calls_of(Hook::Terminating, "p")[0];
    assert_eq!(term.grace, Some(Duration::from_secs(10)));
}

#[tokio::test(start_paused = true)]
async fn terminated_phase_follows_termination_at_once() {
    let pm = manager();
    pm.syncer()
        .script_termination("p", Step::ok(()).after(Duration::from_secs(2)));
    let _ = pm.update_process(ProcessUpdate::create("p", "c".into()));
    wait_state(&pm, "p", ProcessState::Syncing).await;
    let _ = pm.update_process(ProcessUpdate::terminate("p"));
    wait_state(&pm, "p", ProcessState::Finished).await;
    let term = &pm.syncer().calls_of(Hook::Terminating, "p")[0];
    let cleanup = &pm.syncer().calls_of(Hook::Cleanup, "p")[0];
    assert_eq!(
        cleanup.at - term.at,
        Duration::from_secs(2),
        "cleanup right after termination"
    );
}

#[tokio::test(start_paused = true)]
async fn sync_known_processes_purges_finished_and_terminates_orphans() {
    let pm = manager();
    for id in ["a", "b", "c"] {
        let _ = pm.update_process(ProcessUpdate::create(id, "c".into()));
        wait_state(&pm, id, ProcessState::Syncing).await;
    }
    let _ = pm.update_process(ProcessUpdate::terminate("c"));
    wait_state(&pm, "c", ProcessState::Finished).await;
    let known = pm.sync_known_processes(["a"]);
    assert!(pm.process_status("c").is_none(), "finished orphan purged");
    assert!(known.contains_key("a") && known.contains_key("b") && !known.contains_key("c"));
    assert_eq!(known["b"].state, ProcessState::Terminating, "orphan terminated now");
    assert_eq!(known["a"].state, ProcessState::Syncing);
    wait_state(&pm, "b", ProcessState::Finished).await;
    let _ = pm.update_process(ProcessUpdate::create("c", "again".into()));
    wait_state(&pm, "c", ProcessState::Syncing).await;
}

#[tokio::test(start_paused = true)]
async fn create_during_termination_starts_a_new_process_after_finish() {
    let pm = manager();
    pm.syncer()
        .script_termination("p", Step::ok(()).after(Duration::from_secs(3)));
    let _ = pm.update_process(ProcessUpdate::create("p", "old".into()));
    wait_state(&pm, "p", ProcessState::Syncing).await;
    let _ = pm.update_process(ProcessUpdate::terminate("p"));
    let mut next = pm
        .update_process(ProcessUpdate::create("p", "new".into()))
        .expect("deferred create");
    assert_eq!(next.state(), ProcessState::Starting);
    let synced = next.wait_for(|s| s.state == ProcessState::Syncing).await;
    assert!(synced.is_ok());
    let syncs = pm.syncer().calls_of(Hook::Sync, "p");
    assert_eq!(syncs.last().map(|c| c.config.as_str()), Some("new"));
    assert_eq!(pm.syncer().count(Hook::Cleanup, "p"), 1, "old process cleaned up first");
}

#[tokio::test(start_paused = true)]
async fn terminate_after_a_deferred_create_cancels_it() {
    let pm = manager();
    pm.syncer()
        .script_termination("p", Step::ok(()).after(Duration::from_secs(3)));
    let _ = pm.update_process(ProcessUpdate::create("p", "old".into()));
    let _ = pm.update_process(ProcessUpdate::terminate("p"));
    let mut next = pm
        .update_process(ProcessUpdate::create("p", "new".into()))
        .expect("deferred create");
    let _ = pm.update_process(ProcessUpdate::terminate("p"));
    assert!(next.wait_for(|_| false).await.is_err(), "the new generation is dropped");
    wait_state(&pm, "p", ProcessState::Finished).await;
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert!(pm.is_process_finished("p"), "and never starts");
    assert_eq!(
        pm.syncer().count(Hook::Sync, "p"),
        0,
        "terminated before its first sync"
    );
}

#[tokio::test(start_paused = true)]
async fn forgotten_process_is_purged_when_it_finishes() {
    let pm = manager();
    let mut rx = pm
        .update_process(ProcessUpdate::create("p", "c".into()))
        .expect("created");
    let _ = pm.update_process(ProcessUpdate::terminate("p"));
    assert!(pm.forget("p"));
    let last = rx
        .wait_for(|s| s.state == ProcessState::Finished)
        .await
        .map(|s| s.state);
    assert_eq!(last.ok(), Some(ProcessState::Finished), "waiters still see Finished");
    let gone = pm.wait_for("p", |_| true, LONG).await;
    assert!(matches!(gone, Err(ProcmgrError::UnknownProcess { .. })), "{gone:?}");
    assert!(!pm.forget("p"));
}

#[tokio::test(start_paused = true)]
async fn shutdown_terminates_every_process() {
    let pm = manager();
    for id in ["a", "b", "c"] {
        let _ = pm.update_process(ProcessUpdate::create(id, id.into()));
        wait_state(&pm, id, ProcessState::Syncing).await;
    }
    let done = pm.shutdown(Instant::now() + Duration::from_secs(10)).await;
    assert_eq!(done, Ok(()));
    for id in ["a", "b", "c"] {
        assert!(pm.is_process_finished(id));
        let term = pm.syncer().calls_of(Hook::Terminating, id);
        assert_eq!(term.len(), 1);
        assert!(term[0].token_live_at_start && term[0].config == id);
        let cleanup = pm.syncer().calls_of(Hook::Cleanup, id);
        assert!(cleanup.len() == 1 && cleanup[0].token_live_at_start);
    }
    let refused = pm.update_process(ProcessUpdate::create("d", "d".into()));
    assert!(matches!(refused, Err(ProcmgrError::ShuttingDown)));
}

#[tokio::test(start_paused = true)]
async fn shutdown_reports_a_deadline_overrun() {
    let pm = manager();
    pm.syncer()
        .script_termination("slow", Step::ok(()).after(HOUR).ignoring_token());
    let _ = pm.update_process(ProcessUpdate::create("slow", "c".into()));
    let _ = pm.update_process(ProcessUpdate::create("fast", "c".into()));
    wait_state(&pm, "slow", ProcessState::Syncing).await;
    wait_state(&pm, "fast", ProcessState::Syncing).await;
    let start = Instant::now();
    let done = pm.shutdown(start + Duration::from_secs(1)).await;
    assert_eq!(start.elapsed(), Duration::from_secs(1));
    match done {
        Err(ProcmgrError::ShutdownDeadlineExceeded { unfinished }) => {
            assert_eq!(unfinished, vec![crate::procmgr::ProcessId::from("slow")]);
        }
        other => panic!("expected a deadline error, got {other:?}"),
    }
    assert!(pm.is_process_finished("fast"));
}
