//! The `http-hello` wasi:http/proxy app in the sandbox: requests and
//! responses both ways, its faults as typed errors, and the world checks.

use std::time::Duration;

use bulkhead::sandbox::{
    CallFailure, CallLimits, GuestFault, HostFailure, HttpRequest, HttpResponse, InstanceMode, World,
};

use super::{Harness, limits, request};

pub(crate) fn http(method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> HttpRequest {
    HttpRequest {
        method: method.into(),
        scheme: "http".into(),
        authority: "localhost".into(),
        path_and_query: path.into(),
        headers: headers
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.as_bytes().to_vec()))
            .collect(),
        body: body.to_vec(),
    }
}

fn header<'a>(response: &'a HttpResponse, name: &str) -> Option<&'a str> {
    response
        .headers
        .iter()
        .find(|(n, _)| n == name)
        .and_then(|(_, v)| std::str::from_utf8(v).ok())
}

async fn serve(h: &Harness, req: HttpRequest, limits: &CallLimits) -> Result<HttpResponse, CallFailure> {
    let app = h.guest("http-hello", InstanceMode::PerRequest);
    let mut call = request("tenant-a", "");
    call.payload = req.encode();
    let out = h.sandbox.call_http_app(&app, call, limits, 1 << 20).await?;
    Ok(HttpResponse::decode(&out.output).expect("a response"))
}

#[tokio::test]
async fn a_get_gets_the_apps_status_headers_and_body() {
    let h = Harness::new();
    let app = h.guest("http-hello", InstanceMode::PerRequest);
    assert_eq!(app.world(), World::HttpProxy);
    let response = serve(
        &h,
        http("GET", "/a/b?c=1", &[("x-echo", "ping")], b""),
        &CallLimits::default(),
    )
    .await
    .unwrap();
    assert_eq!(response.status, 200);
    assert_eq!(response.body, b"hello from rust\n");
    assert_eq!(header(&response, "x-app"), Some("rust"));
    assert_eq!(header(&response, "x-method"), Some("GET"));
    assert_eq!(header(&response, "x-path"), Some("/a/b?c=1"));
    assert_eq!(header(&response, "x-echo"), Some("ping"));
    assert_eq!(header(&response, "content-type"), Some("text/plain"));

    let teapot = serve(&h, http("GET", "/status/418", &[], b""), &CallLimits::default())
        .await
        .unwrap();
    assert_eq!(teapot.status, 418);
    assert_eq!(header(&teapot, "x-echo"), None);
}

#[tokio::test]
async fn a_post_body_goes_to_the_app_and_comes_back() {
    let h = Harness::new();
    let body: Vec<u8> = (0..=255).cycle().take(200_000).collect();
    let response = serve(
        &h,
        http("POST", "/upload", &[("content-type", "application/x-test")], &body),
        &CallLimits::default(),
    )
    .await
    .unwrap();
    assert_eq!(response.status, 201);
    assert_eq!(response.body, body);
    assert_eq!(header(&response, "x-body-length"), Some("200000"));
    assert_eq!(header(&response, "content-type"), Some("application/x-test"));
}

#[tokio::test]
async fn an_apps_faults_are_the_call_limits_errors() {
    let h = Harness::new();
    let spin = serve(
        &h,
        http("GET", "/spin", &[], b""),
        &limits(None, 16 << 20, Duration::from_millis(300)),
    )
    .await;
    assert!(
        matches!(spin, Err(CallFailure::Guest(GuestFault::Timeout { .. }))),
        "{spin:?}"
    );
    let fuel = serve(
        &h,
        http("GET", "/spin", &[], b""),
        &limits(Some(5_000_000), 16 << 20, Duration::from_secs(20)),
    )
    .await;
    assert!(
        matches!(fuel, Err(CallFailure::Guest(GuestFault::Fuel { .. }))),
        "{fuel:?}"
    );
    let bomb = serve(
        &h,
        http("GET", "/bomb", &[], b""),
        &limits(None, 16 << 20, Duration::from_secs(20)),
    )
    .await;
    assert!(
        matches!(bomb, Err(CallFailure::Guest(GuestFault::Memory { .. }))),
        "{bomb:?}"
    );
    // And the next request is served as if nothing happened.
    let fine = serve(&h, http("GET", "/", &[], b""), &CallLimits::default())
        .await
        .unwrap();
    assert_eq!(fine.status, 200);
}

#[tokio::test]
async fn a_call_of_the_other_world_is_refused_as_a_bad_request() {
    let h = Harness::new();
    let app = h.guest("http-hello", InstanceMode::PerRequest);
    let err = h.call(&app, "tenant-a", "x", &CallLimits::default()).await.unwrap_err();
    assert!(
        matches!(err, CallFailure::Host(HostFailure::BadRequest(ref m)) if m.contains("/v1/http/")),
        "{err}"
    );
    assert_eq!(err.kind(), bulkhead::ErrorKind::InvalidRequest);

    let echo = h.guest("echo", InstanceMode::PerRequest);
    assert_eq!(echo.world(), World::Plugin);
    let mut call = request("tenant-a", "");
    call.payload = http("GET", "/", &[], b"").encode();
    let err = h
        .sandbox
        .call_http_app(&echo, call, &CallLimits::default(), 1 << 20)
        .await
        .unwrap_err();
    assert!(matches!(err, CallFailure::Host(HostFailure::BadRequest(_))), "{err}");

    let mut garbage = request("tenant-a", "");
    garbage.payload = vec![0xff; 7];
    let err = h
        .sandbox
        .call_http_app(&app, garbage, &CallLimits::default(), 1 << 20)
        .await
        .unwrap_err();
    assert!(matches!(err, CallFailure::Host(HostFailure::BadRequest(_))), "{err}");
}

#[tokio::test]
async fn an_apps_response_body_over_the_limit_is_its_error() {
    let h = Harness::new();
    let app = h.guest("http-hello", InstanceMode::PerRequest);
    let mut call = request("tenant-a", "");
    call.payload = http("POST", "/", &[], &[7; 64 << 10]).encode();
    let err = h
        .sandbox
        .call_http_app(&app, call, &CallLimits::default(), 1000)
        .await
        .unwrap_err();
    assert!(
        matches!(err, CallFailure::Guest(GuestFault::OutputTooLarge { limit: 1000, .. })),
        "{err}"
    );
}

#[tokio::test]
async fn an_apps_outgoing_request_is_denied_without_an_egress() {
    let h = Harness::new();
    let response = serve(
        &h,
        http("GET", "/fetch/127.0.0.1:9/x", &[], b""),
        &CallLimits::default(),
    )
    .await
    .unwrap();
    assert_eq!(response.status, 502);
    assert!(
        String::from_utf8_lossy(&response.body).contains("HttpRequestDenied"),
        "{response:?}"
    );
}
