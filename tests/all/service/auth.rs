//! Tokens: tenants stay in their namespace and out of admin endpoints.

use bulkhead::ErrorKind;
use bulkhead::config::TokenHash;

use super::{BIN, Server, config, scratch};

pub(crate) fn auth_config(dir: &std::path::Path) -> String {
    let extra = format!(
        "[auth]\nadmin_token_sha256 = \"{}\"\n\n[tenants.tenant-a]\ntoken_sha256 = \"{}\"\n\n[tenants.tenant-b]\ntoken_sha256 = \"{}\"\n",
        TokenHash::of("admin-secret"),
        TokenHash::of("a-secret"),
        TokenHash::of("b-secret"),
    );
    config(dir, &extra)
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

#[test]
fn tenant_tokens_are_bound_to_their_namespace() {
    let dir = scratch();
    let server = Server::start(&auth_config(dir.path()), &[]);
    let invoke = |ns: &str, token: Option<&str>| {
        let auth = token.map(bearer);
        let mut headers = vec![("x-bulkhead-namespace", ns)];
        if let Some(auth) = &auth {
            headers.push(("authorization", auth.as_str()));
        }
        server.call("POST", "/v1/invoke/echo", &headers, b"hi")
    };
    assert_eq!(invoke("tenant-a", Some("a-secret")).text(), "hi");
    assert_eq!(invoke("tenant-b", Some("admin-secret")).text(), "hi");
    invoke("tenant-b", Some("a-secret")).assert_error(ErrorKind::Forbidden);
    invoke("tenant-a", None).assert_error(ErrorKind::Unauthorized);
    invoke("tenant-a", Some("wrong")).assert_error(ErrorKind::Unauthorized);
    server
        .call(
            "POST",
            "/v1/invoke/echo",
            &[
                ("x-bulkhead-namespace", "tenant-a"),
                ("authorization", "Basic a-secret"),
            ],
            b"",
        )
        .assert_error(ErrorKind::Unauthorized);

    // Tenant tokens cannot deploy, remove plugins or terminate processes.
    // (Refused before the upload is read: a small body keeps this client
    // from writing into a connection the host has already answered.)
    let a = bearer("a-secret");
    let echo = std::fs::read(crate::sandbox::guest_path("echo")).unwrap();
    server
        .call("PUT", "/v1/plugins/mine", &[("authorization", &a)], b"\0asm")
        .assert_error(ErrorKind::Forbidden);
    server
        .call("DELETE", "/v1/plugins/echo", &[("authorization", &a)], b"")
        .assert_error(ErrorKind::Forbidden);
    server
        .call("DELETE", "/v1/processes/ns:tenant-a", &[("authorization", &a)], b"")
        .assert_error(ErrorKind::Forbidden);
    server
        .call("GET", "/v1/health", &[("authorization", &a)], b"")
        .assert_error(ErrorKind::Forbidden);
    server
        .call("GET", "/v1/plugins", &[], b"")
        .assert_error(ErrorKind::Unauthorized);

    // A tenant sees only its own processes.
    let mine = server
        .call("GET", "/v1/processes", &[("authorization", &a)], b"")
        .json();
    let ids: Vec<&str> = mine
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["ns:tenant-a"]);
    server
        .call("GET", "/v1/processes/ns:tenant-b", &[("authorization", &a)], b"")
        .assert_error(ErrorKind::ProcessNotFound);

    // The admin may do all of it.
    let admin = bearer("admin-secret");
    assert_eq!(
        server
            .call("PUT", "/v1/plugins/mine", &[("authorization", &admin)], &echo)
            .status,
        201
    );
    assert_eq!(
        server
            .call("DELETE", "/v1/processes/ns:tenant-a", &[("authorization", &admin)], b"")
            .status,
        200
    );
    super::assert_caused_here("tenant_tokens_are_bound_to_their_namespace");
}

#[test]
fn listening_beyond_loopback_without_a_token_is_refused_with_advice() {
    let dir = scratch();
    let text = config(dir.path(), "").replace("127.0.0.1:0", "0.0.0.0:0");
    let path = dir.path().join("open.toml");
    std::fs::write(&path, text).unwrap();
    let out = std::process::Command::new(BIN)
        .args(["serve", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("server.listen") && stderr.contains("admin_token_sha256"),
        "{stderr}"
    );
}
