//! The processes table.

use serde_json::{Map, Value};

use super::args_for;
use super::fake_server::{Canned, FakeServer};
use crate::cli::ProcessesCommand;
use crate::cli::processes::{format_uptime, render_table};

const SAMPLE: &str = r#"[
  {"id":"ns:tenant-a","level":"namespace","namespace":"tenant-a","session":null,"state":"Syncing","healthy":true,
   "pid":4242,"uptime_seconds":323,"restarts":0,"errors":0,"in_flight":1,"queued":0},
  {"id":"session:abc","level":"session","namespace":"tenant-b","session":"abc","state":"Starting","healthy":false,
   "pid":null,"uptime_seconds":3725.5,"restarts":12,"errors":3,"in_flight":0,"queued":17}
]"#;

const SAMPLE_TABLE: &str = "\
ID           LEVEL      NAMESPACE  SESSION  STATE     HEALTHY  PID   UPTIME  RESTARTS  ERRORS  IN_FLIGHT  QUEUED
ns:tenant-a  namespace  tenant-a   -        Syncing   true     4242  5m23s   0         0       1          0
session:abc  session    tenant-b   abc      Starting  false    -     1h2m5s  12        3       0          17
";

#[test]
fn the_processes_table_aligns_columns_and_shows_nulls_as_dashes() {
    let server = FakeServer::start(vec![Canned::new(200, SAMPLE)]);
    let mut out = Vec::new();
    ProcessesCommand {
        json: false,
        client: args_for(&server),
    }
    .execute_to(&mut out)
    .expect("processes succeeds");

    assert_eq!(String::from_utf8(out).unwrap(), SAMPLE_TABLE);
}

#[test]
fn an_empty_process_list_prints_the_header_only() {
    assert_eq!(
        render_table(&[]),
        "ID  LEVEL  NAMESPACE  SESSION  STATE  HEALTHY  PID  UPTIME  RESTARTS  ERRORS  IN_FLIGHT  QUEUED\n"
    );
}

#[test]
fn missing_fields_show_as_dashes() {
    let process: Map<String, Value> = serde_json::from_str(r#"{"id":"none"}"#).unwrap();
    let table = render_table(&[process]);

    assert_eq!(
        table.lines().nth(1),
        Some("none  -      -          -        -      -        -    -       -         -       -          -")
    );
}

#[test]
fn a_process_list_that_is_not_an_array_is_a_protocol_error() {
    let server = FakeServer::start(vec![Canned::new(200, r#"{"processes":[]}"#)]);
    let err = ProcessesCommand {
        json: false,
        client: args_for(&server),
    }
    .execute_to(&mut Vec::new())
    .expect_err("not an array");

    assert_eq!(err.exit_code(), 1);
    assert!(err.to_string().contains("not a JSON array of objects"), "{err}");
}

#[test]
fn uptime_is_written_like_the_health_report() {
    assert_eq!(format_uptime(0), "0s");
    assert_eq!(format_uptime(59), "59s");
    assert_eq!(format_uptime(323), "5m23s");
    assert_eq!(format_uptime(3600), "1h0m0s");
    assert_eq!(format_uptime(90061), "25h1m1s");
}
