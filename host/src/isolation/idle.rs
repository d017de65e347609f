//! The idle reaper: terminates processes that had nothing running or queued
//! for `idle_timeout`. It sleeps until the earliest one is due, or until
//! activity changes the picture; it never polls.

use std::sync::Weak;
use std::time::Duration;

use tokio::time::Instant;

use super::IsolationManager;
use crate::ipc::Assignment;
use crate::procmgr::ProcessSyncer;

/// Runs until the manager is dropped.
pub(super) async fn reap<S: ProcessSyncer<Config = Assignment>>(manager: Weak<IsolationManager<S>>, idle: Duration) {
    loop {
        let Some(strong) = manager.upgrade() else { return };
        let now = Instant::now();
        let mut next: Option<Instant> = None;
        for (id, used) in strong.idle_compartments() {
            let due = used + idle;
            if due <= now {
                if strong.terminate_if_idle(&id, used) {
                    tracing::info!(process_id = %id, "terminating a process idle for {idle:?}");
                }
            } else {
                next = Some(next.map_or(due, |n| n.min(due)));
            }
        }
        let activity = std::sync::Arc::clone(&strong.activity);
        drop(strong);
        let woken = activity.notified();
        match next {
            Some(at) => {
                tokio::select! {
                    () = tokio::time::sleep_until(at) => {}
                    () = woken => {}
                }
            }
            None => woken.await,
        }
    }
}
