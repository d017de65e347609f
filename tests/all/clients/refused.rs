//! A request refused before its body is read is still answered readably:
//! common clients that send the whole body before reading (Python's
//! `urllib` and `requests`, `ureq`) get the error, not a broken pipe.

use std::io::Write;
use std::process::{Command, Stdio};

use super::HttpNeighbour;
use crate::service::auth::auth_config;
use crate::service::{Server, scratch, try_request};

/// 4 MB: a plugin-sized body, larger than the socket buffers.
const BODY: usize = 4_000_000;

struct Case {
    what: &'static str,
    method: &'static str,
    path: &'static str,
    token: Option<&'static str>,
    status: u16,
    kind: &'static str,
}

const CASES: &[Case] = &[
    Case {
        what: "upload without a token",
        method: "PUT",
        path: "/v1/plugins/big",
        token: None,
        status: 401,
        kind: "unauthorized",
    },
    Case {
        what: "upload with a tenant token",
        method: "PUT",
        path: "/v1/plugins/big",
        token: Some("a-secret"),
        status: 403,
        kind: "forbidden",
    },
    Case {
        what: "upload over server.max_plugin_size",
        method: "PUT",
        path: "/v1/plugins/big",
        token: Some("admin-secret"),
        status: 400,
        kind: "invalid_plugin",
    },
    Case {
        what: "invoke with a wrong token",
        method: "POST",
        path: "/v1/invoke/echo",
        token: Some("wrong"),
        status: 401,
        kind: "unauthorized",
    },
    Case {
        what: "invoke in another tenant's namespace",
        method: "POST",
        path: "/v1/invoke/echo",
        token: Some("b-secret"),
        status: 403,
        kind: "forbidden",
    },
    Case {
        what: "invoke over server.max_payload",
        method: "POST",
        path: "/v1/invoke/echo",
        token: Some("a-secret"),
        status: 413,
        kind: "payload_too_large",
    },
];

/// Sends every case with `urllib` and `requests`, printing one line per
/// case and client: `STATUS KIND` or `ERROR text`.
const SCRIPT: &str = r#"
import json, sys, urllib.request, urllib.error
import requests
url = sys.argv[1]
cases = json.load(sys.stdin)
body = b"\0" * int(sys.argv[2])
for case in cases:
    headers = {"x-bulkhead-namespace": "tenant-a", "content-type": "application/octet-stream"}
    if case["token"]:
        headers["authorization"] = "Bearer " + case["token"]
    try:
        r = urllib.request.Request(url + case["path"], data=body, method=case["method"], headers=headers)
        try:
            with urllib.request.urlopen(r, timeout=60) as answer:
                print("urllib", answer.status, "-")
        except urllib.error.HTTPError as e:
            print("urllib", e.code, json.loads(e.read())["error"]["kind"])
    except Exception as e:
        print("urllib ERROR", repr(e))
    try:
        answer = requests.request(case["method"], url + case["path"], data=body, headers=headers, timeout=60)
        print("requests", answer.status_code, answer.json()["error"]["kind"])
    except Exception as e:
        print("requests ERROR", repr(e))
    sys.stdout.flush()
"#;

#[test]
fn refused_requests_are_read_by_urllib_requests_and_ureq() {
    let test = "refused_requests_are_read_by_urllib_requests_and_ureq";
    let Some(python) = crate::tools::python(test) else {
        return;
    };
    let dir = scratch();
    let server = Server::start(
        &auth_config(dir.path()),
        &[("BULKHEAD_SERVER__MAX_PLUGIN_SIZE", "3MiB")],
    );
    let neighbour = HttpNeighbour::start(&server, "tenant-b", &[("authorization", "Bearer b-secret")]);
    let body = vec![0u8; BODY];

    // ureq.
    for case in CASES {
        let auth = case.token.map(|t| format!("Bearer {t}"));
        let mut headers = vec![("x-bulkhead-namespace", "tenant-a")];
        if let Some(auth) = &auth {
            headers.push(("authorization", auth.as_str()));
        }
        let reply = try_request(case.method, &format!("{}{}", server.url, case.path), &headers, &body)
            .unwrap_or_else(|e| panic!("ureq, {}: no answer: {e}", case.what));
        assert_eq!(reply.status, case.status, "ureq, {}: {}", case.what, reply.text());
        assert_eq!(reply.json()["error"]["kind"], case.kind, "ureq, {}", case.what);
    }

    // urllib and requests.
    let cases: Vec<_> = CASES
        .iter()
        .map(|c| serde_json::json!({"method": c.method, "path": c.path, "token": c.token}))
        .collect();
    let mut child = Command::new(&python)
        .args(["-c", SCRIPT, &server.url, &BODY.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(serde_json::to_string(&cases).unwrap().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), CASES.len() * 2, "{stdout}");
    for (case, answers) in CASES.iter().zip(lines.chunks(2)) {
        for (client, line) in ["urllib", "requests"].iter().zip(answers) {
            assert_eq!(
                *line,
                format!("{client} {} {}", case.status, case.kind),
                "{client}, {}",
                case.what
            );
        }
    }
    eprintln!(
        "{} refused requests of {BODY} bytes read by ureq, urllib and requests",
        CASES.len()
    );
    neighbour.assert_untouched("refused uploads and invokes");
}
