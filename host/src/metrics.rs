//! The host's own metrics (`CONTRACT.md` section 6), in their own registry;
//! `/metrics` exposes them beside procmgr's.

use std::time::Duration;

use prometheus::{CounterVec, Encoder, GaugeVec, HistogramOpts, HistogramVec, Opts, Registry, TextEncoder};

use crate::supervisor::ExitEvent;

/// Buckets for request and cold-start latencies: 100 us to 10 s.
const LATENCY_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The `bulkhead_*` metrics.
#[derive(Debug, Clone)]
pub struct HostMetrics {
    registry: Registry,
    requests: CounterVec,
    request_duration: HistogramVec,
    cold_start: HistogramVec,
    admission_rejected: CounterVec,
    workers: GaugeVec,
    disk_used: GaugeVec,
    worker_exits: CounterVec,
    fuel: CounterVec,
    http_connections: prometheus::IntGauge,
    http_refused: prometheus::IntCounter,
    http_closed: prometheus::IntCounterVec,
}

/// Counts an open connection until dropped.
#[derive(Debug)]
pub(crate) struct OpenConnection(prometheus::IntGauge);

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.0.dec();
    }
}

impl HostMetrics {
    /// Registers every metric in a new registry.
    pub fn new() -> prometheus::Result<Self> {
        let registry = Registry::new();
        let requests = CounterVec::new(
            Opts::new("bulkhead_requests_total", "Total number of invoke requests by outcome"),
            &["level", "plugin", "outcome"],
        )?;
        let request_duration = HistogramVec::new(
            HistogramOpts::new("bulkhead_request_duration_seconds", "Duration of invoke requests")
                .buckets(LATENCY_BUCKETS.to_vec()),
            &["level"],
        )?;
        let cold_start = HistogramVec::new(
            HistogramOpts::new(
                "bulkhead_cold_start_seconds",
                "Time to get a worker ready for a process id's first request",
            )
            .buckets(LATENCY_BUCKETS.to_vec()),
            &["level", "source"],
        )?;
        let admission_rejected = CounterVec::new(
            Opts::new(
                "bulkhead_admission_rejected_total",
                "Calls refused by a process's bulkhead",
            ),
            &["reason"],
        )?;
        let workers = GaugeVec::new(Opts::new("bulkhead_workers", "Worker processes by state"), &["state"])?;
        // Addition to the contract: each namespace's disk quota in use.
        let disk_used = GaugeVec::new(
            Opts::new(
                "bulkhead_namespace_disk_used",
                "Disk quota of a namespace's /data in use, in bytes and in files",
            ),
            &["namespace", "unit"],
        )?;
        let worker_exits = CounterVec::new(
            Opts::new("bulkhead_worker_exits_total", "Worker process exits by reason"),
            &["reason"],
        )?;
        let fuel = CounterVec::new(
            Opts::new(
                "bulkhead_guest_fuel_consumed_total",
                "Fuel consumed by successful guest calls",
            ),
            &["plugin"],
        )?;
        let http_connections = prometheus::IntGauge::new("bulkhead_http_connections", "Client connections open now")?;
        let http_refused = prometheus::IntCounter::new(
            "bulkhead_http_connections_refused_total",
            "Client connections refused over server.max_connections",
        )?;
        let http_closed = prometheus::IntCounterVec::new(
            Opts::new(
                "bulkhead_http_connections_closed_total",
                "Client connections the host closed itself, by reason",
            ),
            &["reason"],
        )?;
        registry.register(Box::new(http_connections.clone()))?;
        registry.register(Box::new(http_refused.clone()))?;
        registry.register(Box::new(http_closed.clone()))?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(request_duration.clone()))?;
        registry.register(Box::new(cold_start.clone()))?;
        registry.register(Box::new(admission_rejected.clone()))?;
        registry.register(Box::new(workers.clone()))?;
        registry.register(Box::new(disk_used.clone()))?;
        registry.register(Box::new(worker_exits.clone()))?;
        registry.register(Box::new(fuel.clone()))?;
        Ok(Self {
            registry,
            requests,
            request_duration,
            cold_start,
            admission_rejected,
            workers,
            disk_used,
            worker_exits,
            fuel,
            http_connections,
            http_refused,
            http_closed,
        })
    }

    /// Counts a client connection as open while the guard lives.
    pub(crate) fn http_connection_opened(&self) -> OpenConnection {
        self.http_connections.inc();
        OpenConnection(self.http_connections.clone())
    }

    /// Records a connection refused over the cap.
    pub(crate) fn http_connection_refused(&self) {
        self.http_refused.inc();
    }

    /// Records a connection the host closed (`reason`: a fixed word).
    pub(crate) fn http_connection_closed(&self, reason: &str) {
        self.http_closed.with_label_values(&[reason]).inc();
    }

    /// Records one finished invoke.
    pub fn request(&self, level: &str, plugin: &str, outcome: &str, duration: Duration) {
        self.requests.with_label_values(&[level, plugin, outcome]).inc();
        self.request_duration
            .with_label_values(&[level])
            .observe(duration.as_secs_f64());
    }

    /// Records a cold start.
    pub fn cold_start(&self, level: &str, source: &str, duration: Duration) {
        self.cold_start
            .with_label_values(&[level, source])
            .observe(duration.as_secs_f64());
    }

    /// Records a call refused by admission.
    pub fn admission_rejected(&self, reason: &str) {
        self.admission_rejected.with_label_values(&[reason]).inc();
    }

    /// Records fuel a successful call consumed.
    pub fn fuel(&self, plugin: &str, fuel: u64) {
        self.fuel.with_label_values(&[plugin]).inc_by(fuel as f64);
    }

    /// Records a worker exit.
    pub fn worker_exit(&self, event: &ExitEvent) {
        self.worker_exits.with_label_values(&[event.exit.reason.as_str()]).inc();
    }

    /// Sets the worker gauges (read at scrape time).
    pub fn set_workers(&self, idle: usize, assigned: usize) {
        self.workers.with_label_values(&["idle"]).set(idle as f64);
        self.workers.with_label_values(&["assigned"]).set(assigned as f64);
    }

    /// Sets each namespace's disk-quota gauges (read at scrape time).
    pub fn set_disk_usage(&self, usage: &[(crate::names::Namespace, crate::supervisor::DiskUsage)]) {
        for (namespace, usage) in usage {
            let ns = namespace.as_str();
            self.disk_used
                .with_label_values(&[ns, "bytes"])
                .set(usage.used_bytes as f64);
            self.disk_used
                .with_label_values(&[ns, "files"])
                .set(usage.used_files as f64);
        }
    }

    /// The text exposition of these metrics and of `others`.
    pub fn render(&self, others: &[&Registry]) -> String {
        let mut families = self.registry.gather();
        for registry in others {
            families.extend(registry.gather());
        }
        families.sort_by(|a, b| a.name().cmp(b.name()));
        let mut out = Vec::new();
        // Encoding into a Vec cannot fail for well-formed families.
        let _ = TextEncoder::new().encode(&families, &mut out);
        String::from_utf8(out).unwrap_or_default()
    }
}
