//! The dispatcher task: takes ids off the work queue as they fall due and
//! wakes their tasks with a Sync (unless a newer update is pending).

use std::sync::Arc;

use super::manager::Shared;
use super::syncer::ProcessSyncer;
use super::types::{ProcessState, UpdateType};

pub(crate) async fn run<S: ProcessSyncer>(shared: Arc<Shared<S>>) {
    loop {
        let id = tokio::select! {
            biased;
            () = shared.root.cancelled() => return,
            id = shared.queue.next_due() => id,
        };
        let m = &*shared.opts.metrics;
        m.work_queue_retry(&id);
        m.work_queue_depth(shared.queue.len());
        let mut table = shared.lock();
        let Some(e) = table.entries.get_mut(&id) else {
            continue;
        };
        if e.state == ProcessState::Finished {
            continue;
        }
        e.next_sync_at = shared.queue.ready_at(id.as_str());
        if e.pending.is_none() {
            e.pending = Some(UpdateType::Sync);
        }
        e.wake.notify_one();
        e.publish();
    }
}
