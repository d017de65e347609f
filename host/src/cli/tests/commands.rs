//! Each command sends the contract's request and renders a success as promised.

use std::io::Write as _;

use super::args_for;
use super::fake_server::{Canned, FakeServer};
use crate::cli::{DeployCommand, HealthCommand, InvokeCommand, ProcessesCommand, TerminateCommand};

fn invoke(server: &FakeServer) -> InvokeCommand {
    InvokeCommand {
        plugin: "echo".to_owned(),
        namespace: "tenant-a".to_owned(),
        session: None,
        data: None,
        file: None,
        client: args_for(server),
    }
}

#[test]
fn invoke_posts_the_data_with_the_namespace_and_session_headers() {
    let server = FakeServer::start(vec![Canned::new(200, "hello")]);
    let mut cmd = invoke(&server);
    cmd.session = Some("s-1".to_owned());
    cmd.data = Some("hello".to_owned());
    let mut out = Vec::new();
    cmd.execute_to(&mut out).expect("invoke succeeds");

    let request = server.only_request();
    assert_eq!(request.method, "POST");
    assert_eq!(request.target, "/v1/invoke/echo");
    assert_eq!(request.header("x-bulkhead-namespace"), Some("tenant-a"));
    assert_eq!(request.header("x-bulkhead-session"), Some("s-1"));
    assert_eq!(request.header("authorization"), None);
    assert_eq!(request.body, b"hello");
}

#[test]
fn invoke_without_session_or_payload_sends_no_session_header_and_an_empty_body() {
    let server = FakeServer::start(vec![Canned::new(200, "")]);
    let mut out = Vec::new();
    invoke(&server).execute_to(&mut out).expect("invoke succeeds");

    let request = server.only_request();
    assert_eq!(request.header("x-bulkhead-session"), None);
    assert!(request.body.is_empty());
    assert!(out.is_empty());
}

#[test]
fn invoke_sends_the_token_as_a_bearer_authorization() {
    let server = FakeServer::start(vec![Canned::new(200, "ok")]);
    let mut cmd = invoke(&server);
    cmd.client.token = Some("s3cret".to_owned());
    cmd.execute_to(&mut Vec::new()).expect("invoke succeeds");

    assert_eq!(server.only_request().header("authorization"), Some("Bearer s3cret"));
}

#[test]
fn invoke_sends_the_file_bytes_and_writes_the_output_bytes_unchanged() {
    let server = FakeServer::start(vec![Canned::new(200, b"\x00\xffno newline".to_vec())]);
    let mut file = tempfile::NamedTempFile::new().expect("temp file");
    file.write_all(b"\x01\x02binary\n").expect("write payload");
    let mut cmd = invoke(&server);
    cmd.file = Some(file.path().to_owned());
    let mut out = Vec::new();
    cmd.execute_to(&mut out).expect("invoke succeeds");

    assert_eq!(server.only_request().body, b"\x01\x02binary\n");
    assert_eq!(out, b"\x00\xffno newline");
}

#[test]
fn invoke_encodes_the_plugin_name_in_the_path() {
    let server = FakeServer::start(vec![Canned::new(200, "")]);
    let mut cmd = invoke(&server);
    cmd.plugin = "a b/c".to_owned();
    cmd.execute_to(&mut Vec::new()).expect("invoke succeeds");

    assert_eq!(server.only_request().target, "/v1/invoke/a%20b%2Fc");
}

#[test]
fn deploy_puts_the_wasm_bytes_and_prints_the_summary() {
    let answer = r#"{"name":"echo2","sha256":"ab12","size":4,"compile_ms":37}"#;
    let server = FakeServer::start(vec![Canned::new(201, answer)]);
    let mut file = tempfile::NamedTempFile::new().expect("temp file");
    file.write_all(b"\0asm").expect("write wasm");
    let cmd = DeployCommand {
        file: file.path().to_owned(),
        name: "echo2".to_owned(),
        client: args_for(&server),
    };
    let mut out = Vec::new();
    cmd.execute_to(&mut out).expect("deploy succeeds");

    let request = server.only_request();
    assert_eq!(request.method, "PUT");
    assert_eq!(request.target, "/v1/plugins/echo2");
    assert_eq!(request.header("content-type"), Some("application/wasm"));
    assert_eq!(request.body, b"\0asm");
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "deployed echo2 (4 bytes, sha256 ab12, compiled in 37 ms)\n"
    );
}

#[test]
fn deploy_reports_an_answer_that_is_not_the_contracts_json() {
    let server = FakeServer::start(vec![Canned::new(201, "done")]);
    let file = tempfile::NamedTempFile::new().expect("temp file");
    let cmd = DeployCommand {
        file: file.path().to_owned(),
        name: "x".to_owned(),
        client: args_for(&server),
    };
    let err = cmd.execute_to(&mut Vec::new()).expect_err("a bad answer fails");

    assert_eq!(err.exit_code(), 1);
    assert!(
        err.to_string()
            .starts_with("unexpected answer from bulkhead at http://127.0.0.1:"),
        "{err}"
    );
}

#[test]
fn terminate_deletes_the_url_encoded_process_id_with_its_grace() {
    let server = FakeServer::start(vec![Canned::new(200, "")]);
    let cmd = TerminateCommand {
        process_id: "session:abc".to_owned(),
        grace: Some(5),
        client: args_for(&server),
    };
    let mut out = Vec::new();
    cmd.execute_to(&mut out).expect("terminate succeeds");

    let request = server.only_request();
    assert_eq!(request.method, "DELETE");
    assert_eq!(request.target, "/v1/processes/session%3Aabc?grace=5");
    assert_eq!(String::from_utf8(out).unwrap(), "terminated session:abc\n");
}

#[test]
fn terminate_without_grace_leaves_it_to_the_host() {
    let server = FakeServer::start(vec![Canned::new(200, "")]);
    let cmd = TerminateCommand {
        process_id: "ns:tenant-a".to_owned(),
        grace: None,
        client: args_for(&server),
    };
    cmd.execute_to(&mut Vec::new()).expect("terminate succeeds");

    assert_eq!(server.only_request().target, "/v1/processes/ns%3Atenant-a");
}

#[test]
fn health_prints_the_text_report_as_is() {
    let report = "=== Isolation Health Report ===\n\nBackend: bulkhead\n  Total Processes: 0\n";
    let server = FakeServer::start(vec![Canned::new(200, report)]);
    let mut out = Vec::new();
    let args = args_for(&server);
    HealthCommand {
        json: false,
        url: vec![args.url],
        token: args.token,
        timeout: args.timeout,
    }
    .execute_to(&mut out)
    .expect("health succeeds");

    let request = server.only_request();
    assert_eq!(
        (request.method.as_str(), request.target.as_str()),
        ("GET", "/v1/health/report")
    );
    assert_eq!(String::from_utf8(out).unwrap(), report);
}

#[test]
fn health_json_prints_the_json_of_v1_health() {
    let json = r#"{"total_processes":0,"processes":{}}"#;
    let server = FakeServer::start(vec![Canned::new(200, json)]);
    let mut out = Vec::new();
    let args = args_for(&server);
    HealthCommand {
        json: true,
        url: vec![args.url],
        token: args.token,
        timeout: args.timeout,
    }
    .execute_to(&mut out)
    .expect("health succeeds");

    assert_eq!(server.only_request().target, "/v1/health");
    assert_eq!(String::from_utf8(out).unwrap(), format!("{json}\n"));
}

#[test]
fn processes_json_prints_the_list_as_received() {
    let json = r#"[{"id":"ns:a"}]"#;
    let server = FakeServer::start(vec![Canned::new(200, json)]);
    let mut out = Vec::new();
    ProcessesCommand {
        json: true,
        client: args_for(&server),
    }
    .execute_to(&mut out)
    .expect("processes succeeds");

    let request = server.only_request();
    assert_eq!(
        (request.method.as_str(), request.target.as_str()),
        ("GET", "/v1/processes")
    );
    assert_eq!(String::from_utf8(out).unwrap(), format!("{json}\n"));
}

#[test]
fn a_base_url_with_a_trailing_slash_gives_the_same_paths() {
    let server = FakeServer::start(vec![Canned::new(200, "[]")]);
    let mut args = args_for(&server);
    args.url = crate::cli::BaseUrl::parse(&format!("{}/", server.url())).expect("valid URL");
    ProcessesCommand {
        json: true,
        client: args,
    }
    .execute_to(&mut Vec::new())
    .expect("processes succeeds");

    assert_eq!(server.only_request().target, "/v1/processes");
}
