//! The health report: JSON and the memo's text format, byte for byte.

use std::fmt::Write as _;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::procmgr::Health;

/// `5m23s`, `1h2m3s`, `45s`: whole seconds, like the memo's report.
pub(crate) fn format_uptime(d: Duration) -> String {
    let secs = d.as_secs();
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    match (h, m) {
        (0, 0) => format!("{s}s"),
        (0, _) => format!("{m}m{s}s"),
        _ => format!("{h}h{m}m{s}s"),
    }
}

/// `2025-10-15 08:30:00` (UTC).
pub(crate) fn format_time(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (days, rest) = (secs / 86_400, secs % 86_400);
    let (y, mo, d) = civil_from_days(days as i64);
    format!(
        "{y:04}-{mo:02}-{d:02} {:02}:{:02}:{:02}",
        rest / 3600,
        rest / 60 % 60,
        rest % 60
    )
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian
/// (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// The JSON of `GET /v1/health`.
pub(crate) fn health_json(health: &Health) -> serde_json::Value {
    let processes: serde_json::Map<String, serde_json::Value> = health
        .processes
        .iter()
        .map(|(id, p)| {
            let value = serde_json::json!({
                "state": p.state.as_str(),
                "healthy": p.healthy,
                "uptime_seconds": p.uptime.as_secs(),
                "last_sync": p.last_sync.map(format_time),
                "error_count": p.error_count,
                "restart_count": p.restart_count,
            });
            (id.as_str().to_owned(), value)
        })
        .collect();
    serde_json::json!({
        "total_processes": health.total_processes,
        "running_processes": health.running_processes,
        "terminating_processes": health.terminating_processes,
        "failed_processes": health.failed_processes,
        "work_queue_depth": health.work_queue_depth,
        "processes": processes,
    })
}

/// The text report of `GET /v1/health/report` and `bulkhead health`.
pub(crate) fn health_report(backend: &str, health: &Health) -> String {
    let mut out = String::new();
    let _ = write!(
        out,
        "=== Isolation Health Report ===\n\nBackend: {backend}\n  Total Processes: {}\n  Running: {}\n  \
         Terminating: {}\n  Failed: {}\n  Work Queue Depth: {}\n",
        health.total_processes,
        health.running_processes,
        health.terminating_processes,
        health.failed_processes,
        health.work_queue_depth
    );
    for (id, p) in &health.processes {
        let last_sync = p.last_sync.map_or_else(|| "never".to_owned(), format_time);
        let _ = write!(
            out,
            "\n  Process {id}:\n    State: {}\n    Healthy: {}\n    Uptime: {}\n    Last Sync: {last_sync}\n    \
             Errors: {}\n    Restarts: {}\n",
            p.state.as_str(),
            p.healthy,
            format_uptime(p.uptime),
            p.error_count,
            p.restart_count
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::procmgr::{ProcessHealth, ProcessState};

    #[test]
    fn uptimes_read_like_the_memo() {
        assert_eq!(format_uptime(Duration::from_secs(0)), "0s");
        assert_eq!(format_uptime(Duration::from_secs(323)), "5m23s");
        assert_eq!(format_uptime(Duration::from_millis(3_723_900)), "1h2m3s");
    }

    #[test]
    fn times_are_utc_calendar_dates() {
        assert_eq!(format_time(UNIX_EPOCH), "1970-01-01 00:00:00");
        assert_eq!(
            format_time(UNIX_EPOCH + Duration::from_secs(1_760_517_000)),
            "2025-10-15 08:30:00"
        );
        assert_eq!(
            format_time(UNIX_EPOCH + Duration::from_secs(951_782_400)),
            "2000-02-29 00:00:00"
        );
    }

    #[test]
    fn the_report_matches_the_memo_byte_for_byte() {
        let process = |uptime| ProcessHealth {
            state: ProcessState::Syncing,
            healthy: true,
            uptime: Duration::from_secs(uptime),
            last_sync: Some(UNIX_EPOCH + Duration::from_secs(1_760_517_000)),
            error_count: 0,
            restart_count: 0,
        };
        let mut processes = BTreeMap::new();
        processes.insert("ns:tenant-a".into(), process(323));
        processes.insert("ns:tenant-b".into(), process(60));
        let health = Health {
            total_processes: 2,
            running_processes: 2,
            terminating_processes: 0,
            failed_processes: 0,
            work_queue_depth: 0,
            processes,
        };
        let expected = "=== Isolation Health Report ===

Backend: bulkhead
  Total Processes: 2
  Running: 2
  Terminating: 0
  Failed: 0
  Work Queue Depth: 0

  Process ns:tenant-a:
    State: Syncing
    Healthy: true
    Uptime: 5m23s
    Last Sync: 2025-10-15 08:30:00
    Errors: 0
    Restarts: 0

  Process ns:tenant-b:
    State: Syncing
    Healthy: true
    Uptime: 1m0s
    Last Sync: 2025-10-15 08:30:00
    Errors: 0
    Restarts: 0
";
        assert_eq!(health_report("bulkhead", &health), expected);
    }
}
