//! Components built by the usual toolchains of other languages, unchanged:
//! the Python and JavaScript plugins of `guests/python` and `guests/js`
//! (built by `guests/polyglot.py` with pinned componentize-py, jco and
//! componentize-js), uploaded to a real host while a neighbour calls, then
//! called at levels `namespace` and `session` (and the stateful ones at
//! `none`); and the JavaScript wasi:http app through `/v1/http/...`.

use std::time::Duration;

use bulkhead::ErrorKind;
use serde_json::json;

use super::{Reply, Server, config, request};
use crate::clients::HttpNeighbour;

/// Every guest `polyglot.py` builds (checked against its `--list`), with the
/// world each must report.
const GUESTS: &[(&str, &str)] = &[
    ("python-echo", "bulkhead:plugin"),
    ("python-kv", "bulkhead:plugin"),
    ("js-echo", "bulkhead:plugin"),
    ("js-kv", "bulkhead:plugin"),
    ("js-http-hello", "wasi:http/proxy"),
];

/// The shipped defaults for plugin size and call limits (the test config's
/// are smaller), which the author's guide says these components run within;
/// a compile deadline for a slow shared machine.
const ENV: &[(&str, &str)] = &[
    ("BULKHEAD_SERVER__MAX_PLUGIN_SIZE", "64MiB"),
    ("BULKHEAD_WORKER__COMPILE_TIMEOUT", "10m"),
    ("BULKHEAD_LIMITS__MEMORY", "64MiB"),
    ("BULKHEAD_LIMITS__FUEL", "1000000000"),
    ("BULKHEAD_LIMITS__TIMEOUT", "5s"),
];

/// The guests' own refusals of bad kv requests, by request.
const REFUSALS: &[(&[u8], &str)] = &[
    (b"not json", "payload is not JSON"),
    (b"[1]", "payload must be a JSON object"),
    (br#"{"op":"drop"}"#, "unknown op"),
    (br#"{"op":"incr"}"#, "incr needs a non-empty string key"),
];

/// `PUT /v1/plugins/{name}`, waiting as long as a compile may take here.
fn upload(server: &Server, name: &str, query: &str, bytes: &[u8]) -> Reply {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(600)))
        .build()
        .into();
    let mut response = agent
        .put(&format!("{}/v1/plugins/{name}{query}", server.url))
        .send(bytes)
        .unwrap_or_else(|e| panic!("PUT {name}: {e}"));
    Reply {
        status: response.status().as_u16(),
        headers: response.headers().clone(),
        body: response.body_mut().read_to_vec().unwrap(),
    }
}

/// A call as namespace `ns`, in `session` when given.
fn call(
    server: &Server,
    method: &str,
    path: &str,
    ns: &str,
    session: Option<&str>,
    extra: &[(&str, &str)],
    body: &[u8],
) -> Reply {
    let mut headers = vec![("x-bulkhead-namespace", ns)];
    if let Some(session) = session {
        headers.push(("x-bulkhead-session", session));
    }
    headers.extend_from_slice(extra);
    request(method, &format!("{}{path}", server.url), &headers, body)
}

fn kv(server: &Server, plugin: &str, ns: &str, session: Option<&str>, op: serde_json::Value) -> serde_json::Value {
    let reply = call(
        server,
        "POST",
        &format!("/v1/invoke/{plugin}"),
        ns,
        session,
        &[],
        op.to_string().as_bytes(),
    );
    assert_eq!(reply.status, 200, "{plugin} {op}: {}", reply.text());
    reply.json()
}

#[test]
fn every_polyglot_guest_is_tested_here() {
    let listed = std::process::Command::new("python3")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/../guests/polyglot.py"))
        .arg("--list")
        .output()
        .expect("python3 runs guests/polyglot.py");
    assert!(listed.status.success(), "{listed:?}");
    let listed: Vec<String> = String::from_utf8(listed.stdout)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    let tested: Vec<&str> = GUESTS.iter().map(|(name, _)| *name).collect();
    assert_eq!(listed, tested);
}

#[test]
fn python_and_javascript_components_are_uploaded_beside_a_neighbour_and_run_in_their_compartments() {
    let test = "service::polyglot::python_and_javascript_components_are_uploaded_beside_a_neighbour_and_run_in_their_compartments";
    let names: Vec<&str> = GUESTS.iter().map(|(name, _)| *name).collect();
    let Some(paths) = crate::tools::polyglot(test, &names) else {
        return;
    };
    let dir = super::scratch();
    let tenants =
        "[tenants.sess]\nlevel = \"session\"\n[tenants.none-a]\nlevel = \"none\"\n[tenants.none-b]\nlevel = \"none\"\n";
    let config = config(dir.path(), tenants);
    let server = Server::start_in(dir.path(), &config, ENV);

    // Uploads of large components compile in the host's limited compile
    // child, never in a worker: the neighbour's calls all succeed meanwhile.
    let neighbour = HttpNeighbour::start(&server, "neighbour", &[]);
    for ((name, world), path) in GUESTS.iter().zip(&paths) {
        let bytes = std::fs::read(path).unwrap();
        let query = if name.ends_with("-kv") {
            "?instance=per-process"
        } else {
            ""
        };
        let put = upload(&server, name, query, &bytes);
        assert_eq!(put.status, 201, "{name}: {}", put.text());
        let answer = put.json();
        assert_eq!(answer["size"], bytes.len(), "{answer}");
        assert_eq!(answer["world"], *world, "{answer}");
        eprintln!("{name}: {} bytes compiled in {} ms", bytes.len(), answer["compile_ms"]);
    }
    neighbour.assert_untouched("uploads of five 12-18 MB Python and JavaScript components");
    let listed = server.call("GET", "/v1/plugins", &[], b"").json();
    for (name, world) in GUESTS {
        let entry = listed.as_array().unwrap().iter().find(|p| p["name"] == *name);
        assert_eq!(entry.map(|p| &p["world"]), Some(&json!(world)), "{listed}");
    }

    for (ns, session) in [("tenant-a", None), ("sess", Some("s-1"))] {
        let expected_process = match session {
            Some(session) => format!("session:{session}"),
            None => format!("ns:{ns}"),
        };
        for echo in ["python-echo", "js-echo"] {
            let payload = format!("{echo} in {expected_process}: \u{e9}\u{0} bytes");
            let reply = call(
                &server,
                "POST",
                &format!("/v1/invoke/{echo}"),
                ns,
                session,
                &[],
                payload.as_bytes(),
            );
            assert_eq!(reply.status, 200, "{echo}: {}", reply.text());
            assert_eq!(reply.text(), payload);
            assert_eq!(reply.header("x-bulkhead-process-id"), Some(expected_process.as_str()));
        }
        for plugin in ["python-kv", "js-kv"] {
            // State lives in the compartment's kept (per-process) instance.
            for n in 1..=3 {
                assert_eq!(
                    kv(&server, plugin, ns, session, json!({"op": "incr", "key": "hits"})),
                    json!({"key": "hits", "value": n})
                );
            }
            assert_eq!(
                kv(&server, plugin, ns, session, json!({"op": "get", "key": "other"})),
                json!({"key": "other", "value": 0})
            );
            assert_eq!(
                kv(&server, plugin, ns, session, json!({"op": "whoami"})),
                json!({"namespace": ns, "session": session.unwrap_or("default")})
            );
            // The plugin's own error is the tenant's typed error, and the
            // instance that refused goes on with its state.
            for (bad, says) in REFUSALS {
                let reply = call(&server, "POST", &format!("/v1/invoke/{plugin}"), ns, session, &[], bad);
                let error = reply.assert_error(ErrorKind::GuestError);
                let message = error["error"]["message"].as_str().unwrap();
                assert!(
                    message.starts_with("invalid input: ") && message.contains(says),
                    "{plugin}: {error}"
                );
            }
            assert_eq!(
                kv(&server, plugin, ns, session, json!({"op": "get", "key": "hits"})),
                json!({"key": "hits", "value": 3})
            );
        }
    }
    for plugin in ["python-kv", "js-kv"] {
        // Another session is another compartment: its own counts.
        let incr = json!({"op": "incr", "key": "hits"});
        assert_eq!(
            kv(&server, plugin, "sess", Some("s-2"), incr.clone()),
            json!({"key": "hits", "value": 1})
        );
        // At level none two tenants share one worker and its kept instance;
        // the examples keep their counts per namespace.
        for _ in 0..2 {
            kv(&server, plugin, "none-a", None, incr.clone());
        }
        let get = json!({"op": "get", "key": "hits"});
        assert_eq!(
            kv(&server, plugin, "none-b", None, get.clone()),
            json!({"key": "hits", "value": 0})
        );
        assert_eq!(
            kv(&server, plugin, "none-a", None, get),
            json!({"key": "hits", "value": 2})
        );
    }

    for (ns, session) in [("tenant-a", None), ("sess", Some("s-1"))] {
        let path = "/v1/http/js-http-hello";
        let get = call(
            &server,
            "GET",
            &format!("{path}/a/b?c=1"),
            ns,
            session,
            &[("x-echo", "ping")],
            b"",
        );
        assert_eq!(get.status, 200, "{}", get.text());
        assert_eq!(get.text(), "hello from javascript\n");
        assert_eq!(get.header("x-app"), Some("javascript"));
        assert_eq!(get.header("x-method"), Some("GET"));
        assert_eq!(get.header("x-path"), Some("/a/b?c=1"));
        assert_eq!(get.header("x-echo"), Some("ping"));
        assert_eq!(get.header("content-type"), Some("text/plain"));

        // A body larger than one write of the app's stream, both ways.
        let body: Vec<u8> = (0..20_000u32).map(|i| (i % 251) as u8).collect();
        let headers = [("x-echo", "pong"), ("content-type", "application/octet-stream")];
        let post = call(&server, "POST", &format!("{path}/items"), ns, session, &headers, &body);
        assert_eq!(post.status, 201, "{}", post.text());
        assert_eq!(post.body, body);
        assert_eq!(post.header("x-body-length"), Some("20000"));
        assert_eq!(post.header("x-echo"), Some("pong"));
        assert_eq!(post.header("content-type"), Some("application/octet-stream"));

        let status = call(&server, "GET", &format!("{path}/status/418"), ns, session, &[], b"");
        assert_eq!(status.status, 418);
        assert_eq!(status.text(), "status 418\n");
    }
}

#[test]
fn a_missing_toolchain_is_named_with_its_own_exit_status() {
    // No npm on PATH: polyglot.py cannot install jco, says so, and exits 3
    // (which `tools::polyglot` turns into a failure naming the toolchain, or
    // a printed skip where skipping is allowed).
    let tools = tempfile::tempdir().unwrap();
    // The interpreter itself: `python3` on PATH may be a wrapper script.
    let python = std::process::Command::new("python3")
        .args(["-c", "import sys; print(sys.executable)"])
        .output()
        .expect("python3 on PATH");
    let python = String::from_utf8(python.stdout).unwrap().trim().to_owned();
    let out = std::process::Command::new(python)
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/../guests/polyglot.py"))
        .arg("--tools")
        .arg(tools.path())
        .arg("--out")
        .arg(tools.path().join("out"))
        .arg("js-echo")
        .env("PATH", tools.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains("toolchain unavailable") && stderr.contains("npm is not on PATH"),
        "{stderr}"
    );
    assert!(
        stderr.contains("jco 1.35.0") && stderr.contains("componentize-js 0.23.0"),
        "{stderr}"
    );
    assert!(!tools.path().join("out/js-echo.wasm").exists());
}
