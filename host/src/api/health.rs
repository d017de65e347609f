//! The health report: JSON and the memo's text format, byte for byte.

use std::fmt::Write as _;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::procmgr::{Health, ProcessHealth, ProcessState};

/// The first lines of every text report.
pub(crate) const REPORT_HEADER: &str = "=== Isolation Health Report ===\n";

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

/// The inverse of [`format_time`]: `2025-10-15 08:30:00` (UTC), years 1970
/// to 9999; a date that does not exist (`2025-02-31`) is none.
pub(crate) fn parse_time(text: &str) -> Option<SystemTime> {
    let (date, time) = text.split_once(' ')?;
    let mut date = date.splitn(3, '-').map(str::parse::<i64>);
    let (y, mo, d) = (date.next()?.ok()?, date.next()?.ok()?, date.next()?.ok()?);
    let mut time = time.splitn(3, ':').map(str::parse::<u64>);
    let (h, mi, s) = (time.next()?.ok()?, time.next()?.ok()?, time.next()?.ok()?);
    if !(1970..=9999).contains(&y) || !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || s > 59 {
        return None;
    }
    let days = u64::try_from(days_from_civil(y, mo as u32, d as u32)).ok()?;
    let time = UNIX_EPOCH + Duration::from_secs(days * 86_400 + h * 3600 + mi * 60 + s);
    (format_time(time) == text).then_some(time)
}

/// (year, month, day), proleptic Gregorian, to days since 1970-01-01 (the
/// inverse of [`civil_from_days`]).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = i64::from(if m > 2 { m - 3 } else { m + 9 });
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
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

/// The inverse of [`health_json`]: a host's `GET /v1/health` read back
/// (fields the contract adds beside these are passed by).
pub(crate) fn health_from_json(json: &serde_json::Value) -> Result<Health, String> {
    let count = |field: &str| {
        json[field]
            .as_u64()
            .map(|n| n as usize)
            .ok_or_else(|| format!("no {field} count"))
    };
    let mut processes = std::collections::BTreeMap::new();
    for (id, p) in json["processes"].as_object().ok_or("no processes object")? {
        let state = p["state"].as_str().unwrap_or_default();
        let state = ProcessState::ALL
            .into_iter()
            .find(|s| s.as_str() == state)
            .ok_or_else(|| format!("process {id}: unknown state {state:?}"))?;
        let number = |field: &str| p[field].as_u64().ok_or_else(|| format!("process {id}: no {field}"));
        let last_sync = match &p["last_sync"] {
            serde_json::Value::Null => None,
            value => Some(
                value
                    .as_str()
                    .and_then(parse_time)
                    .ok_or_else(|| format!("process {id}: last_sync {value} is not a time"))?,
            ),
        };
        let health = ProcessHealth {
            state,
            healthy: p["healthy"]
                .as_bool()
                .ok_or_else(|| format!("process {id}: no healthy"))?,
            uptime: Duration::from_secs(number("uptime_seconds")?),
            last_sync,
            error_count: u32::try_from(number("error_count")?).map_err(|e| e.to_string())?,
            restart_count: u32::try_from(number("restart_count")?).map_err(|e| e.to_string())?,
        };
        processes.insert(id.as_str().into(), health);
    }
    Ok(Health {
        total_processes: count("total_processes")?,
        running_processes: count("running_processes")?,
        terminating_processes: count("terminating_processes")?,
        failed_processes: count("failed_processes")?,
        work_queue_depth: count("work_queue_depth")?,
        processes,
    })
}

/// The text report of `GET /v1/health/report` and `bulkhead health`.
pub(crate) fn health_report(backend: &str, health: &Health) -> String {
    let mut out = String::from(REPORT_HEADER);
    backend_section(&mut out, backend, health);
    out
}

/// One backend's section of a report: its counts and its processes.
pub(crate) fn backend_section(out: &mut String, backend: &str, health: &Health) {
    let _ = write!(
        out,
        "\nBackend: {backend}\n  Total Processes: {}\n  Running: {}\n  \
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
        assert_eq!(health_from_json(&health_json(&health)), Ok(health));
    }

    #[test]
    fn times_parse_back_and_nonsense_does_not() {
        for secs in [0, 951_782_400, 1_760_517_000, 4_102_444_799] {
            let t = UNIX_EPOCH + Duration::from_secs(secs);
            assert_eq!(parse_time(&format_time(t)), Some(t), "{secs}");
        }
        for bad in [
            "",
            "2025-10-15",
            "2025-13-01 00:00:00",
            "2025-10-15 24:00:00",
            "x-y-z a:b:c",
            "2025-02-31 00:00:00",
            "1969-12-31 23:59:59",
            "300000000000-01-01 00:00:00",
            "-9223372036854775808-01-01 00:00:00",
            "2025-1-5 0:0:0",
        ] {
            assert_eq!(parse_time(bad), None, "{bad:?}");
        }
    }
}
