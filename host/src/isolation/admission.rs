//! Admission: the bulkhead in front of each process. At most
//! `max_concurrent` calls run at once, at most `max_queued` wait, and each
//! waits at most `queue_timeout`; everything beyond is refused with
//! `bulkhead_full` at once, so a flood fills one compartment's queue and no
//! one else's.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The admission limits of one process.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AdmissionLimits {
    pub max_concurrent: usize,
    pub max_queued: usize,
    pub queue_timeout: Duration,
}

impl Default for AdmissionLimits {
    fn default() -> Self {
        Self {
            max_concurrent: 16,
            max_queued: 64,
            queue_timeout: Duration::from_secs(1),
        }
    }
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
}

/// A running call's slot; released on drop.
#[derive(Debug)]
pub struct Admitted(#[allow(dead_code, reason = "held for its Drop")] OwnedSemaphorePermit);

struct Queued<'a>(&'a AtomicUsize);

impl Drop for Queued<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Admission {
    pub fn new(limits: AdmissionLimits) -> Self {
        let running = Arc::new(Semaphore::new(limits.max_concurrent.max(1)));
        Self {
            limits,
            running,
            queued: AtomicUsize::new(0),
        }
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
    pub async fn admit(&self) -> Result<Admitted, Rejection> {
        if let Ok(permit) = Arc::clone(&self.running).try_acquire_owned() {
            return Ok(Admitted(permit));
        }
        if self.queued.fetch_add(1, Ordering::Relaxed) >= self.limits.max_queued {
            self.queued.fetch_sub(1, Ordering::Relaxed);
            return Err(Rejection::QueueFull);
        }
        let _queued = Queued(&self.queued);
        match tokio::time::timeout(self.limits.queue_timeout, Arc::clone(&self.running).acquire_owned()).await {
            Ok(Ok(permit)) => Ok(Admitted(permit)),
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
        let admission = Admission::new(limits(1, 1));
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
        let admission = Admission::new(limits(1, 4));
        let _running = admission.admit().await.unwrap();
        let started = tokio::time::Instant::now();
        assert_eq!(admission.admit().await.unwrap_err(), Rejection::QueueTimeout);
        assert_eq!(started.elapsed(), Duration::from_secs(1));
        assert_eq!(admission.queued(), 0);
        assert_eq!(admission.in_flight(), 1);
    }
}
