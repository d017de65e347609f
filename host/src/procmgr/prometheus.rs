//! The Prometheus metrics collector: the nine procmgr series (names, HELP
//! texts, labels and buckets fixed by the contract) in a registry of its own
//! that the host merges into `/metrics`.
//!
//! A purged process's series stay for the collector's retention (so that a
//! scrape can see its termination and last errors), at most
//! [`MAX_RETAINED`] processes at once (oldest dropped first), then go. An id
//! that is created again before that keeps its series.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

use prometheus::{CounterVec, Gauge, HistogramOpts, HistogramVec, Opts, Registry};

use super::error::ProcmgrError;
use super::metrics::{FailurePhase, MetricsCollector};
use super::types::{ProcessId, ProcessState, UpdateType};

/// The metric name prefix used unless another is configured.
pub const DEFAULT_NAMESPACE: &str = "procmgr";

/// Buckets of the sync and termination duration histograms (seconds).
const DURATION_BUCKETS: [f64; 11] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];
/// Buckets of the backoff duration histogram (seconds).
const BACKOFF_BUCKETS: [f64; 8] = [0.1, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0];

/// The most purged processes whose series are retained at once.
pub const MAX_RETAINED: usize = 1000;

/// Purged processes whose series are kept for a while.
#[derive(Debug, Default)]
struct Retained {
    /// Oldest first: when each was purged, and the purge's number.
    queue: VecDeque<(Instant, ProcessId, u64)>,
    /// The latest purge of each id still retained (absent once revived).
    latest: HashMap<ProcessId, u64>,
    purges: u64,
}

/// Records procmgr metrics in a Prometheus registry of its own.
#[derive(Debug, Clone)]
pub struct PrometheusMetrics {
    registry: Registry,
    retention: Duration,
    retained: Arc<Mutex<Retained>>,
    state_transitions: CounterVec,
    sync_duration: HistogramVec,
    termination_duration: HistogramVec,
    errors: CounterVec,
    restarts: CounterVec,
    queue_depth: Gauge,
    queue_adds: CounterVec,
    queue_retries: CounterVec,
    backoff_duration: HistogramVec,
}

impl PrometheusMetrics {
    /// A collector whose metric names start with `<namespace>_` (an empty
    /// namespace means [`DEFAULT_NAMESPACE`]). Fails only if `namespace` is
    /// not a valid metric name prefix.
    pub fn new(namespace: &str) -> Result<Self, ProcmgrError> {
        Self::build(if namespace.is_empty() {
            DEFAULT_NAMESPACE
        } else {
            namespace
        })
        .map_err(|e| ProcmgrError::Metrics { message: e.to_string() })
    }

    fn build(ns: &str) -> prometheus::Result<Self> {
        let counter =
            |name: &str, help: &str, labels: &[&str]| CounterVec::new(Opts::new(name, help).namespace(ns), labels);
        let histogram = |name: &str, help: &str, labels: &[&str], buckets: &[f64]| {
            HistogramVec::new(
                HistogramOpts::new(name, help).namespace(ns).buckets(buckets.to_vec()),
                labels,
            )
        };
        let me = Self {
            registry: Registry::new(),
            retention: Duration::ZERO,
            retained: Arc::default(),
            state_transitions: counter(
                "process_state_transitions_total",
                "Total number of process state transitions",
                &["process_id", "from_state", "to_state"],
            )?,
            sync_duration: histogram(
                "process_sync_duration_seconds",
                "Duration of process sync operations",
                &["process_id", "update_type", "status"],
                &DURATION_BUCKETS,
            )?,
            termination_duration: histogram(
                "process_termination_duration_seconds",
                "Duration of process termination operations",
                &["process_id"],
                &DURATION_BUCKETS,
            )?,
            errors: counter(
                "process_errors_total",
                "Total number of process errors",
                &["process_id", "error_type"],
            )?,
            restarts: counter(
                "process_restarts_total",
                "Total number of process restarts",
                &["process_id"],
            )?,
            queue_depth: Gauge::with_opts(
                Opts::new("work_queue_depth", "Current depth of the work queue").namespace(ns),
            )?,
            queue_adds: counter(
                "work_queue_adds_total",
                "Total number of items added to work queue",
                &["process_id"],
            )?,
            queue_retries: counter(
                "work_queue_retries_total",
                "Total number of work queue retry operations",
                &["process_id"],
            )?,
            backoff_duration: histogram(
                "work_queue_backoff_duration_seconds",
                "Duration of backoff delays for failed processes",
                &["process_id"],
                &BACKOFF_BUCKETS,
            )?,
        };
        let r = &me.registry;
        r.register(Box::new(me.state_transitions.clone()))?;
        r.register(Box::new(me.sync_duration.clone()))?;
        r.register(Box::new(me.termination_duration.clone()))?;
        r.register(Box::new(me.errors.clone()))?;
        r.register(Box::new(me.restarts.clone()))?;
        r.register(Box::new(me.queue_depth.clone()))?;
        r.register(Box::new(me.queue_adds.clone()))?;
        r.register(Box::new(me.queue_retries.clone()))?;
        r.register(Box::new(me.backoff_duration.clone()))?;
        Ok(me)
    }

    /// Keeps a purged process's series for `retention` (zero removes them
    /// at the purge).
    pub fn with_retention(mut self, retention: Duration) -> Self {
        self.retention = retention;
        self
    }

    /// The registry holding the nine series (to gather or merge elsewhere).
    /// Call [`Self::expire`] before gathering it.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Removes the series of processes purged longer than the retention ago.
    pub fn expire(&self) {
        let now = Instant::now();
        let mut retained = self.retained();
        while let Some((at, _, _)) = retained.queue.front()
            && now.duration_since(*at) >= self.retention
        {
            self.drop_oldest(&mut retained);
        }
    }

    fn retained(&self) -> std::sync::MutexGuard<'_, Retained> {
        self.retained.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn drop_oldest(&self, retained: &mut Retained) {
        if let Some((_, id, purge)) = retained.queue.pop_front()
            && retained.latest.get(&id) == Some(&purge)
        {
            retained.latest.remove(&id);
            self.remove_series(&id);
        }
    }

    fn remove_series(&self, id: &ProcessId) {
        // Removing a series that was never created fails harmlessly, so try
        // every label combination the process could have used.
        let id = id.as_str();
        for from in ProcessState::ALL {
            for to in ProcessState::ALL {
                let _ = self
                    .state_transitions
                    .remove_label_values(&[id, from.as_str(), to.as_str()]);
            }
        }
        for update_type in UpdateType::ALL {
            for status in ["success", "error"] {
                let _ = self
                    .sync_duration
                    .remove_label_values(&[id, update_type.as_str(), status]);
            }
        }
        for kind in FailurePhase::ALL {
            let _ = self.errors.remove_label_values(&[id, kind.as_str()]);
        }
        let _ = self.termination_duration.remove_label_values(&[id]);
        let _ = self.restarts.remove_label_values(&[id]);
        let _ = self.queue_adds.remove_label_values(&[id]);
        let _ = self.queue_retries.remove_label_values(&[id]);
        let _ = self.backoff_duration.remove_label_values(&[id]);
    }

    /// Gather the current values of every series.
    pub fn gather(&self) -> Vec<prometheus::proto::MetricFamily> {
        self.registry.gather()
    }
}

impl MetricsCollector for PrometheusMetrics {
    fn process_state_transition(&self, id: &ProcessId, from: ProcessState, to: ProcessState) {
        if from == ProcessState::Starting && self.retention > Duration::ZERO {
            // Created again: its series are live again.
            self.retained().latest.remove(id);
        }
        self.state_transitions
            .with_label_values(&[id.as_str(), from.as_str(), to.as_str()])
            .inc();
    }

    fn process_sync_duration(&self, id: &ProcessId, update_type: UpdateType, duration: Duration, ok: bool) {
        let status = if ok { "success" } else { "error" };
        self.sync_duration
            .with_label_values(&[id.as_str(), update_type.as_str(), status])
            .observe(duration.as_secs_f64());
    }

    fn process_termination_duration(&self, id: &ProcessId, duration: Duration) {
        self.termination_duration
            .with_label_values(&[id.as_str()])
            .observe(duration.as_secs_f64());
    }

    fn process_error(&self, id: &ProcessId, kind: FailurePhase) {
        self.errors.with_label_values(&[id.as_str(), kind.as_str()]).inc();
    }

    fn process_restart(&self, id: &ProcessId) {
        self.restarts.with_label_values(&[id.as_str()]).inc();
    }

    fn work_queue_depth(&self, depth: usize) {
        self.queue_depth.set(depth as f64);
    }

    fn work_queue_add(&self, id: &ProcessId, _delay: Duration) {
        self.queue_adds.with_label_values(&[id.as_str()]).inc();
    }

    fn work_queue_retry(&self, id: &ProcessId) {
        self.queue_retries.with_label_values(&[id.as_str()]).inc();
    }

    fn work_queue_backoff_duration(&self, id: &ProcessId, delay: Duration) {
        self.backoff_duration
            .with_label_values(&[id.as_str()])
            .observe(delay.as_secs_f64());
    }

    fn process_purged(&self, id: &ProcessId) {
        if self.retention.is_zero() {
            self.remove_series(id);
            return;
        }
        let mut retained = self.retained();
        retained.purges += 1;
        let purge = retained.purges;
        retained.queue.push_back((Instant::now(), id.clone(), purge));
        retained.latest.insert(id.clone(), purge);
        while retained.queue.len() > MAX_RETAINED {
            self.drop_oldest(&mut retained);
        }
        drop(retained);
        self.expire();
    }
}
