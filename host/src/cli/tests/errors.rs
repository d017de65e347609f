//! Every way a command fails gives one readable line and its exit code.

use std::net::TcpListener;
use std::path::PathBuf;

use super::args_for;
use super::fake_server::{Canned, FakeServer};
use crate::cli::{BaseUrl, CliError, ClientArgs, DeployCommand, InvokeCommand, ServerError, TerminateCommand};

fn invoke_with(client: ClientArgs) -> InvokeCommand {
    InvokeCommand {
        plugin: "echo".to_owned(),
        namespace: "tenant-a".to_owned(),
        session: None,
        data: Some("x".to_owned()),
        file: None,
        client,
    }
}

fn invoke_error(response: Canned) -> CliError {
    let server = FakeServer::start(vec![response]);
    let mut out = Vec::new();
    let err = invoke_with(args_for(&server))
        .execute_to(&mut out)
        .expect_err("the call fails");
    assert!(out.is_empty(), "nothing is written to stdout on an error");
    err
}

#[test]
fn a_json_error_shows_its_kind_message_process_and_retry_after() {
    let body = r#"{"error":{"kind":"bulkhead_full","message":"queue is full","process_id":"ns:tenant-a"}}"#;
    let err = invoke_error(Canned::new(429, body).header("Retry-After", "2"));

    assert_eq!(err.exit_code(), 1);
    assert_eq!(
        err.to_string(),
        "bulkhead_full: queue is full (process ns:tenant-a); retry after 2 s"
    );
    let server_error = err.server_error().expect("a server error");
    assert_eq!(server_error.status, 429);
    assert_eq!(server_error.kind.as_deref(), Some("bulkhead_full"));
}

#[test]
fn a_json_error_without_a_process_shows_kind_and_message_only() {
    let body = r#"{"error":{"kind":"plugin_not_found","message":"no plugin named echo","process_id":null}}"#;
    let err = invoke_error(Canned::new(404, body));

    assert_eq!(err.exit_code(), 1);
    assert_eq!(err.to_string(), "plugin_not_found: no plugin named echo");
}

#[test]
fn a_multi_line_server_message_is_shown_on_one_line() {
    let body = r#"{"error":{"kind":"guest_trap","message":"wasm trap:\n  unreachable\r\n","process_id":null}}"#;
    let err = invoke_error(Canned::new(500, body));

    assert_eq!(err.to_string(), "guest_trap: wasm trap: unreachable");
}

#[test]
fn a_non_json_error_body_shows_the_status_and_the_text() {
    let err = invoke_error(Canned::new(502, "upstream\ndied"));

    assert_eq!(err.exit_code(), 1);
    assert_eq!(err.to_string(), "server answered 502 Bad Gateway: upstream died");
}

#[test]
fn an_empty_error_body_says_so() {
    let err = invoke_error(Canned::new(503, "").header("retry-after", "Wed, 21 Oct 2015 07:28:00 GMT"));

    assert_eq!(
        err.to_string(),
        "server answered 503 Service Unavailable with an empty body; retry after Wed, 21 Oct 2015 07:28:00 GMT"
    );
}

#[test]
fn a_long_non_json_error_body_is_shortened() {
    let err = ServerError::from_parts(500, None, "x".repeat(1000).as_bytes());

    assert_eq!(
        err.to_string(),
        format!("server answered 500 Internal Server Error: {}...", "x".repeat(200))
    );
}

#[test]
fn a_host_that_is_not_running_gives_exit_code_3_and_a_hint() {
    let port = TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("address")
        .port();
    let url = format!("http://127.0.0.1:{port}");
    let args = ClientArgs::new(BaseUrl::parse(&url).expect("valid URL"));
    let err = invoke_with(args)
        .execute_to(&mut Vec::new())
        .expect_err("nothing listens");

    assert_eq!(err.exit_code(), 3);
    let message = err.to_string();
    assert!(
        message.starts_with(&format!("cannot reach bulkhead at {url}: ")),
        "{message}"
    );
    assert!(
        message.contains("bulkhead serve") && message.contains("BULKHEAD_URL"),
        "{message}"
    );
    assert!(!message.contains('\n'), "{message}");
}

#[test]
fn a_host_that_never_answers_times_out_with_exit_code_3() {
    // Connections queue in the backlog but are never accepted, let alone answered.
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("address"));
    let mut args = ClientArgs::new(BaseUrl::parse(&url).expect("valid URL"));
    args.timeout = 1;
    let err = invoke_with(args).execute_to(&mut Vec::new()).expect_err("no answer");

    assert_eq!(err.exit_code(), 3);
    assert_eq!(
        err.to_string(),
        format!("bulkhead at {url} did not answer within 1 s (raise --timeout if the call may run longer)")
    );
}

#[test]
fn a_missing_deploy_file_gives_exit_code_4_before_any_request() {
    let server = FakeServer::start(vec![Canned::new(201, "{}")]);
    let path = PathBuf::from("/nonexistent/plugin.wasm");
    let cmd = DeployCommand {
        file: path,
        name: "p".to_owned(),
        client: args_for(&server),
    };
    let err = cmd.execute_to(&mut Vec::new()).expect_err("no file");

    assert_eq!(err.exit_code(), 4);
    assert!(
        err.to_string().starts_with("cannot read /nonexistent/plugin.wasm: "),
        "{err}"
    );
    assert!(server.requests().is_empty(), "no request was sent");
}

#[test]
fn a_missing_invoke_file_gives_exit_code_4_before_any_request() {
    let server = FakeServer::start(vec![Canned::new(200, "")]);
    let mut cmd = invoke_with(args_for(&server));
    cmd.data = None;
    cmd.file = Some(PathBuf::from("/nonexistent/payload"));
    let err = cmd.execute_to(&mut Vec::new()).expect_err("no file");

    assert_eq!(err.exit_code(), 4);
    assert!(
        err.to_string().starts_with("cannot read /nonexistent/payload: "),
        "{err}"
    );
    assert!(server.requests().is_empty(), "no request was sent");
}

#[test]
fn an_unknown_process_is_reported_with_its_kind() {
    let body = r#"{"error":{"kind":"process_not_found","message":"no process ns:zzz","process_id":"ns:zzz"}}"#;
    let server = FakeServer::start(vec![Canned::new(404, body)]);
    let cmd = TerminateCommand {
        process_id: "ns:zzz".to_owned(),
        grace: None,
        client: args_for(&server),
    };
    let mut out = Vec::new();
    let err = cmd.execute_to(&mut out).expect_err("unknown process");

    assert_eq!(err.to_string(), "process_not_found: no process ns:zzz (process ns:zzz)");
    assert!(out.is_empty());
}
