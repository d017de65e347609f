//! Many processes at once: churn and the thousand-process round trip.

use std::time::Duration;

use crate::procmgr::testing::{Hook, manager, wait_state};
use crate::procmgr::{ProcessState, ProcessUpdate};

#[tokio::test(start_paused = true)]
async fn fifty_create_terminate_cycles_all_finish() {
    let pm = manager();
    for i in 0..50 {
        let id = format!("p{i}");
        let _ = pm.update_process(ProcessUpdate::create(id.as_str(), "c".into()));
        let _ = pm.update_process(ProcessUpdate::terminate(id.as_str()));
    }
    for i in 0..50 {
        wait_state(&pm, &format!("p{i}"), ProcessState::Finished).await;
    }
    assert_eq!(pm.work_queue_len(), 0);
    assert_eq!(
        pm.syncer().calls().iter().filter(|c| c.hook == Hook::Cleanup).count(),
        50
    );
}

#[tokio::test(start_paused = true)]
async fn fifty_cycles_of_one_key_all_finish() {
    let pm = manager();
    for round in 0..50 {
        let mut rx = pm
            .update_process(ProcessUpdate::create("k", format!("r{round}")))
            .expect("create");
        assert!(rx.wait_for(|s| s.state == ProcessState::Syncing).await.is_ok());
        let mut rx = pm.update_process(ProcessUpdate::terminate("k")).expect("known");
        assert!(rx.wait_for(|s| s.state == ProcessState::Finished).await.is_ok());
    }
    assert_eq!(pm.syncer().count(Hook::Cleanup, "k"), 50);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_processes_are_created_synced_terminated_and_purged() {
    const N: usize = 1000;
    let limit = Duration::from_secs(120);
    let pm = manager();
    let tasks: Vec<_> = (0..N)
        .map(|i| {
            let pm = pm.clone();
            tokio::spawn(async move {
                let id = format!("p{i}");
                let mut rx = pm
                    .update_process(ProcessUpdate::create(id.as_str(), id.clone()))
                    .map_err(|e| e.to_string())?;
                let synced = matches!(
                    tokio::time::timeout(limit, rx.wait_for(|s| s.state == ProcessState::Syncing),).await,
                    Ok(Ok(_))
                );
                if !synced {
                    return Err(format!("{id} never synced"));
                }
                let mut rx = pm
                    .update_process(ProcessUpdate::terminate(id.as_str()))
                    .map_err(|e| e.to_string())?;
                let finished = matches!(
                    tokio::time::timeout(limit, rx.wait_for(|s| s.state == ProcessState::Finished),).await,
                    Ok(Ok(_))
                );
                if !finished {
                    return Err(format!("{id} never finished"));
                }
                Ok(())
            })
        })
        .collect();
    for t in tasks {
        assert_eq!(t.await.ok(), Some(Ok(())));
    }
    let health = pm.health();
    assert_eq!(health.total_processes, N);
    assert!(health.processes.values().all(|p| p.state == ProcessState::Finished));
    let remaining = pm.sync_known_processes(Vec::<String>::new());
    assert!(remaining.is_empty());
    assert_eq!(pm.health().total_processes, 0, "all purged");
    assert_eq!(pm.work_queue_len(), 0, "nothing left in the queue");
    let cleanups = pm.syncer().calls().iter().filter(|c| c.hook == Hook::Cleanup).count();
    assert_eq!(cleanups, N);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_shutdown_of_many_processes_finishes_them_all() {
    let pm = manager();
    for i in 0..200 {
        let _ = pm.update_process(ProcessUpdate::create(format!("p{i}"), "c".into()));
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    assert_eq!(pm.shutdown(deadline).await, Ok(()));
    for i in 0..200 {
        wait_state(&pm, &format!("p{i}"), ProcessState::Finished).await;
    }
}
