//! `/v1/http/{plugin}/{path}`: a request for a `wasi:http/proxy` app, any
//! method. The app sees `/{path}` and the query, the method, the headers
//! (less hop-by-hop ones, and less the caller's bulkhead token) and the
//! body; its status, headers and body come back as the response.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};

use super::AppState;
use super::error::ApiError;
use super::invoke::{call_headers, compartment, read_payload, record};
use crate::ErrorKind;
use crate::sandbox::HttpRequest;

/// The prefix of every app route.
const PREFIX: &str = "/v1/http/";

/// The most bytes of request headers passed to an app (names and values):
/// they must fit in the worker's bounded header map.
pub(crate) const MAX_APP_HEADERS: usize = 32 << 10;

/// Headers that describe one connection, not the request: never passed on
/// in either direction.
fn is_hop_by_hop(name: &HeaderName) -> bool {
    matches!(
        name.as_str(),
        "connection"
            | "keep-alive"
            | "proxy-connection"
            | "proxy-authenticate"
            | "proxy-authorization"
            | "te"
            | "trailer"
            | "transfer-encoding"
            | "upgrade"
            | "host"
            | "content-length"
    )
}

/// The plugin and the app's path of a request URI under [`PREFIX`].
fn split(uri: &Uri) -> (&str, String) {
    let rest = uri.path().strip_prefix(PREFIX).unwrap_or_default();
    let (plugin, path) = match rest.find('/') {
        Some(slash) => (&rest[..slash], &rest[slash..]),
        None => (rest, "/"),
    };
    let path = match uri.query() {
        Some(query) => format!("{path}?{query}"),
        None => path.to_owned(),
    };
    (plugin, path)
}

pub(super) async fn serve(
    State(state): State<Arc<AppState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let server = &state.config.server;
    let (namespace, session) = compartment(
        &state,
        &headers,
        &server.app_namespace_header,
        &server.app_session_header,
    )?;
    let (plugin, path_and_query) = split(&uri);
    let plugin = plugin.to_owned();
    let body = read_payload(&state, &headers, body).await?;
    let authority = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| h.parse::<http::uri::Authority>().is_ok())
        .unwrap_or("localhost")
        .to_owned();
    // With auth on, the Authorization header carries the caller's bulkhead
    // token: tenant code never sees it.
    let strip_authorization = state.config.auth_enabled();
    let mut forwarded = Vec::new();
    let mut size = 0;
    for (name, value) in &headers {
        if is_hop_by_hop(name) || (strip_authorization && *name == header::AUTHORIZATION) {
            continue;
        }
        size += name.as_str().len() + value.len();
        forwarded.push((name.as_str().to_owned(), value.as_bytes().to_vec()));
    }
    if size > MAX_APP_HEADERS {
        return Err(ApiError::invalid(format!(
            "the request's headers are {size} bytes, over the {MAX_APP_HEADERS} bytes an app may be given"
        )));
    }
    let request = HttpRequest {
        method: method.to_string(),
        scheme: "http".into(),
        authority,
        path_and_query,
        headers: forwarded,
        body: body.to_vec(),
    };
    let started = std::time::Instant::now();
    let result = state.service.serve_http(namespace, session, &plugin, &request).await;
    record(&state, &plugin, started, result.as_ref().map(|(_, out)| out));
    let (app, out) = result?;
    let status = StatusCode::from_u16(app.status).map_err(|_| {
        ApiError::new(
            ErrorKind::GuestError,
            format!("the app answered with the invalid status {}", app.status),
        )
    })?;
    let mut response = (status, Body::from(app.body)).into_response();
    let h = response.headers_mut();
    for (name, value) in app.headers {
        let (Ok(name), Ok(value)) = (HeaderName::from_bytes(name.as_bytes()), HeaderValue::from_bytes(&value)) else {
            continue;
        };
        if !is_hop_by_hop(&name) && !name.as_str().starts_with("x-bulkhead-") {
            h.append(name, value);
        }
    }
    call_headers(h, &out);
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_app_sees_the_path_after_its_name_and_the_query() {
        let uri = |s: &str| s.parse::<Uri>().unwrap();
        assert_eq!(split(&uri("/v1/http/hello")), ("hello", "/".to_owned()));
        assert_eq!(split(&uri("/v1/http/hello/")), ("hello", "/".to_owned()));
        assert_eq!(split(&uri("/v1/http/hello/a/b?c=1")), ("hello", "/a/b?c=1".to_owned()));
        assert_eq!(split(&uri("/v1/http/hello?x")), ("hello", "/?x".to_owned()));
        assert_eq!(
            split(&uri("/v1/http/hello/%2e%2e/x")),
            ("hello", "/%2e%2e/x".to_owned())
        );
    }
}
