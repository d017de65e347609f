//! The timer-ordered work queue: which process is due for a sync, and when.
//!
//! A min-heap of ready times plus a map holding each id's current ready time.
//! Re-enqueueing an id keeps the earlier time; superseded heap entries are
//! skipped when they surface (lazy deletion) and compacted away if they pile
//! up. A waiter sleeps until the earliest ready time or until an enqueue
//! wakes it: there is no fixed tick.

use std::cmp::Reverse;
use std::collections::hash_map::Entry;
use std::collections::{BinaryHeap, HashMap};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

use super::types::ProcessId;

/// Heap entries beyond this many stale ones trigger a compaction.
const COMPACT_SLACK: usize = 1024;

/// Timer-ordered queue of process ids, deduplicated by id.
#[derive(Debug)]
pub struct WorkQueue {
    inner: Mutex<Inner>,
    notify: Notify,
}

/// A ready time and an enqueue sequence number packed into one integer that
/// orders by time, then by enqueue order: nanoseconds since the queue's
/// `base` in the high half, the sequence number in the low half.
type Key = u128;

#[derive(Debug)]
struct Inner {
    base: Instant,
    heap: BinaryHeap<Reverse<Item>>,
    /// The live key of every queued id.
    ready: HashMap<ProcessId, Key>,
    seq: u64,
}

#[derive(Debug)]
struct Item {
    key: Key,
    id: ProcessId,
}

impl PartialEq for Item {
    fn eq(&self, other: &Self) -> bool {
        self.key == other.key
    }
}

impl Eq for Item {}

impl PartialOrd for Item {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Item {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.key.cmp(&other.key)
    }
}

/// What [`WorkQueue::pop_due`] found.
#[derive(Debug, PartialEq, Eq)]
pub enum Pop {
    /// This id was due and is removed from the queue.
    Ready(ProcessId),
    /// Nothing is due before this time.
    NotBefore(Instant),
    /// The queue is empty.
    Empty,
}

impl Default for WorkQueue {
    fn default() -> Self {
        Self::new()
    }
}

impl WorkQueue {
    /// An empty queue.
    pub fn new() -> Self {
        Self {
            inner: Mutex::new(Inner {
                base: Instant::now(),
                heap: BinaryHeap::new(),
                ready: HashMap::new(),
                seq: 0,
            }),
            notify: Notify::new(),
        }
    }

    /// Queue `id` to be ready after `delay`. Returns the id's ready time,
    /// which is an earlier one if the id was already queued sooner.
    pub fn enqueue(&self, id: ProcessId, delay: Duration) -> Instant {
        self.enqueue_at(id, Instant::now() + delay)
    }

    /// Queue `id` to be ready at `at` (keeping an earlier ready time).
    /// Returns the id's effective ready time and wakes a waiter.
    pub fn enqueue_at(&self, id: ProcessId, at: Instant) -> Instant {
        let mut inner = self.lock();
        let inner = &mut *inner;
        let time = inner.time_of(at);
        let base = inner.base;
        match inner.ready.entry(id) {
            Entry::Occupied(e) if time_part(*e.get()) <= time => {
                return base + Duration::from_nanos(time_part(*e.get()));
            }
            Entry::Occupied(mut e) => {
                inner.seq += 1;
                let key = pack(time, inner.seq);
                e.insert(key);
                let id = e.key().clone();
                inner.heap.push(Reverse(Item { key, id }));
            }
            Entry::Vacant(e) => {
                inner.seq += 1;
                let key = pack(time, inner.seq);
                let id = e.key().clone();
                e.insert(key);
                inner.heap.push(Reverse(Item { key, id }));
            }
        }
        if inner.heap.len() > inner.ready.len() * 2 + COMPACT_SLACK {
            inner.compact();
        }
        self.notify.notify_one();
        inner.instant_of(time)
    }

    /// Remove and return one id that is due now, if any.
    pub fn dequeue(&self) -> Option<ProcessId> {
        // The clock is read only when there is something to compare it with.
        match self.lock().pop_due(Instant::now) {
            Pop::Ready(id) => Some(id),
            Pop::NotBefore(_) | Pop::Empty => None,
        }
    }

    /// Remove and return one id due at `now`, or say when the next one is.
    pub fn pop_due(&self, now: Instant) -> Pop {
        self.lock().pop_due(|| now)
    }

    /// Forget `id` if it is queued. Returns whether it was.
    pub fn remove(&self, id: &str) -> bool {
        self.lock().ready.remove(id).is_some()
    }

    /// When `id` is due, if it is queued.
    pub fn ready_at(&self, id: &str) -> Option<Instant> {
        let inner = self.lock();
        inner.ready.get(id).map(|&key| inner.instant_of(time_part(key)))
    }

    /// Number of queued ids (due or not).
    pub fn len(&self) -> usize {
        self.lock().ready.len()
    }

    /// True when nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Wait until an id is due, then remove and return it. Sleeps until the
    /// earliest ready time; an enqueue wakes it to re-check. Cancel-safe.
    pub async fn next_due(&self) -> ProcessId {
        loop {
            // Created before checking so an enqueue in between is not lost
            // (`notify_one` also leaves a permit when nobody waits).
            let notified = self.notify.notified();
            match self.pop_due(Instant::now()) {
                Pop::Ready(id) => return id,
                Pop::NotBefore(at) => {
                    tokio::select! {
                        () = notified => {}
                        () = tokio::time::sleep_until(at) => {}
                    }
                }
                Pop::Empty => notified.await,
            }
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn pack(time: u64, seq: u64) -> Key {
    (Key::from(time) << 64) | Key::from(seq)
}

fn time_part(key: Key) -> u64 {
    // The high half is a u64 by construction.
    (key >> 64) as u64
}

impl Inner {
    /// Nanoseconds from `base` to `at` (times before `base` are all "due").
    fn time_of(&self, at: Instant) -> u64 {
        let nanos = at.saturating_duration_since(self.base).as_nanos();
        u64::try_from(nanos).unwrap_or(u64::MAX)
    }

    fn instant_of(&self, time: u64) -> Instant {
        self.base + Duration::from_nanos(time)
    }

    fn pop_due(&mut self, now: impl FnOnce() -> Instant) -> Pop {
        if self.heap.is_empty() {
            return Pop::Empty;
        }
        let now = self.time_of(now());
        loop {
            let Some(Reverse(top)) = self.heap.peek() else {
                return Pop::Empty;
            };
            // A superseded entry may surface here as "not before" a time that
            // is earlier than the id's live one: the waiter then wakes early,
            // drops it below and sleeps again. Cheaper than a lookup per peek.
            let time = time_part(top.key);
            if time > now {
                return Pop::NotBefore(self.instant_of(time));
            }
            let Some(Reverse(item)) = self.heap.pop() else {
                return Pop::Empty;
            };
            match self.ready.remove_entry(&item.id) {
                Some((_, live)) if live == item.key => return Pop::Ready(item.id),
                // Superseded by an earlier enqueue: keep the live entry.
                Some((id, live)) => {
                    self.ready.insert(id, live);
                }
                None => {}
            }
        }
    }

    fn compact(&mut self) {
        self.heap = self
            .ready
            .iter()
            .map(|(id, &key)| Reverse(Item { key, id: id.clone() }))
            .collect();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn id(s: &str) -> ProcessId {
        ProcessId::from(s)
    }

    #[tokio::test(start_paused = true)]
    async fn enqueued_item_is_dequeued_when_due() {
        let q = WorkQueue::new();
        q.enqueue(id("a"), Duration::ZERO);
        assert_eq!(q.len(), 1);
        assert_eq!(q.dequeue(), Some(id("a")));
        assert_eq!(q.dequeue(), None);
        assert!(q.is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn delayed_item_is_not_ready_before_its_time() {
        let q = WorkQueue::new();
        q.enqueue(id("a"), Duration::from_millis(100));
        assert_eq!(q.dequeue(), None);
        assert_eq!(q.len(), 1);
        tokio::time::advance(Duration::from_millis(100)).await;
        assert_eq!(q.dequeue(), Some(id("a")));
    }

    #[tokio::test(start_paused = true)]
    async fn items_come_out_in_ready_time_order() {
        let q = WorkQueue::new();
        q.enqueue(id("c"), Duration::from_millis(30));
        q.enqueue(id("a"), Duration::from_millis(10));
        q.enqueue(id("b"), Duration::from_millis(20));
        tokio::time::advance(Duration::from_millis(30)).await;
        assert_eq!(q.dequeue(), Some(id("a")));
        assert_eq!(q.dequeue(), Some(id("b")));
        assert_eq!(q.dequeue(), Some(id("c")));
    }

    #[tokio::test(start_paused = true)]
    async fn earlier_enqueue_of_a_queued_id_wins() {
        let q = WorkQueue::new();
        q.enqueue(id("a"), Duration::from_secs(10));
        let at = q.enqueue(id("a"), Duration::from_millis(10));
        assert_eq!(q.ready_at("a"), Some(at));
        assert_eq!(q.len(), 1);
        tokio::time::advance(Duration::from_millis(10)).await;
        assert_eq!(q.dequeue(), Some(id("a")));
        assert_eq!(q.dequeue(), None, "the superseded entry must not resurface");
        tokio::time::advance(Duration::from_secs(10)).await;
        assert_eq!(q.dequeue(), None);
    }

    #[tokio::test(start_paused = true)]
    async fn later_enqueue_of_a_queued_id_is_ignored() {
        let q = WorkQueue::new();
        let first = q.enqueue(id("a"), Duration::from_millis(10));
        let effective = q.enqueue(id("a"), Duration::from_secs(10));
        assert_eq!(effective, first);
        assert_eq!(q.len(), 1);
        tokio::time::advance(Duration::from_millis(10)).await;
        assert_eq!(q.dequeue(), Some(id("a")));
    }

    #[tokio::test(start_paused = true)]
    async fn removed_item_is_never_dequeued() {
        let q = WorkQueue::new();
        q.enqueue(id("a"), Duration::ZERO);
        assert!(q.remove("a"));
        assert!(q.is_empty());
        assert_eq!(q.pop_due(Instant::now()), Pop::Empty);
    }

    #[tokio::test(start_paused = true)]
    async fn waiter_is_woken_by_an_enqueue() {
        let q = Arc::new(WorkQueue::new());
        let waiter = tokio::spawn({
            let q = Arc::clone(&q);
            async move { q.next_due().await }
        });
        tokio::task::yield_now().await;
        let start = Instant::now();
        q.enqueue(id("a"), Duration::ZERO);
        assert_eq!(waiter.await.ok(), Some(id("a")));
        assert_eq!(Instant::now(), start, "woken by the enqueue, not a timer");
    }

    #[tokio::test(start_paused = true)]
    async fn waiter_sleeps_exactly_until_the_item_is_due() {
        let q = WorkQueue::new();
        let start = Instant::now();
        q.enqueue(id("a"), Duration::from_millis(1500));
        assert_eq!(q.next_due().await, id("a"));
        assert_eq!(Instant::now() - start, Duration::from_millis(1500));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn hundred_concurrent_enqueues_are_all_kept() {
        let q = Arc::new(WorkQueue::new());
        let tasks: Vec<_> = (0..100)
            .map(|i| {
                let q = Arc::clone(&q);
                tokio::spawn(async move {
                    q.enqueue(ProcessId::from(format!("p{i}")), Duration::ZERO);
                })
            })
            .collect();
        for t in tasks {
            t.await.expect("enqueue task");
        }
        assert_eq!(q.len(), 100);
        let mut seen = 0;
        while q.dequeue().is_some() {
            seen += 1;
        }
        assert_eq!(seen, 100);
    }

    #[tokio::test(start_paused = true)]
    async fn stale_entries_are_compacted() {
        let q = WorkQueue::new();
        for i in 0..(COMPACT_SLACK as u64 * 3) {
            q.enqueue(id("a"), Duration::from_secs(1_000_000 - i));
        }
        assert_eq!(q.len(), 1);
        assert!(q.lock().heap.len() <= COMPACT_SLACK + 2);
    }
}
