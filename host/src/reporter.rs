//! The memo's `IsolationHealthReporter`: one health report over several
//! backends (running hosts, or a service in this process), in the memo's
//! format: one `Backend: NAME` section each, then the totals.
//!
//! ```no_run
//! use std::time::Duration;
//! use bulkhead::cli::BaseUrl;
//! use bulkhead::reporter::{HealthReporter, RemoteHost};
//!
//! let mut reporter = HealthReporter::new(Duration::from_secs(5));
//! reporter.register("eu", RemoteHost::new(BaseUrl::parse("http://10.0.0.1:8080").unwrap(), None));
//! reporter.register("us", RemoteHost::new(BaseUrl::parse("http://10.0.0.2:8080").unwrap(), None));
//! print!("{}", reporter.report());
//! ```
//!
//! Every backend is asked at once, on its own thread, and the report waits
//! for each at most the reporter's timeout: an unreachable, failing or slow
//! backend is reported as such (with why) and never holds up the report.

use std::fmt::Write as _;
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use crate::api::health::{REPORT_HEADER, backend_section, health_from_json, health_json};
use crate::cli::{BaseUrl, Client, ClientArgs};
use crate::procmgr::Health;
use crate::service::Service;

/// What a backend says of itself.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    /// The name the backend gives itself (a host's `server.name`), if any.
    pub name: Option<String>,
    pub health: Health,
}

/// A backend the reporter can ask.
pub trait HealthSource: Send + Sync {
    /// The backend's health, or why it cannot be had; should give up
    /// after `timeout` (the reporter stops waiting then in any case).
    fn snapshot(&self, timeout: Duration) -> Result<Snapshot, String>;
}

/// A running host, asked over its HTTP API (`GET /v1/health`, which needs
/// the admin token when auth is on).
#[derive(Debug, Clone)]
pub struct RemoteHost {
    url: BaseUrl,
    token: Option<String>,
}

impl RemoteHost {
    pub fn new(url: BaseUrl, token: Option<String>) -> Self {
        Self { url, token }
    }
}

impl HealthSource for RemoteHost {
    fn snapshot(&self, timeout: Duration) -> Result<Snapshot, String> {
        let args = ClientArgs {
            url: self.url.clone(),
            token: self.token.clone(),
            timeout: timeout.as_secs().max(1),
        };
        let text = Client::new(&args).get_text("/v1/health").map_err(|e| e.to_string())?;
        let json: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| format!("{}/v1/health is not JSON: {e}", self.url))?;
        let health = health_from_json(&json).map_err(|e| format!("{}/v1/health: {e}", self.url))?;
        let name = json["backend"].as_str().map(str::to_owned);
        Ok(Snapshot { name, health })
    }
}

/// A service in this process.
#[derive(Debug, Clone)]
pub struct LocalService(pub Arc<Service>);

impl HealthSource for LocalService {
    fn snapshot(&self, _timeout: Duration) -> Result<Snapshot, String> {
        Ok(Snapshot {
            name: None,
            health: self.0.health(),
        })
    }
}

/// One backend's part of a report.
#[derive(Debug, Clone, PartialEq)]
pub struct BackendHealth {
    /// The name it was registered under.
    pub registered: String,
    /// Its snapshot, or why there is none.
    pub result: Result<Snapshot, String>,
    /// How long it took to answer (or to be given up on).
    pub took: Duration,
}

impl BackendHealth {
    /// The name its section gets: the backend's own, else the registered one.
    pub fn name(&self) -> &str {
        match &self.result {
            Ok(Snapshot { name: Some(name), .. }) => name,
            _ => &self.registered,
        }
    }
}

/// Backends registered by name, asked together.
pub struct HealthReporter {
    backends: Vec<(String, Arc<dyn HealthSource>)>,
    timeout: Duration,
}

impl std::fmt::Debug for HealthReporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.backends.iter().map(|(name, _)| name.as_str()).collect();
        f.debug_struct("HealthReporter")
            .field("backends", &names)
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl HealthReporter {
    /// A reporter that waits for each backend at most `timeout`.
    pub fn new(timeout: Duration) -> Self {
        Self {
            backends: Vec::new(),
            timeout,
        }
    }

    /// Adds a backend; the report lists backends in this order.
    pub fn register(&mut self, name: impl Into<String>, source: impl HealthSource + 'static) {
        self.backends.push((name.into(), Arc::new(source)));
    }

    /// Every backend's health, in registration order. Within about the
    /// timeout whatever the backends do: one that has not answered by then
    /// is given up on (its thread finishes on its own).
    pub fn health(&self) -> Vec<BackendHealth> {
        let started = Instant::now();
        let (tx, rx) = mpsc::channel();
        for (i, (_, source)) in self.backends.iter().enumerate() {
            let (tx, source, timeout) = (tx.clone(), Arc::clone(source), self.timeout);
            std::thread::spawn(move || {
                let result = one_line(source.snapshot(timeout));
                let _ = tx.send((i, result, started.elapsed()));
            });
        }
        drop(tx);
        let mut results: Vec<Option<(Result<Snapshot, String>, Duration)>> = vec![None; self.backends.len()];
        // The sources give up at the timeout; slack for the last bytes of an
        // answer and for a busy machine's scheduling.
        let deadline = started + self.timeout + Duration::from_secs(2);
        while results.iter().any(Option::is_none) {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok((i, result, took)) => results[i] = Some((result, took)),
                Err(_) => break,
            }
        }
        self.backends
            .iter()
            .zip(results)
            .map(|((registered, _), result)| {
                let (result, took) = result.unwrap_or_else(|| {
                    let why = format!("no answer within {}s", self.timeout.as_secs_f64());
                    (Err(why), started.elapsed())
                });
                BackendHealth {
                    registered: registered.clone(),
                    result,
                    took,
                }
            })
            .collect()
    }

    /// The text report of [`Self::health`].
    pub fn report(&self) -> String {
        render_report(&self.health())
    }
}

/// What a backend said, as it may be printed: its name, process ids and
/// error each on one line without control characters, so that no backend
/// can forge another's section or the totals.
fn one_line(result: Result<Snapshot, String>) -> Result<Snapshot, String> {
    let Snapshot { name, health } = result.map_err(|why| crate::cli::one_line(&why))?;
    let processes = health
        .processes
        .into_iter()
        .map(|(id, p)| (crate::cli::one_line(id.as_str()).as_str().into(), p))
        .collect();
    Ok(Snapshot {
        name: name.as_deref().map(crate::cli::one_line),
        health: Health { processes, ..health },
    })
}

/// The summed counts of the backends that answered (saturating: a host may
/// say anything).
fn totals(backends: &[BackendHealth]) -> Health {
    let mut totals = Health::default();
    for h in backends
        .iter()
        .filter_map(|b| b.result.as_ref().ok())
        .map(|s| &s.health)
    {
        totals.total_processes = totals.total_processes.saturating_add(h.total_processes);
        totals.running_processes = totals.running_processes.saturating_add(h.running_processes);
        totals.terminating_processes = totals.terminating_processes.saturating_add(h.terminating_processes);
        totals.failed_processes = totals.failed_processes.saturating_add(h.failed_processes);
        totals.work_queue_depth = totals.work_queue_depth.saturating_add(h.work_queue_depth);
    }
    totals
}

/// The memo's report over several backends: a section per backend (an
/// unreachable one says why), then the totals of those that answered.
pub fn render_report(backends: &[BackendHealth]) -> String {
    let mut out = String::from(REPORT_HEADER);
    let names = section_names(backends);
    for (backend, name) in backends.iter().zip(&names) {
        match &backend.result {
            Ok(snapshot) => backend_section(&mut out, name, &snapshot.health),
            Err(why) => {
                let _ = write!(out, "\nBackend: {name}\n  Unreachable: {why}\n");
            }
        }
    }
    let totals = totals(backends);
    let down = backends.iter().filter(|b| b.result.is_err()).count();
    let _ = write!(
        out,
        "\nTotals: {} backends, {} reachable, {down} unreachable\n  Total Processes: {}\n  Running: {}\n  \
         Terminating: {}\n  Failed: {}\n  Work Queue Depth: {}\n",
        backends.len(),
        backends.len() - down,
        totals.total_processes,
        totals.running_processes,
        totals.terminating_processes,
        totals.failed_processes,
        totals.work_queue_depth
    );
    out
}

/// The same report as JSON: each backend with its health (`GET /v1/health`'s
/// shape) or its error, and the totals.
pub fn render_json(backends: &[BackendHealth]) -> serde_json::Value {
    let names = section_names(backends);
    let entries: Vec<serde_json::Value> = backends
        .iter()
        .zip(&names)
        .map(|(backend, name)| {
            let (health, error) = match &backend.result {
                Ok(snapshot) => (health_json(&snapshot.health), serde_json::Value::Null),
                Err(why) => (serde_json::Value::Null, why.as_str().into()),
            };
            serde_json::json!({
                "name": name,
                "registered": backend.registered,
                "reachable": backend.result.is_ok(),
                "error": error,
                "took_ms": backend.took.as_millis() as u64,
                "health": health,
            })
        })
        .collect();
    let totals = totals(backends);
    let down = backends.iter().filter(|b| b.result.is_err()).count();
    serde_json::json!({
        "backends": entries,
        "totals": {
            "backends": backends.len(),
            "reachable": backends.len() - down,
            "unreachable": down,
            "total_processes": totals.total_processes,
            "running_processes": totals.running_processes,
            "terminating_processes": totals.terminating_processes,
            "failed_processes": totals.failed_processes,
            "work_queue_depth": totals.work_queue_depth,
        },
    })
}

/// Each backend's section title: its name, with the registered name added
/// where two backends would otherwise share one (hosts left at the default
/// `server.name`).
fn section_names(backends: &[BackendHealth]) -> Vec<String> {
    backends
        .iter()
        .map(|b| {
            let shared = backends.iter().filter(|other| other.name() == b.name()).count() > 1;
            if shared && b.name() != b.registered {
                format!("{} ({})", b.name(), b.registered)
            } else {
                b.name().to_owned()
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A source that answers what it was given, after `delay`.
    struct Canned {
        answer: Result<Snapshot, String>,
        delay: Duration,
    }

    impl HealthSource for Canned {
        fn snapshot(&self, _timeout: Duration) -> Result<Snapshot, String> {
            std::thread::sleep(self.delay);
            self.answer.clone()
        }
    }

    fn healthy(name: Option<&str>, processes: usize) -> Result<Snapshot, String> {
        Ok(Snapshot {
            name: name.map(str::to_owned),
            health: Health {
                total_processes: processes,
                running_processes: processes,
                ..Health::default()
            },
        })
    }

    #[test]
    fn the_report_has_a_section_per_backend_then_the_totals() {
        let mut reporter = HealthReporter::new(Duration::from_secs(5));
        let canned = |answer| Canned {
            answer,
            delay: Duration::ZERO,
        };
        reporter.register("Redis", canned(healthy(None, 2)));
        reporter.register("http://b", canned(healthy(Some("eu"), 1)));
        reporter.register("http://c", canned(Err("connection refused".into())));
        let report = reporter.report();
        let expected = "=== Isolation Health Report ===

Backend: Redis
  Total Processes: 2
  Running: 2
  Terminating: 0
  Failed: 0
  Work Queue Depth: 0

Backend: eu
  Total Processes: 1
  Running: 1
  Terminating: 0
  Failed: 0
  Work Queue Depth: 0

Backend: http://c
  Unreachable: connection refused

Totals: 3 backends, 2 reachable, 1 unreachable
  Total Processes: 3
  Running: 3
  Terminating: 0
  Failed: 0
  Work Queue Depth: 0
";
        assert_eq!(report, expected);
        let json = render_json(&reporter.health());
        assert_eq!(json["totals"]["unreachable"], 1);
        assert_eq!(json["backends"][1]["name"], "eu");
        assert_eq!(json["backends"][2]["error"], "connection refused");
        assert_eq!(json["backends"][0]["health"]["total_processes"], 2);
    }

    #[test]
    fn a_slow_backend_is_given_up_on_at_the_timeout() {
        let mut reporter = HealthReporter::new(Duration::from_millis(200));
        reporter.register(
            "slow",
            Canned {
                answer: healthy(None, 1),
                delay: Duration::from_secs(10),
            },
        );
        reporter.register(
            "quick",
            Canned {
                answer: healthy(None, 1),
                delay: Duration::ZERO,
            },
        );
        let started = Instant::now();
        let health = reporter.health();
        assert!(started.elapsed() < Duration::from_secs(10), "{:?}", started.elapsed());
        assert!(
            health[0]
                .result
                .as_ref()
                .is_err_and(|why| why.contains("no answer within 0.2s"))
        );
        assert!(health[1].result.is_ok());
    }

    #[test]
    fn a_hostile_backend_cannot_forge_sections_or_overflow_the_totals() {
        let mut forged = Health {
            total_processes: usize::MAX,
            ..Health::default()
        };
        let fake = crate::procmgr::ProcessHealth {
            state: crate::procmgr::ProcessState::Syncing,
            healthy: true,
            uptime: Duration::ZERO,
            last_sync: None,
            error_count: 0,
            restart_count: 0,
        };
        forged.processes.insert("x:\n\nBackend: victim\n".into(), fake);
        let mut reporter = HealthReporter::new(Duration::from_secs(5));
        let canned = |answer| Canned {
            answer,
            delay: Duration::ZERO,
        };
        reporter.register(
            "http://evil",
            canned(Ok(Snapshot {
                name: Some("evil\n\nBackend: victim\x1b[2J".into()),
                health: forged,
            })),
        );
        reporter.register("http://other", canned(healthy(None, 1)));
        reporter.register("http://down", canned(Err("refused\nBackend: fake".into())));
        let report = reporter.report();
        assert!(!report.contains("\nBackend: victim"), "{report}");
        assert!(!report.contains("\nBackend: fake"), "{report}");
        assert!(!report.contains('\x1b'), "{report}");
        assert!(report.contains("\nBackend: evil Backend: victim [2J\n"), "{report}");
        assert!(
            report.contains(&format!(
                "\nTotals: 3 backends, 2 reachable, 1 unreachable\n  Total Processes: {}\n",
                usize::MAX
            )),
            "{report}"
        );
    }

    #[test]
    fn hosts_sharing_a_name_are_told_apart_by_their_registered_names() {
        let backend = |registered: &str| BackendHealth {
            registered: registered.into(),
            result: healthy(Some("bulkhead"), 0),
            took: Duration::ZERO,
        };
        let names = section_names(&[backend("http://a"), backend("http://b")]);
        assert_eq!(names, ["bulkhead (http://a)", "bulkhead (http://b)"]);
    }
}
