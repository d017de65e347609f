//! Outgoing HTTP on a component's behalf: the host's end of `wasi:http`
//! egress.
//!
//! A worker has no network (`worker::jail`), so a component's outgoing
//! request reaches the host over the worker's connection. The host checks
//! it against the tenant's `http_allow` list (`host:port` entries; nothing
//! by default) and only then connects, over plain HTTP/1.1, with bounded
//! time, body sizes and requests in flight per worker. The tenant checked is
//! the one the worker is bound to: a worker of one tenant cannot borrow
//! another's list by naming it. (A shared worker, at level `none`, serves
//! every tenant of that level and says whose call it is making.)

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use http_body_util::{BodyExt, Full, Limited};
use hyper_util::rt::TokioIo;
use tokio::sync::Semaphore;
use tokio_util::bytes::Bytes;

use crate::names::Namespace;
use crate::sandbox::{EgressError, HttpRequest, HttpResponse, MAX_EGRESS_BODY, header_list};

/// How long one outgoing request may take, connecting included.
pub const EGRESS_TIMEOUT: Duration = Duration::from_secs(30);
/// Outgoing requests one worker may have in flight at once.
pub const EGRESS_PER_WORKER: usize = 16;

/// Each tenant's allowed destinations.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct EgressRules {
    by_tenant: HashMap<Namespace, BTreeSet<String>>,
}

impl EgressRules {
    /// The rules of `tenants`' `http_allow` lists (`host:port`, lowercase).
    pub fn new(tenants: impl IntoIterator<Item = (Namespace, BTreeSet<String>)>) -> Self {
        Self {
            by_tenant: tenants.into_iter().filter(|(_, allowed)| !allowed.is_empty()).collect(),
        }
    }

    /// Whether `namespace` may send a request with `scheme` to `authority`.
    /// Only plain `http` leaves the host, to a `host:port` written out in
    /// the list (the port defaults to 80).
    pub fn allows(&self, namespace: &Namespace, scheme: &str, authority: &str) -> bool {
        let Some(allowed) = self.by_tenant.get(namespace) else {
            return false;
        };
        if scheme != "http" {
            return false;
        }
        let Ok(parsed) = authority.parse::<http::uri::Authority>() else {
            return false;
        };
        let target = format!(
            "{}:{}",
            parsed.host().to_ascii_lowercase(),
            parsed.port_u16().unwrap_or(80)
        );
        allowed.contains(&target)
    }

    /// Whether any tenant may send anything.
    pub fn is_empty(&self) -> bool {
        self.by_tenant.is_empty()
    }
}

/// One worker's egress: the rules, the tenant it is bound to, and its
/// share of requests in flight.
#[derive(Debug)]
pub(crate) struct EgressGate {
    rules: Arc<EgressRules>,
    bound: OnceLock<Namespace>,
    in_flight: Semaphore,
}

impl EgressGate {
    pub(crate) fn new(rules: Arc<EgressRules>) -> Self {
        Self {
            rules,
            bound: OnceLock::new(),
            in_flight: Semaphore::new(EGRESS_PER_WORKER),
        }
    }

    /// The worker serves `namespace` only, from now on.
    pub(crate) fn bind(&self, namespace: &Namespace) {
        let _ = self.bound.set(namespace.clone());
    }

    /// Sends `request` for a call of `claimed` (as the worker says), if the
    /// rules let it out.
    pub(crate) async fn forward(&self, claimed: &Namespace, request: HttpRequest) -> Result<HttpResponse, EgressError> {
        let namespace = self.bound.get().unwrap_or(claimed);
        let denied = || EgressError::Denied {
            namespace: namespace.to_string(),
            authority: request.authority.clone(),
        };
        if namespace != claimed || !self.rules.allows(namespace, &request.scheme, &request.authority) {
            return Err(denied());
        }
        let failed = |message: String| EgressError::Failed {
            authority: request.authority.clone(),
            message,
        };
        let Ok(_permit) = self.in_flight.try_acquire() else {
            return Err(failed(format!(
                "this worker already has {EGRESS_PER_WORKER} outgoing requests in flight"
            )));
        };
        match tokio::time::timeout(EGRESS_TIMEOUT, send(&request)).await {
            Ok(result) => result.map_err(failed),
            Err(_) => Err(failed(format!("no response within {EGRESS_TIMEOUT:?}"))),
        }
    }
}

/// Sends one allowed request over a fresh HTTP/1.1 connection.
async fn send(request: &HttpRequest) -> Result<HttpResponse, String> {
    let authority = request
        .authority
        .parse::<http::uri::Authority>()
        .map_err(|e| e.to_string())?;
    let port = authority.port_u16().unwrap_or(80);
    let stream = tokio::net::TcpStream::connect((authority.host(), port))
        .await
        .map_err(|e| format!("connecting: {e}"))?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("handshake: {e}"))?;
    let driver = tokio::spawn(connection);
    let mut builder = http::Request::builder()
        .method(http::Method::from_bytes(request.method.as_bytes()).map_err(|e| e.to_string())?)
        .uri(request.path_and_query.as_str())
        .header(http::header::HOST, request.authority.as_str());
    for (name, value) in &request.headers {
        if !name.eq_ignore_ascii_case("host") {
            builder = builder.header(name.as_str(), value.as_slice());
        }
    }
    let outgoing = builder
        .body(Full::new(Bytes::from(request.body.clone())))
        .map_err(|e| e.to_string())?;
    let response = sender.send_request(outgoing).await.map_err(|e| e.to_string());
    let response = match response {
        Ok(response) => response,
        Err(e) => {
            driver.abort();
            return Err(e);
        }
    };
    let (parts, body) = response.into_parts();
    let body = Limited::new(body, MAX_EGRESS_BODY)
        .collect()
        .await
        .map_err(|e| format!("reading the response (at most {MAX_EGRESS_BODY} bytes): {e}"))?
        .to_bytes();
    driver.abort();
    Ok(HttpResponse {
        status: parts.status.as_u16(),
        headers: header_list(&parts.headers),
        body: body.to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ns(name: &str) -> Namespace {
        Namespace::new(name).unwrap()
    }

    #[test]
    fn only_listed_http_destinations_of_the_tenant_are_allowed() {
        let rules = EgressRules::new([(
            ns("a"),
            BTreeSet::from(["127.0.0.1:8080".to_owned(), "api.example:80".to_owned()]),
        )]);
        assert!(rules.allows(&ns("a"), "http", "127.0.0.1:8080"));
        assert!(rules.allows(&ns("a"), "http", "API.example"));
        assert!(!rules.allows(&ns("a"), "http", "127.0.0.1:8081"));
        assert!(!rules.allows(&ns("a"), "https", "127.0.0.1:8080"));
        assert!(!rules.allows(&ns("a"), "http", "127.0.0.1:8080@evil"));
        assert!(!rules.allows(&ns("b"), "http", "127.0.0.1:8080"));
    }

    #[tokio::test]
    async fn a_bound_worker_cannot_borrow_another_tenants_list() {
        let rules = EgressRules::new([(ns("open"), BTreeSet::from(["127.0.0.1:9".to_owned()]))]);
        let gate = EgressGate::new(Arc::new(rules));
        gate.bind(&ns("closed"));
        let request = HttpRequest {
            method: "GET".into(),
            scheme: "http".into(),
            authority: "127.0.0.1:9".into(),
            path_and_query: "/".into(),
            headers: Vec::new(),
            body: Vec::new(),
        };
        let err = gate.forward(&ns("open"), request).await.unwrap_err();
        assert!(
            matches!(err, EgressError::Denied { ref namespace, .. } if namespace == "closed"),
            "{err}"
        );
    }
}
