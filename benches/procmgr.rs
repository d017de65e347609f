//! procmgr benches: create -> Syncing latency, a create+terminate cycle,
//! work-queue enqueue and dequeue, and `exponential_backoff`.
//!
//! Run: `cargo bench -j1 --bench procmgr`. The syncer answers every hook at
//! once, so the figures are the manager's own overhead.

use std::hint::black_box;
use std::time::{Duration, Instant};

use bulkhead::procmgr::{
    ProcessManager, ProcessManagerOptions, ProcessState, ProcessSyncer, ProcessUpdate, ProcmgrError, SyncContext,
    SyncOutcome, TerminatingContext, UpdateType, WorkQueue, exponential_backoff,
};
use criterion::{Criterion, criterion_group, criterion_main};
use tokio::runtime::Runtime;

/// A syncer whose hooks succeed immediately.
#[derive(Debug)]
struct InstantSyncer;

impl ProcessSyncer for InstantSyncer {
    type Config = ();
    type Handle = ();

    async fn sync_process(&self, _: SyncContext, _: UpdateType, _: &()) -> Result<SyncOutcome, ProcmgrError> {
        Ok(SyncOutcome::running())
    }

    async fn sync_terminating_process(&self, _: TerminatingContext, _: &()) -> Result<(), ProcmgrError> {
        Ok(())
    }

    async fn sync_terminated_process(&self, _: SyncContext, _: &()) -> Result<(), ProcmgrError> {
        Ok(())
    }
}

fn multi_thread() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

fn current_thread() -> Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// Time from `update_process(Create)` until the status watch shows Syncing.
/// Measured by a task on the runtime (where the host's callers run), or with
/// `external` by a thread outside it (`block_on`), which adds two
/// cross-thread wake-ups. Each process is terminated and purged afterwards,
/// outside the timing.
fn create_to_syncing(c: &mut Criterion, name: &str, rt: &Runtime, external: bool) {
    let pm = rt.block_on(async { ProcessManager::new(InstantSyncer, ProcessManagerOptions::default()) });
    let mut next = 0u64;
    c.bench_function(name, |b| {
        b.iter_custom(|iters| {
            let pm = pm.clone();
            let first = next;
            next += iters;
            let work = async move {
                let mut total = Duration::ZERO;
                for n in first..first + iters {
                    let id = format!("p{n}");
                    let start = Instant::now();
                    let mut watch = pm
                        .update_process(ProcessUpdate::create(id.as_str(), ()))
                        .expect("create");
                    let synced = watch.wait_for(|s| s.state == ProcessState::Syncing).await;
                    total += start.elapsed();
                    assert!(synced.is_ok());
                    let mut watch = pm
                        .update_process(ProcessUpdate::terminate(id.as_str()))
                        .expect("terminate");
                    let finished = watch.wait_for(|s| s.state == ProcessState::Finished).await;
                    assert!(finished.is_ok());
                    pm.forget(&id);
                }
                total
            };
            if external {
                rt.block_on(work)
            } else {
                rt.block_on(rt.spawn(work)).expect("bench task")
            }
        });
    });
}

/// Create, wait Syncing, terminate, wait Finished, on one key (the next
/// create purges the finished entry), by a task on the runtime.
fn create_terminate_cycle(c: &mut Criterion) {
    let rt = multi_thread();
    let pm = rt.block_on(async { ProcessManager::new(InstantSyncer, ProcessManagerOptions::default()) });
    c.bench_function("create_terminate_cycle", |b| {
        b.iter_custom(|iters| {
            let pm = pm.clone();
            let task = rt.spawn(async move {
                let start = Instant::now();
                for _ in 0..iters {
                    let mut watch = pm.update_process(ProcessUpdate::create("k", ())).expect("create");
                    let synced = watch.wait_for(|s| s.state == ProcessState::Syncing).await;
                    assert!(synced.is_ok());
                    let mut watch = pm.update_process(ProcessUpdate::terminate("k")).expect("terminate");
                    let finished = watch.wait_for(|s| s.state == ProcessState::Finished).await;
                    assert!(finished.is_ok());
                }
                start.elapsed()
            });
            rt.block_on(task).expect("bench task")
        });
    });
}

const CHUNK: usize = 10_000;

fn ids() -> Vec<bulkhead::procmgr::ProcessId> {
    (0..CHUNK).map(|i| format!("ns:tenant-{i}").into()).collect()
}

/// Runs `iters` queue operations in chunks of at most [`CHUNK`], each on a
/// fresh queue: `setup` fills it for a chunk of `n`, untimed, and `timed`
/// does the `n` operations; returns the time of the timed parts.
fn in_chunks<S>(
    iters: u64,
    mut setup: impl FnMut(&WorkQueue, usize) -> S,
    mut timed: impl FnMut(&WorkQueue, usize, S),
) -> Duration {
    let mut total = Duration::ZERO;
    let mut left = iters as usize;
    while left > 0 {
        let n = left.min(CHUNK);
        let queue = WorkQueue::new();
        let prepared = setup(&queue, n);
        let start = Instant::now();
        timed(&queue, n, prepared);
        total += start.elapsed();
        left -= n;
    }
    total
}

/// Enqueue of distinct ids into a queue growing to 10,000 items.
fn queue_enqueue(c: &mut Criterion) {
    let ids = ids();
    c.bench_function("work_queue_enqueue", |b| {
        b.iter_custom(|iters| {
            in_chunks(
                iters,
                |_, n| ids[..n].to_vec(),
                |queue, _, batch| {
                    for id in batch {
                        black_box(queue.enqueue(id, Duration::ZERO));
                    }
                },
            )
        });
    });
}

/// Dequeue of ready items from a queue holding up to 10,000.
fn queue_dequeue(c: &mut Criterion) {
    let ids = ids();
    c.bench_function("work_queue_dequeue", |b| {
        b.iter_custom(|iters| {
            in_chunks(
                iters,
                |queue, n| {
                    for id in &ids[..n] {
                        queue.enqueue(id.clone(), Duration::ZERO);
                    }
                },
                |queue, n, ()| {
                    for _ in 0..n {
                        black_box(queue.dequeue());
                    }
                },
            )
        });
    });
}

/// The reference's enqueue workload: one id, re-enqueued with a 1 s delay
/// (every call after the first is a dedup against the queued time).
fn queue_enqueue_reference_workload(c: &mut Criterion) {
    let queue = WorkQueue::new();
    let id = bulkhead::procmgr::ProcessId::from("test");
    c.bench_function("work_queue_enqueue_same_id", |b| {
        b.iter(|| queue.enqueue(black_box(id.clone()), Duration::from_secs(1)));
    });
}

/// The reference's dequeue workload: the queue is filled with one id, so
/// the first dequeue returns it and the rest find the queue empty.
fn queue_dequeue_reference_workload(c: &mut Criterion) {
    let queue = WorkQueue::new();
    queue.enqueue("test".into(), Duration::ZERO);
    c.bench_function("work_queue_dequeue_mostly_empty", |b| {
        b.iter(|| black_box(queue.dequeue()));
    });
}

fn backoff(c: &mut Criterion) {
    let base = Duration::from_secs(1);
    let max = Duration::from_secs(60);
    c.bench_function("exponential_backoff", |b| {
        b.iter(|| exponential_backoff(black_box(3), black_box(base), black_box(max)));
    });
}

fn manager_benches(c: &mut Criterion) {
    let mt = multi_thread();
    create_to_syncing(c, "create_to_syncing_multi_thread", &mt, false);
    create_to_syncing(c, "create_to_syncing_current_thread", &current_thread(), false);
    create_to_syncing(c, "create_to_syncing_external_caller", &mt, true);
    create_terminate_cycle(c);
}

criterion_group!(manager, manager_benches);
criterion_group!(
    queue,
    queue_enqueue,
    queue_dequeue,
    queue_enqueue_reference_workload,
    queue_dequeue_reference_workload,
    backoff
);
criterion_main!(manager, queue);
