//! `[server.tls]`: HTTPS for curl and Python's `ssl`, with a certificate the
//! test makes; plain HTTP to the TLS port is cut at the handshake.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use super::{address, read_until_closed, stalled};
use crate::service::{BIN, Server, config, scratch};

/// Runs `command`, failing the test with its output if it fails.
fn run(command: &mut Command) -> String {
    let out = command.output().unwrap_or_else(|e| panic!("{command:?}: {e}"));
    assert!(
        out.status.success(),
        "{command:?}: {}\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A CA (`ca.pem`) and a server certificate for 127.0.0.1 and localhost
/// signed by it (`cert.pem`, `key.pem`), made with openssl in `dir`.
fn make_certificates(dir: &Path) {
    let openssl = |args: &[&str]| run(Command::new("openssl").args(args).current_dir(dir));
    let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
    openssl(
        &[
            &["req", "-x509"][..],
            &ec,
            &["-keyout", "ca.key", "-out", "ca.pem", "-days", "2"],
        ]
        .concat()
        .into_iter()
        .chain(["-subj", "/CN=bulkhead test CA"])
        .collect::<Vec<_>>(),
    );
    openssl(
        &[
            &["req"][..],
            &ec,
            &["-keyout", "key.pem", "-out", "server.csr", "-subj", "/CN=localhost"],
        ]
        .concat(),
    );
    std::fs::write(dir.join("san.ext"), "subjectAltName=IP:127.0.0.1,DNS:localhost\n").unwrap();
    openssl(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "cert.pem",
        "-days",
        "2",
        "-extfile",
        "san.ext",
    ]);
}

#[test]
fn with_tls_curl_and_python_are_served_over_https_and_plain_http_is_cut() {
    let dir = scratch();
    let tls = dir.path().join("tls");
    std::fs::create_dir_all(&tls).unwrap();
    make_certificates(&tls);
    let extra = format!(
        "[server.tls]\ncert = \"{}\"\nkey = \"{}\"\n",
        tls.join("cert.pem").display(),
        tls.join("key.pem").display()
    );
    let server = Server::start(&config(dir.path(), &extra), &[]);
    assert!(server.url.starts_with("https://"), "{}", server.url);
    let ca = tls.join("ca.pem");

    // curl, verifying the certificate against the test's CA.
    let curl = |args: &[&str]| {
        run(Command::new("curl")
            .args(["-sS", "--fail-with-body", "--max-time", "30", "--cacert"])
            .arg(&ca)
            .args(args))
    };
    assert_eq!(curl(&[&format!("{}/healthz", server.url)]), "ok\n");
    let echoed = curl(&[
        "-X",
        "POST",
        "-H",
        "x-bulkhead-namespace: tls-tenant",
        "--data-binary",
        "over tls",
        &format!("{}/v1/invoke/echo", server.url),
    ]);
    assert_eq!(echoed, "over tls");

    // Python's ssl, through http.client.
    let port = address(&server).rsplit(':').next().unwrap().to_owned();
    let script = r#"
import http.client, ssl, sys
context = ssl.create_default_context(cafile=sys.argv[1])
connection = http.client.HTTPSConnection("127.0.0.1", int(sys.argv[2]), context=context, timeout=30)
connection.request("POST", "/v1/invoke/echo", body=b"from python", headers={"x-bulkhead-namespace": "tls-tenant"})
answer = connection.getresponse()
print(answer.status, answer.read().decode(), connection.sock.version())
"#;
    let python = run(Command::new("python3").args(["-c", script]).arg(&ca).arg(&port));
    assert!(python.starts_with("200 from python TLSv1."), "{python}");

    // Plain HTTP to the TLS port gets no HTTP answer.
    let mut plain = stalled(
        &address(&server),
        format!("GET /healthz HTTP/1.1\r\nHost: {}\r\n\r\n", address(&server)).as_bytes(),
    );
    let (answer, _) = read_until_closed(&mut plain, Duration::from_secs(30));
    assert!(!answer.starts_with(b"HTTP/"), "{}", String::from_utf8_lossy(&answer));
    let refused = Command::new("curl")
        .args([
            "-sS",
            "--max-time",
            "30",
            &format!("http://{}/healthz", address(&server)),
        ])
        .output()
        .unwrap();
    assert!(!refused.status.success(), "plain HTTP was served");
    eprintln!(
        "HTTPS served to curl and Python ({python:?}); plain HTTP cut: {} bytes back",
        answer.len()
    );
    // Still serving after that.
    assert_eq!(curl(&[&format!("{}/healthz", server.url)]), "ok\n");
}

#[test]
fn a_bad_tls_file_is_a_config_error_naming_the_key() {
    let dir = scratch();
    std::fs::write(dir.path().join("cert.pem"), "not a certificate").unwrap();
    std::fs::write(dir.path().join("key.pem"), "not a key").unwrap();
    let extra = "[server.tls]\ncert = \"cert.pem\"\nkey = \"key.pem\"\n";
    let path = dir.path().join("bulkhead.toml");
    std::fs::write(&path, config(dir.path(), extra)).unwrap();
    let out = Command::new(BIN)
        .args(["config", "check", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("server.tls") && stderr.contains("cert.pem"), "{stderr}");
}
