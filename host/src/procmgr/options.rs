//! Manager options: timing knobs and the metrics collector.
//!
//! All timing uses `tokio::time` (`Instant`, `sleep_until`), so tests drive
//! the manager with `tokio::time::pause` / `advance`.

use std::sync::Arc;
use std::time::Duration;

use super::metrics::{MetricsCollector, NoopMetrics};

/// Default interval between resyncs of a healthy process.
pub const DEFAULT_RESYNC_INTERVAL: Duration = Duration::from_secs(30);
/// Default cap of the exponential retry backoff.
pub const DEFAULT_BACKOFF_PERIOD: Duration = Duration::from_secs(5);
/// Default grace period of a Terminate that names none.
pub const DEFAULT_GRACE_PERIOD: Duration = Duration::from_secs(10);
/// Default time a started handle must live for its death to start a new
/// crash streak: a worker that dies sooner, restart after restart, backs
/// off longer each time.
pub const DEFAULT_STABLE_UPTIME: Duration = Duration::from_secs(10);

/// How a [`ProcessManager`](super::ProcessManager) behaves.
#[derive(Debug, Clone)]
pub struct ProcessManagerOptions {
    /// Interval between resyncs of a healthy process, jittered +-10%.
    /// Default 30 s. Shorter means faster detection of silent drift and more
    /// hook calls.
    pub resync_interval: Duration,
    /// Cap of the retry backoff after failures (`1 s * 2^failures`, +-25%).
    /// Default 5 s. A tenant whose process keeps failing costs at most one
    /// sync per backoff period.
    pub backoff_period: Duration,
    /// Grace period of a Terminate that names none. Default 10 s.
    pub default_grace_period: Duration,
    /// How long a started handle must live for its death to count as the
    /// first of a new streak. A handle that dies sooner continues the
    /// process's crash streak, and the restart backs off by the longer of
    /// the streak and the consecutive errors, so a thing that dies right
    /// after each (successful) restart still backs off exponentially, as
    /// kubelet's CrashLoopBackOff does. Default 10 s.
    pub stable_uptime: Duration,
    /// Where measurements go. Default: nowhere ([`NoopMetrics`]).
    pub metrics: Arc<dyn MetricsCollector>,
}

impl Default for ProcessManagerOptions {
    fn default() -> Self {
        Self {
            resync_interval: DEFAULT_RESYNC_INTERVAL,
            backoff_period: DEFAULT_BACKOFF_PERIOD,
            default_grace_period: DEFAULT_GRACE_PERIOD,
            stable_uptime: DEFAULT_STABLE_UPTIME,
            metrics: Arc::new(NoopMetrics),
        }
    }
}

impl ProcessManagerOptions {
    /// Set the resync interval.
    pub fn with_resync_interval(mut self, interval: Duration) -> Self {
        self.resync_interval = interval;
        self
    }

    /// Set the backoff cap.
    pub fn with_backoff_period(mut self, period: Duration) -> Self {
        self.backoff_period = period;
        self
    }

    /// Set the default grace period.
    pub fn with_default_grace_period(mut self, grace: Duration) -> Self {
        self.default_grace_period = grace;
        self
    }

    /// Set the stable uptime of the crash-streak rule.
    pub fn with_stable_uptime(mut self, uptime: Duration) -> Self {
        self.stable_uptime = uptime;
        self
    }

    /// Set the metrics collector.
    pub fn with_metrics(mut self, metrics: Arc<dyn MetricsCollector>) -> Self {
        self.metrics = metrics;
        self
    }
}
