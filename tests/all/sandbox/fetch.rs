//! The `fetch` guest: a component of our world that imports wasi:http loads,
//! and its outgoing requests are denied unless an egress lets them out.

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use bulkhead::names::Namespace;
use bulkhead::sandbox::{
    CallFailure, CallLimits, Egress, EgressError, GuestFault, HttpRequest, HttpResponse, InstanceMode, Sandbox,
    SandboxConfig,
};

use super::{Harness, guest_path, request};

#[tokio::test]
async fn outgoing_requests_are_denied_by_default_with_an_error_the_guest_sees() {
    let h = Harness::new();
    let fetch = h.guest("fetch", InstanceMode::PerRequest);
    let err = h
        .call(&fetch, "tenant-a", "127.0.0.1:9/", &CallLimits::default())
        .await
        .unwrap_err();
    assert!(
        matches!(err, CallFailure::Guest(GuestFault::Error(ref m)) if m.contains("HttpRequestDenied")),
        "{err}"
    );
}

/// An egress that answers every request itself and records what it saw.
#[derive(Default)]
struct Recorder {
    seen: Mutex<Vec<(String, HttpRequest)>>,
}

impl Egress for Recorder {
    fn send(
        &self,
        namespace: &Namespace,
        request: HttpRequest,
    ) -> Pin<Box<dyn Future<Output = Result<HttpResponse, EgressError>> + Send>> {
        let allowed = request.authority.starts_with("allowed.test");
        let authority = request.authority.clone();
        self.seen.lock().unwrap().push((namespace.to_string(), request));
        let namespace = namespace.to_string();
        Box::pin(async move {
            if allowed {
                Ok(HttpResponse {
                    status: 203,
                    headers: vec![("x-upstream".into(), b"yes".to_vec())],
                    body: b"from the egress".to_vec(),
                })
            } else {
                Err(EgressError::Denied { namespace, authority })
            }
        })
    }
}

#[tokio::test]
async fn with_an_egress_the_request_goes_to_it_tagged_with_the_callers_namespace() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("compile-cache");
    let mut config = SandboxConfig::new(cache, tmp.path().join("data"));
    config.instance_slots = 4;
    let mut sandbox = Sandbox::new(config).unwrap();
    let recorder = Arc::new(Recorder::default());
    sandbox.set_egress(Arc::clone(&recorder) as Arc<dyn Egress>);
    let bytes = std::fs::read(guest_path("fetch")).unwrap();
    let fetch = sandbox.load_plugin("fetch", &bytes, InstanceMode::PerRequest).unwrap();

    let out = sandbox
        .call(
            &fetch,
            request("tenant-a", "allowed.test:80/path?q=1"),
            &CallLimits::default(),
        )
        .await
        .unwrap();
    assert_eq!(String::from_utf8(out.output).unwrap(), "203\nfrom the egress");
    let err = sandbox
        .call(&fetch, request("tenant-b", "other.test:80/"), &CallLimits::default())
        .await
        .unwrap_err();
    assert!(
        matches!(err, CallFailure::Guest(GuestFault::Error(ref m)) if m.contains("HttpRequestDenied")),
        "{err}"
    );
    let seen = recorder.seen.lock().unwrap();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0].0, "tenant-a");
    assert_eq!(seen[0].1.method, "GET");
    assert_eq!(seen[0].1.scheme, "http");
    assert_eq!(seen[0].1.authority, "allowed.test:80");
    assert_eq!(seen[0].1.path_and_query, "/path?q=1");
    assert_eq!(seen[1].0, "tenant-b");
}
