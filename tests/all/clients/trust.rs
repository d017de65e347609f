//! Whom the host trusts: with auth off only clients that name it by its
//! loopback address (no DNS rebinding); with auth on, `/metrics` needs the
//! admin or the metrics token, and a tenant sees only its own plugins.

use std::time::{Duration, Instant};

use bulkhead::ErrorKind;
use bulkhead::config::TokenHash;

use super::{HttpNeighbour, address, read_until_closed, stalled};
use crate::service::{Server, config, scratch};

/// Sends `GET path` with this `Host` on a raw connection; the answer.
fn with_host(server: &Server, path: &str, host: &str, token: Option<&str>) -> String {
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let request = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\n{auth}Connection: close\r\n\r\n");
    let mut stream = stalled(&address(server), request.as_bytes());
    let (answer, _) = read_until_closed(&mut stream, Duration::from_secs(30));
    String::from_utf8_lossy(&answer).into_owned()
}

#[test]
fn with_auth_off_only_the_loopback_host_is_served() {
    let dir = scratch();
    let server = Server::start(&config(dir.path(), ""), &[]);
    let neighbour = HttpNeighbour::start(&server, "tenant-b", &[]);
    let port = address(&server).rsplit(':').next().unwrap().to_owned();
    for evil in ["evil.example", &format!("evil.example:{port}"), "127.0.0.1:1"] {
        for path in ["/v1/plugins", "/metrics", "/healthz"] {
            let answer = with_host(&server, path, evil, None);
            assert!(answer.starts_with("HTTP/1.1 403"), "{evil} {path}: {answer}");
            assert!(answer.contains(r#""kind":"forbidden""#), "{answer}");
            assert!(answer.contains("DNS rebinding"), "{answer}");
        }
    }
    for good in [address(&server), format!("localhost:{port}"), format!("[::1]:{port}")] {
        let answer = with_host(&server, "/v1/plugins", &good, None);
        assert!(answer.starts_with("HTTP/1.1 200"), "{good}: {answer}");
    }
    neighbour.assert_untouched("requests with a foreign Host");
}

const METRICS_TOKEN: &str = "scraper-secret";

fn trust_config(dir: &std::path::Path) -> String {
    let extra = format!(
        "[auth]\nadmin_token_sha256 = \"{}\"\nmetrics_token_sha256 = \"{}\"\n\n\
         [tenants.tenant-a]\ntoken_sha256 = \"{}\"\nplugins = [\"echo\", \"counter\"]\n\n\
         [tenants.tenant-b]\ntoken_sha256 = \"{}\"\n",
        TokenHash::of("admin-secret"),
        TokenHash::of(METRICS_TOKEN),
        TokenHash::of("a-secret"),
        TokenHash::of("b-secret"),
    );
    config(dir, &extra)
}

#[test]
fn with_auth_on_metrics_need_a_token_and_tenants_see_their_own_plugins() {
    let dir = scratch();
    let server = Server::start(&trust_config(dir.path()), &[]);
    let neighbour = HttpNeighbour::start(&server, "tenant-b", &[("authorization", "Bearer b-secret")]);
    let bearer = |t: &str| format!("Bearer {t}");
    let metrics = |token: Option<&str>| {
        let auth = token.map(bearer);
        let headers: Vec<(&str, &str)> = auth.iter().map(|a| ("authorization", a.as_str())).collect();
        server.call("GET", "/metrics", &headers, b"")
    };
    metrics(None).assert_error(ErrorKind::Unauthorized);
    metrics(Some("a-secret")).assert_error(ErrorKind::Forbidden);
    for token in ["admin-secret", METRICS_TOKEN] {
        let reply = metrics(Some(token));
        assert_eq!(reply.status, 200, "{}", reply.text());
        assert!(reply.text().contains("bulkhead_http_connections"));
    }
    // The metrics token reads nothing else.
    let scraper = bearer(METRICS_TOKEN);
    server
        .call("GET", "/v1/health", &[("authorization", &scraper)], b"")
        .assert_error(ErrorKind::Forbidden);
    let listed = server.call("GET", "/v1/plugins", &[("authorization", &scraper)], b"");
    assert_eq!(listed.json(), serde_json::json!([]));
    // With a token, any Host is served (the token is the check).
    let answer = with_host(&server, "/v1/plugins", "evil.example", Some("admin-secret"));
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let answer = with_host(&server, "/v1/plugins", "evil.example", None);
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
    // A tenant lists only what it may call; the admin lists everything.
    let names = |token: &str| {
        let reply = server.call("GET", "/v1/plugins", &[("authorization", &bearer(token))], b"");
        let mut names: Vec<String> = reply
            .json()
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["name"].as_str().unwrap().to_owned())
            .collect();
        names.sort();
        names
    };
    assert_eq!(names("a-secret"), ["counter", "echo"]);
    let all = names("admin-secret");
    assert!(all.len() > 2 && all.contains(&"spin".to_owned()), "{all:?}");
    assert_eq!(names("b-secret"), all, "tenant-b may call every plugin");
    neighbour.assert_untouched("token checks");
}

#[test]
fn a_real_prometheus_scrapes_with_the_metrics_token() {
    let test = "a_real_prometheus_scrapes_with_the_metrics_token";
    let Some(prometheus) = crate::tools::prometheus(test) else {
        return;
    };
    let dir = scratch();
    let server = Server::start(&trust_config(dir.path()), &[]);
    let work = dir.path().join("prometheus");
    std::fs::create_dir_all(&work).unwrap();
    std::fs::write(work.join("token"), METRICS_TOKEN).unwrap();
    let target = address(&server);
    let config = format!(
        r#"global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: bulkhead
    authorization:
      type: Bearer
      credentials_file: {token}
    static_configs:
      - targets: ["{target}"]
  - job_name: tokenless
    static_configs:
      - targets: ["{target}"]
"#,
        token = work.join("token").display()
    );
    std::fs::write(work.join("prometheus.yml"), config).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let log = std::fs::File::create(work.join("log")).unwrap();
    let _prometheus = crate::tools::Reaped(
        std::process::Command::new(&prometheus)
            .arg(format!("--config.file={}", work.join("prometheus.yml").display()))
            .arg(format!("--storage.tsdb.path={}", work.join("data").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap(),
    );
    // Both jobs have been scraped: one up, one refused (bounded wait).
    let api = format!("http://127.0.0.1:{port}/api/v1/targets");
    let started = Instant::now();
    let targets = loop {
        if let Ok(reply) = crate::service::try_request("GET", &api, &[], b"")
            && reply.status == 200
        {
            let json = reply.json();
            let active = json["data"]["activeTargets"].as_array().cloned().unwrap_or_default();
            let scraped = active.len() == 2 && active.iter().all(|t| t["health"] != "unknown");
            if scraped {
                break active;
            }
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "prometheus scraped nothing in 60 s:\n{}",
            std::fs::read_to_string(work.join("log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let job = |name: &str| targets.iter().find(|t| t["labels"]["job"] == name).unwrap().clone();
    assert_eq!(job("bulkhead")["health"], "up", "{:?}", job("bulkhead"));
    let refused = job("tokenless");
    assert_eq!(refused["health"], "down", "{refused:?}");
    assert!(
        refused["lastError"].as_str().unwrap_or("").contains("401"),
        "{refused:?}"
    );
    eprintln!(
        "prometheus: bulkhead up with the token; without it: {}",
        refused["lastError"]
    );

    // A process terminated (and purged) right away is still seen by the
    // next scrape: its series outlive it by procmgr.series_retention.
    let admin = [("authorization", "Bearer admin-secret")];
    let mut call = admin.to_vec();
    call.push(("x-bulkhead-namespace", "reaped"));
    assert_eq!(server.call("POST", "/v1/invoke/echo", &call, b"x").status, 200);
    let reaped = server.call("DELETE", "/v1/processes/ns:reaped?grace=1", &admin, b"");
    assert_eq!(reaped.status, 200, "{}", reaped.text());
    let query = format!(
        "http://127.0.0.1:{port}/api/v1/query?query=\
         procmgr_process_termination_duration_seconds_count%7Bprocess_id%3D%22ns%3Areaped%22%7D"
    );
    let started = Instant::now();
    let seen = loop {
        if let Ok(reply) = crate::service::try_request("GET", &query, &[], b"")
            && let Some(sample) = reply.json()["data"]["result"]
                .as_array()
                .and_then(|r| r.first().cloned())
        {
            break sample;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "prometheus never saw the termination"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(seen["value"][1], "1", "{seen}");
    eprintln!(
        "prometheus saw the termination of a purged process {:?} after it",
        started.elapsed()
    );
}
