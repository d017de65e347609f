//! Admission: the bulkhead in front of each process. At most
//! `max_concurrent` calls run at once, at most `max_queued` wait, and each
//! waits at most `queue_timeout`; everything beyond is refused with
//! `bulkhead_full` at once, so a flood fills one compartment's queue and no
//! one else's. The load (running and waiting calls) is published on a watch
//! channel at every change, so a waiter is woken by the change itself.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};

/// The admission limits of one process.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AdmissionLimits {
    pub max_concurrent: usize,
    pub max_queued: usize,
    pub queue_timeout: Duration,
}

impl AdmissionLimits {
    /// 16 calls at once.
    pub const DEFAULT_MAX_CONCURRENT: usize = 16;
    /// 64 calls waiting.
    pub const DEFAULT_MAX_QUEUED: usize = 64;
    /// 1 s of waiting for a slot.
    pub const DEFAULT_QUEUE_TIMEOUT: Duration = Duration::from_secs(1);
}

impl Default for AdmissionLimits {
    fn default() -> Self {
        Self {
            max_concurrent: Self::DEFAULT_MAX_CONCURRENT,
            max_queued: Self::DEFAULT_MAX_QUEUED,
            queue_timeout: Self::DEFAULT_QUEUE_TIMEOUT,
        }
    }
}

/// Calls running and waiting in one process's bulkhead.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Load {
    /// Calls admitted and not yet finished.
    pub in_flight: usize,
    /// Calls waiting for a slot.
    pub queued: usize,
}

/// Why a call was not admitted; the `reason` label of
/// `bulkhead_admission_rejected_total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rejection {
    /// `max_queued` calls were already waiting.
    QueueFull,
    /// The call waited `queue_timeout` without getting a slot.
    QueueTimeout,
}

impl Rejection {
    /// The label value.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::QueueFull => "queue_full",
            Self::QueueTimeout => "queue_timeout",
        }
    }
}

/// The concurrency limit and bounded queue of one process.
#[derive(Debug)]
pub struct Admission {
    limits: AdmissionLimits,
    running: Arc<Semaphore>,
    queued: AtomicUsize,
    load: watch::Sender<Load>,
}

/// A running call's slot; released on drop.
#[derive(Debug)]
pub struct Admitted {
    permit: Option<OwnedSemaphorePermit>,
    admission: Arc<Admission>,
}

impl Drop for Admitted {
    fn drop(&mut self) {
        drop(self.permit.take());
        self.admission.publish();
    }
}

struct Queued<'a>(&'a Admission);

impl Drop for Queued<'_> {
    fn drop(&mut self) {
        self.0.queued.fetch_sub(1, Ordering::Relaxed);
        self.0.publish();
    }
}

impl Admission {
    pub fn new(limits: AdmissionLimits) -> Self {
        let running = Arc::new(Semaphore::new(limits.max_concurrent.max(1)));
        Self {
            limits,
            running,
            queued: AtomicUsize::new(0),
            load: watch::Sender::new(Load::default()),
        }
    }

    fn publish(&self) {
        self.load.send_replace(self.load());
    }

    /// Calls running and waiting now.
    pub fn load(&self) -> Load {
        Load {
            in_flight: self.in_flight(),
            queued: self.queued(),
        }
    }

    /// Waits (woken by each change) until the load satisfies `predicate`,
    /// at most `timeout`; `None` if it never did.
    pub async fn wait_for_load(&self, mut predicate: impl FnMut(&Load) -> bool, timeout: Duration) -> Option<Load> {
        let mut load = self.load.subscribe();
        load.mark_changed();
        tokio::time::timeout(timeout, async {
            while load.changed().await.is_ok() {
                // Read the counters themselves: the published value may lag.
                let now = self.load();
                if predicate(&now) {
                    return Some(now);
                }
            }
            None
        })
        .await
        .ok()
        .flatten()
    }

    pub fn limits(&self) -> &AdmissionLimits {
        &self.limits
    }

    /// Calls running now.
    pub fn in_flight(&self) -> usize {
        self.limits.max_concurrent.max(1) - self.running.available_permits()
    }

    /// Calls waiting now.
    pub fn queued(&self) -> usize {
        self.queued.load(Ordering::Relaxed)
    }

    /// Waits for a slot, within the queue's bounds.
    pub async fn admit(self: &Arc<Self>) -> Result<Admitted, Rejection> {
        let admitted = |permit| {
            self.publish();
            Ok(Admitted {
                permit: Some(permit),
                admission: Arc::clone(self),
            })
        };
        if let Ok(permit) = Arc::clone(&self.running).try_acquire_owned() {
            return admitted(permit);
        }
        if self.queued.fetch_add(1, Ordering::Relaxed) >= self.limits.max_queued {
            self.queued.fetch_sub(1, Ordering::Relaxed);
            return Err(Rejection::QueueFull);
        }
        let queued = Queued(self);
        self.publish();
        let acquired = tokio::time::timeout(self.limits.queue_timeout, Arc::clone(&self.running).acquire_owned()).await;
        drop(queued);
        match acquired {
            Ok(Ok(permit)) => admitted(permit),
            // The semaphore is never closed; treat it as a timeout anyway.
            Ok(Err(_)) | Err(_) => Err(Rejection::QueueTimeout),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(max_concurrent: usize, max_queued: usize) -> AdmissionLimits {
        AdmissionLimits {
            max_concurrent,
            max_queued,
            queue_timeout: Duration::from_secs(1),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn calls_beyond_the_queue_are_refused_at_once() {
        let admission = Arc::new(Admission::new(limits(1, 1)));
        let running = admission.admit().await.unwrap();
        let waiting = admission.admit();
        tokio::pin!(waiting);
        assert!(futures_util::poll!(&mut waiting).is_pending());
        assert_eq!(admission.queued(), 1);
        assert_eq!(admission.admit().await.unwrap_err(), Rejection::QueueFull);
        drop(running);
        waiting.await.unwrap();
        assert_eq!(admission.queued(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_queued_call_gives_up_after_the_queue_timeout() {
        let admission = Arc::new(Admission::new(limits(1, 4)));
        let _running = admission.admit().await.unwrap();
        let started = tokio::time::Instant::now();
        assert_eq!(admission.admit().await.unwrap_err(), Rejection::QueueTimeout);
        assert_eq!(started.elapsed(), Duration::from_secs(1));
        assert_eq!(admission.queued(), 0);
        assert_eq!(admission.in_flight(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_waiter_is_woken_by_the_load_it_waits_for() {
        let admission = Arc::new(Admission::new(limits(1, 4)));
        let waiter = {
            let admission = Arc::clone(&admission);
            tokio::spawn(async move {
                admission
                    .wait_for_load(|load| load.in_flight == 1, Duration::from_secs(60))
                    .await
            })
        };
        let running = admission.admit().await.unwrap();
        assert_eq!(
            waiter.await.unwrap(),
            Some(Load {
                in_flight: 1,
                queued: 0
            })
        );
        drop(running);
        let idle = admission.wait_for_load(|load| load.in_flight == 0, Duration::from_secs(60));
        assert_eq!(idle.await, Some(Load::default()));
        let never = admission.wait_for_load(|load| load.queued > 0, Duration::from_secs(5));
        assert_eq!(never.await, None, "gives up at its timeout");
    }
}
