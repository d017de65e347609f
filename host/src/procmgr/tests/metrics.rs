//! Metrics callbacks made by the manager, and the Prometheus exposition.

use std::sync::Arc;
use std::time::Duration;

use prometheus::{Encoder, TextEncoder};

use crate::procmgr::testing::{Event, Hook, Step, manager_with, recorded_manager, wait_state};
use crate::procmgr::{
    FailurePhase, MAX_RETAINED, MetricsCollector, ProcessId, ProcessManagerOptions, ProcessState, ProcessUpdate,
    ProcmgrError, PrometheusMetrics, UpdateType,
};

/// The text exposition of `metrics`.
pub(super) fn exposition(metrics: &PrometheusMetrics) -> String {
    let mut out = Vec::new();
    let encoded = TextEncoder::new().encode(&metrics.gather(), &mut out);
    assert!(encoded.is_ok());
    String::from_utf8(out).unwrap_or_default()
}

/// The lines of `text` that belong to metric `name` (HELP, TYPE, samples).
fn family(text: &str, name: &str) -> Vec<String> {
    text.lines()
        .filter(|l| {
            l.strip_prefix("# HELP ")
                .or_else(|| l.strip_prefix("# TYPE "))
                .unwrap_or(l)
                .split([' ', '{'])
                .next()
                .is_some_and(|n| n == name || n.strip_prefix(name).is_some_and(|s| s.starts_with('_')))
        })
        .map(str::to_owned)
        .collect()
}

#[tokio::test(start_paused = true)]
async fn manager_reports_transitions_sync_durations_and_errors() {
    let (pm, rec) = recorded_manager(ProcessManagerOptions::default());
    pm.syncer().script_sync("p", Step::err(ProcmgrError::hook("x")));
    let _ = pm.update_process(ProcessUpdate::create("p", "c".into()));
    wait_state(&pm, "p", ProcessState::Syncing).await;
    let events = rec.events();
    let p = || "p".to_string();
    assert!(events.contains(&Event::SyncDuration(p(), UpdateType::Create, false)));
    assert!(events.contains(&Event::SyncDuration(p(), UpdateType::Sync, true)));
    assert!(events.contains(&Event::Error(p(), FailurePhase::Sync)));
    assert!(events.contains(&Event::Transition(p(), ProcessState::Starting, ProcessState::Syncing)));
    assert!(
        events
            .iter()
            .any(|e| matches!(e, Event::Backoff(id, d) if id == "p" && *d > Duration::ZERO))
    );
    assert!(
        events.contains(&Event::QueueRetry(p())),
        "the retry came from the queue"
    );
    assert!(events.contains(&Event::QueueAdd(p())));
}

#[tokio::test(start_paused = true)]
async fn manager_reports_termination_durations_and_error_kinds() {
    let (pm, rec) = recorded_manager(ProcessManagerOptions::default());
    pm.syncer().script_termination("p", Step::err(ProcmgrError::hook("t")));
    pm.syncer().script_cleanup("p", Step::err(ProcmgrError::hook("c")));
    let _ = pm.update_process(ProcessUpdate::create("p", "c".into()));
    let _ = pm.update_process(ProcessUpdate::terminate("p"));
    wait_state(&pm, "p", ProcessState::Finished).await;
    let events = rec.events();
    let p = || "p".to_string();
    let terminations = events.iter().filter(|e| **e == Event::TerminationDuration(p())).count();
    assert_eq!(terminations, 2, "one per attempt");
    assert!(events.contains(&Event::Error(p(), FailurePhase::Termination)));
    assert!(events.contains(&Event::Error(p(), FailurePhase::Cleanup)));
    assert_eq!(pm.syncer().count(Hook::Cleanup, "p"), 2);
}

#[test]
fn prometheus_exposition_has_the_exact_names_help_texts_and_values() {
    let m = PrometheusMetrics::new("test").expect("valid namespace");
    let id = |s: &str| ProcessId::from(s);
    m.process_state_transition(&id("proc-1"), ProcessState::Starting, ProcessState::Syncing);
    m.process_state_transition(&id("proc-1"), ProcessState::Syncing, ProcessState::Terminating);
    m.process_state_transition(&id("proc-2"), ProcessState::Starting, ProcessState::Syncing);
    m.process_error(&id("proc-1"), FailurePhase::Sync);
    m.process_error(&id("proc-1"), FailurePhase::Sync);
    m.process_error(&id("proc-1"), FailurePhase::Termination);
    m.process_error(&id("proc-2"), FailurePhase::Cleanup);
    m.process_restart(&id("proc-1"));
    m.work_queue_depth(5);
    m.work_queue_add(&id("proc-1"), Duration::from_secs(1));
    m.work_queue_add(&id("proc-2"), Duration::from_secs(2));
    m.work_queue_retry(&id("proc-1"));
    m.work_queue_backoff_duration(&id("proc-1"), Duration::from_secs(2));
    m.process_sync_duration(&id("proc-1"), UpdateType::Create, Duration::from_millis(100), true);
    m.process_sync_duration(&id("proc-2"), UpdateType::Sync, Duration::from_millis(200), false);
    m.process_termination_duration(&id("proc-1"), Duration::from_millis(30));
    let text = exposition(&m);

    let expect = |name: &str, lines: &[&str]| {
        assert_eq!(family(&text, name), lines, "family {name}");
    };
    expect(
        "test_process_state_transitions_total",
        &[
            "# HELP test_process_state_transitions_total Total number of process state transitions",
            "# TYPE test_process_state_transitions_total counter",
            r#"test_process_state_transitions_total{from_state="Starting",process_id="proc-1",to_state="Syncing"} 1"#,
            r#"test_process_state_transitions_total{from_state="Starting",process_id="proc-2",to_state="Syncing"} 1"#,
            r#"test_process_state_transitions_total{from_state="Syncing",process_id="proc-1",to_state="Terminating"} 1"#,
        ],
    );
    expect(
        "test_process_errors_total",
        &[
            "# HELP test_process_errors_total Total number of process errors",
            "# TYPE test_process_errors_total counter",
            r#"test_process_errors_total{error_type="cleanup_error",process_id="proc-2"} 1"#,
            r#"test_process_errors_total{error_type="sync_error",process_id="proc-1"} 2"#,
            r#"test_process_errors_total{error_type="termination_error",process_id="proc-1"} 1"#,
        ],
    );
    expect(
        "test_process_restarts_total",
        &[
            "# HELP test_process_restarts_total Total number of process restarts",
            "# TYPE test_process_restarts_total counter",
            r#"test_process_restarts_total{process_id="proc-1"} 1"#,
        ],
    );
    expect(
        "test_work_queue_depth",
        &[
            "# HELP test_work_queue_depth Current depth of the work queue",
            "# TYPE test_work_queue_depth gauge",
            "test_work_queue_depth 5",
        ],
    );
    expect(
        "test_work_queue_adds_total",
        &[
            "# HELP test_work_queue_adds_total Total number of items added to work queue",
            "# TYPE test_work_queue_adds_total counter",
            r#"test_work_queue_adds_total{process_id="proc-1"} 1"#,
            r#"test_work_queue_adds_total{process_id="proc-2"} 1"#,
        ],
    );
    expect(
        "test_work_queue_retries_total",
        &[
            "# HELP test_work_queue_retries_total Total number of work queue retry operations",
            "# TYPE test_work_queue_retries_total counter",
            r#"test_work_queue_retries_total{process_id="proc-1"} 1"#,
        ],
    );
    let backoff = family(&text, "test_work_queue_backoff_duration_seconds");
    assert_eq!(
        backoff[..2],
        [
            "# HELP test_work_queue_backoff_duration_seconds Duration of backoff delays for failed processes",
            "# TYPE test_work_queue_backoff_duration_seconds histogram",
        ]
    );
    let les: Vec<_> = backoff
        .iter()
        .filter_map(|l| l.split("le=\"").nth(1)?.split('"').next())
        .collect();
    assert_eq!(les, ["0.1", "0.5", "1", "2", "5", "10", "30", "60", "+Inf"]);
    assert!(
        backoff
            .contains(&r#"test_work_queue_backoff_duration_seconds_bucket{process_id="proc-1",le="1"} 0"#.to_owned())
    );
    assert!(
        backoff
            .contains(&r#"test_work_queue_backoff_duration_seconds_bucket{process_id="proc-1",le="2"} 1"#.to_owned())
    );
    assert!(backoff.contains(&r#"test_work_queue_backoff_duration_seconds_sum{process_id="proc-1"} 2"#.to_owned()));

    let sync = family(&text, "test_process_sync_duration_seconds");
    assert_eq!(
        sync[..2],
        [
            "# HELP test_process_sync_duration_seconds Duration of process sync operations",
            "# TYPE test_process_sync_duration_seconds histogram",
        ]
    );
    assert!(sync.contains(&r#"test_process_sync_duration_seconds_bucket{process_id="proc-1",status="success",update_type="Create",le="0.1"} 1"#.to_owned()), "{sync:#?}");
    assert!(
        sync.contains(
            &r#"test_process_sync_duration_seconds_count{process_id="proc-2",status="error",update_type="Sync"} 1"#
                .to_owned()
        )
    );
    let duration_les: Vec<_> = sync
        .iter()
        .filter(|l| l.contains("proc-1"))
        .filter_map(|l| l.split("le=\"").nth(1)?.split('"').next())
        .collect();
    assert_eq!(
        duration_les,
        [
            "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10", "+Inf"
        ]
    );
    let term = family(&text, "test_process_termination_duration_seconds");
    assert_eq!(
        term[..2],
        [
            "# HELP test_process_termination_duration_seconds Duration of process termination operations",
            "# TYPE test_process_termination_duration_seconds histogram",
        ]
    );
    assert!(
        term.contains(
            &r#"test_process_termination_duration_seconds_bucket{process_id="proc-1",le="0.05"} 1"#.to_owned()
        )
    );
}

#[test]
fn empty_namespace_means_procmgr_and_a_bad_one_is_an_error() {
    let m = PrometheusMetrics::new("").expect("default namespace");
    m.work_queue_depth(1);
    assert!(exposition(&m).contains("procmgr_work_queue_depth 1"));
    assert!(matches!(
        PrometheusMetrics::new("bad name"),
        Err(ProcmgrError::Metrics { .. })
    ));
}

#[tokio::test(start_paused = true)]
async fn purged_process_loses_its_series() {
    let metrics = Arc::new(PrometheusMetrics::new("procmgr").expect("metrics"));
    let pm = manager_with(ProcessManagerOptions::default().with_metrics(metrics.clone()));
    pm.syncer().script_sync("gone", Step::err(ProcmgrError::hook("x")));
    for id in ["gone", "kept"] {
        let _ = pm.update_process(ProcessUpdate::create(id, "c".into()));
        wait_state(&pm, id, ProcessState::Syncing).await;
    }
    let _ = pm.update_process(ProcessUpdate::terminate("gone"));
    wait_state(&pm, "gone", ProcessState::Finished).await;
    let before = exposition(&metrics);
    assert!(before.contains(r#"process_id="gone""#));
    let _ = pm.sync_known_processes(["kept"]);
    let after = exposition(&metrics);
    assert!(!after.contains(r#"process_id="gone""#), "{after}");
    assert!(after.contains(
        r#"procmgr_process_state_transitions_total{from_state="Starting",process_id="kept",to_state="Syncing"} 1"#
    ));
}

/// Creates `id`, waits until it syncs, terminates it and waits until it is
/// Finished.
async fn run_and_finish(pm: &crate::procmgr::testing::Manager, id: &str) {
    let _ = pm.update_process(ProcessUpdate::create(id, "c".into()));
    wait_state(pm, id, ProcessState::Syncing).await;
    let _ = pm.update_process(ProcessUpdate::terminate(id));
    wait_state(pm, id, ProcessState::Finished).await;
}

/// A manager whose Prometheus collector keeps purged series for `retention`.
fn retaining(retention: Duration) -> (Arc<PrometheusMetrics>, crate::procmgr::testing::Manager) {
    let metrics = Arc::new(
        PrometheusMetrics::new("procmgr")
            .expect("metrics")
            .with_retention(retention),
    );
    let pm = manager_with(ProcessManagerOptions::default().with_metrics(metrics.clone()));
    (metrics, pm)
}

#[tokio::test(start_paused = true)]
async fn a_purged_process_keeps_its_series_for_the_retention_then_loses_them() {
    let retention = Duration::from_secs(60);
    let (metrics, pm) = retaining(retention);
    run_and_finish(&pm, "gone").await;
    let _ = pm.sync_known_processes(Vec::<&str>::new());
    assert!(pm.process_status("gone").is_none(), "purged");
    let kept = exposition(&metrics);
    for line in [
        r#"procmgr_process_termination_duration_seconds_count{process_id="gone"} 1"#,
        r#"procmgr_process_state_transitions_total{from_state="Terminating",process_id="gone",to_state="Terminated"} 1"#,
        r#"procmgr_process_state_transitions_total{from_state="Terminated",process_id="gone",to_state="Finished"} 1"#,
    ] {
        assert!(kept.contains(line), "{line} missing:\n{kept}");
    }
    tokio::time::advance(retention - Duration::from_secs(1)).await;
    metrics.expire();
    assert!(
        exposition(&metrics).contains(r#"process_id="gone""#),
        "still within the retention"
    );
    tokio::time::advance(Duration::from_secs(2)).await;
    metrics.expire();
    assert!(!exposition(&metrics).contains(r#"process_id="gone""#));
}

#[tokio::test(start_paused = true)]
async fn an_id_created_again_within_the_retention_keeps_its_series() {
    let retention = Duration::from_secs(60);
    let (metrics, pm) = retaining(retention);
    run_and_finish(&pm, "again").await;
    let _ = pm.sync_known_processes(Vec::<&str>::new());
    let _ = pm.update_process(ProcessUpdate::create("again", "c".into()));
    wait_state(&pm, "again", ProcessState::Syncing).await;
    tokio::time::advance(retention * 2).await;
    metrics.expire();
    let text = exposition(&metrics);
    assert!(
        text.contains(
            r#"procmgr_process_state_transitions_total{from_state="Starting",process_id="again",to_state="Syncing"} 2"#
        ),
        "{text}"
    );
}

#[tokio::test(start_paused = true)]
async fn churn_cannot_grow_the_retained_series_past_the_bound() {
    let (metrics, pm) = retaining(Duration::from_secs(3600));
    let churned = 5000;
    let mut largest = 0;
    for batch in 0..churned / 100 {
        let ids: Vec<String> = (0..100).map(|i| format!("session:s{batch}-{i}")).collect();
        for id in &ids {
            let _ = pm.update_process(ProcessUpdate::create(id.as_str(), "c".into()));
        }
        for id in &ids {
            wait_state(&pm, id, ProcessState::Syncing).await;
            let _ = pm.update_process(ProcessUpdate::terminate(id.as_str()));
        }
        for id in &ids {
            wait_state(&pm, id, ProcessState::Finished).await;
        }
        let _ = pm.sync_known_processes(Vec::<&str>::new());
        largest = largest.max(exposition(&metrics).len());
    }
    let text = exposition(&metrics);
    let ids: std::collections::BTreeSet<&str> = text
        .lines()
        .filter_map(|l| l.split("process_id=\"").nth(1)?.split('"').next())
        .collect();
    assert_eq!(
        ids.len(),
        MAX_RETAINED,
        "the newest {MAX_RETAINED} of {churned} are retained"
    );
    assert!(ids.contains(format!("session:s{}-99", churned / 100 - 1).as_str()));
    assert!(!ids.contains("session:s0-0"), "the oldest went first");
    // What one retained process costs on /metrics, times the bound.
    let per_process = largest / MAX_RETAINED + 1;
    eprintln!("{churned} churned: at most {largest} bytes of procmgr series ({per_process} per retained process)");
    assert!(largest <= MAX_RETAINED * 4096, "{largest}");
}
