//! `wasi:http` in the sandbox: serving a `wasi:http/proxy` app one request
//! at a time, and the outgoing requests of any component.
//!
//! An HTTP request reaches a worker as the payload of an ordinary call (an
//! [`HttpRequest`], encoded), so it goes through the same admission,
//! routing, limits and error kinds as an invoke; the app's response comes
//! back as the call's output (an [`HttpResponse`]). Each request gets a
//! fresh store and a fresh instance, as `wasmtime serve` gives a p2 app,
//! under the call's fuel, memory and deadline; bodies are whole messages,
//! bounded by `server.max_payload` on the way in and by the frame's output
//! limit on the way out.
//!
//! Outgoing requests (`wasi:http/outgoing-handler`) never leave the worker by
//! themselves: the worker has no network. Without an [`Egress`] (the
//! default) every one fails with `HTTP-request-denied`; with one, the worker
//! hands it to the host, which checks it against the tenant's
//! `http_allow` and sends it (see `supervisor::egress`).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;

use http_body_util::{BodyExt, Full};
use serde::{Deserialize, Serialize};
use tokio_util::bytes::Bytes;
use wasmtime::Store;
use wasmtime_wasi_http::p2::bindings::ProxyPre;
use wasmtime_wasi_http::p2::bindings::http::types::{ErrorCode, Scheme};
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;
use wasmtime_wasi_http::{WasiBody, WasiHttpHooks, WasiHttpView};

use super::call::{classify, describe, fresh_store_failure, tags_for};
use super::error::{CallFailure, GuestFault, HostFailure};
use super::plugin::Plugin;
use super::state::CallState;
use super::{CallLimits, Request, Sandbox};
use crate::names::Namespace;

/// An HTTP request for an app, or from one (an outgoing request), as it
/// travels between the host and a worker.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HttpRequest {
    /// The method, as sent (`GET`, `POST`, an extension method).
    pub method: String,
    /// `http` or `https` (outgoing requests; the host serves apps over `http`).
    pub scheme: String,
    /// The authority (`host[:port]`).
    pub authority: String,
    /// The path and query, starting with `/`.
    pub path_and_query: String,
    /// The headers in order (a name may repeat).
    pub headers: Vec<(String, Vec<u8>)>,
    /// The whole body.
    pub body: Vec<u8>,
}

/// An app's response, or the answer to an outgoing request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HttpResponse {
    /// The status code.
    pub status: u16,
    /// The headers in order.
    pub headers: Vec<(String, Vec<u8>)>,
    /// The whole body.
    pub body: Vec<u8>,
}

impl HttpRequest {
    /// The encoded form: the payload of a call to an app.
    pub fn encode(&self) -> Vec<u8> {
        postcard::to_allocvec(self).expect("an HTTP request always encodes")
    }

    /// Decodes a call's payload.
    pub fn decode(bytes: &[u8]) -> Result<Self, String> {
        postcard::from_bytes(bytes).map_err(|e| format!("the HTTP request does not decode: {e}"))
    }

    /// As a hyper request with the whole body.
    fn to_hyper(&self) -> Result<http::Request<Full<Bytes>>, String> {
        let uri = http::Uri::builder()
            .scheme(self.scheme.as_str())
            .authority(self.authority.as_str())
            .path_and_query(self.path_and_query.as_str())
            .build()
            .map_err(|e| format!("invalid request target: {e}"))?;
        let mut builder = http::Request::builder()
            .method(http::Method::from_bytes(self.method.as_bytes()).map_err(|e| e.to_string())?)
            .uri(uri);
        for (name, value) in &self.headers {
            builder = builder.header(name.as_str(), value.as_slice());
        }
        builder
            .body(Full::new(Bytes::from(self.body.clone())))
            .map_err(|e| format!("invalid request: {e}"))
    }
}

impl HttpResponse {
    /// The encoded form: the output of a call to an app.
    pub fn encode(&self) -> Vec<u8> {
        postcard::to_allocvec(self).expect("an HTTP response always encodes")
    }

    /// Decodes a call's output.
    pub fn decode(bytes: &[u8]) -> Result<Self, String> {
        postcard::from_bytes(bytes).map_err(|e| format!("the HTTP response does not decode: {e}"))
    }
}

/// A header map as the messages carry it: names and values, in order.
pub fn header_list(headers: &http::HeaderMap) -> Vec<(String, Vec<u8>)> {
    headers
        .iter()
        .map(|(name, value)| (name.as_str().to_owned(), value.as_bytes().to_vec()))
        .collect()
}

/// Why an outgoing request got no response.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum EgressError {
    /// The destination is not on the tenant's `http_allow` list (or there
    /// is none).
    #[error("outgoing HTTP to {authority} is not allowed for namespace {namespace}")]
    Denied { namespace: String, authority: String },
    /// The destination could not be reached or answered badly.
    #[error("outgoing HTTP to {authority} failed: {message}")]
    Failed { authority: String, message: String },
}

/// Sends an allowed outgoing request on a component's behalf: the worker's
/// link to its host.
pub trait Egress: Send + Sync {
    /// Sends `request` for a call of `namespace`; its response, or why not.
    fn send(
        &self,
        namespace: &Namespace,
        request: HttpRequest,
    ) -> Pin<Box<dyn Future<Output = Result<HttpResponse, EgressError>> + Send>>;
}

/// The largest outgoing request body a component may send, in bytes.
pub const MAX_EGRESS_BODY: usize = 1 << 20;

/// The `wasi:http` hooks of a store: outgoing requests go to the sandbox's
/// [`Egress`], or are denied.
pub(crate) struct Hooks {
    pub(crate) namespace: Option<Namespace>,
    pub(crate) egress: Option<Arc<dyn Egress>>,
}

impl WasiHttpHooks for Hooks {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        _options: Option<wasmtime_wasi_http::RequestOptions>,
        _fut: Box<dyn Future<Output = Result<(), wasmtime_wasi_http::Error>> + Send>,
    ) -> Box<
        dyn Future<
                Output = Result<
                    (
                        http::Response<WasiBody>,
                        Box<dyn Future<Output = Result<(), wasmtime_wasi_http::Error>> + Send>,
                    ),
                    wasmtime_wasi_http::Error,
                >,
            > + Send,
    > {
        let (Some(namespace), Some(egress)) = (self.namespace.clone(), self.egress.clone()) else {
            return Box::new(async { Err(wasmtime_wasi_http::Error::HttpRequestDenied) });
        };
        Box::new(async move {
            let (parts, body) = request.into_parts();
            let body = http_body_util::Limited::new(body, MAX_EGRESS_BODY)
                .collect()
                .await
                .map_err(|_| wasmtime_wasi_http::Error::HttpRequestBodySize(Some(MAX_EGRESS_BODY as u64)))?
                .to_bytes();
            let outgoing = HttpRequest {
                method: parts.method.to_string(),
                scheme: parts.uri.scheme_str().unwrap_or("http").to_owned(),
                authority: parts.uri.authority().map(|a| a.to_string()).unwrap_or_default(),
                path_and_query: parts
                    .uri
                    .path_and_query()
                    .map_or_else(|| "/".to_owned(), |p| p.to_string()),
                headers: header_list(&parts.headers),
                body: body.to_vec(),
            };
            let response = egress.send(&namespace, outgoing).await.map_err(|e| {
                tracing::debug!("{e}");
                match e {
                    EgressError::Denied { .. } => wasmtime_wasi_http::Error::HttpRequestDenied,
                    EgressError::Failed { .. } => wasmtime_wasi_http::Error::DestinationUnavailable,
                }
            })?;
            let mut builder = http::Response::builder().status(response.status);
            for (name, value) in &response.headers {
                builder = builder.header(name.as_str(), value.as_slice());
            }
            let body = Full::new(Bytes::from(response.body))
                .map_err(|never| match never {})
                .boxed_unsync();
            let response = builder
                .body(body)
                .map_err(|_| wasmtime_wasi_http::Error::HttpProtocolError)?;
            let done: Box<dyn Future<Output = Result<(), wasmtime_wasi_http::Error>> + Send> =
                Box::new(async { Ok(()) });
            Ok((response, done))
        })
    }
}

/// Reads a body whole, refusing more than `limit` bytes.
async fn read_whole(body: HyperOutgoingBody, limit: usize) -> Result<Vec<u8>, GuestFault> {
    let mut body = std::pin::pin!(body);
    let mut out = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| GuestFault::Trap(format!("the app's response body failed: {e}")))?;
        if let Some(data) = frame.data_ref() {
            if out.len() + data.len() > limit {
                return Err(GuestFault::OutputTooLarge {
                    size: out.len() + data.len(),
                    limit,
                });
            }
            out.extend_from_slice(data);
        }
    }
    Ok(out)
}

impl Sandbox {
    /// Serves one HTTP request (the call's payload, an [`HttpRequest`])
    /// with a fresh instance of the app `pre`; the encoded
    /// [`HttpResponse`] and the fuel used.
    pub(crate) async fn call_http(
        &self,
        plugin: &Plugin,
        pre: &ProxyPre<CallState>,
        request: Request,
        limits: &CallLimits,
        deadline: Instant,
        output_limit: usize,
    ) -> Result<(Vec<u8>, u64), CallFailure> {
        let incoming = HttpRequest::decode(&request.payload).map_err(HostFailure::BadRequest)?;
        let incoming = incoming.to_hyper().map_err(HostFailure::BadRequest)?;
        let data_dir = self.data_dir(plugin, Some(&request.namespace))?;
        let tags = Arc::new(std::sync::Mutex::new(tags_for(plugin, &request, &self.log_bucket)));
        let mut store = self.new_store(data_dir, limits, deadline, tags)?;
        store.data_mut().hooks.namespace = Some(request.namespace.clone());
        let (sender, receiver) = tokio::sync::oneshot::channel();
        let setup = |e: wasmtime::Error| CallFailure::from(HostFailure::BadRequest(describe(&e)));
        let req = store
            .data_mut()
            .http()
            .new_incoming_request(Scheme::Http, incoming)
            .map_err(setup)?;
        let out = store.data_mut().http().new_response_outparam(sender).map_err(setup)?;
        let proxy = match pre.instantiate_async(&mut store).await {
            Ok(proxy) => proxy,
            Err(e) => return Err(fresh_store_failure(self, &e, &store, limits)),
        };
        let fuel_before = limits.fuel.unwrap_or(u64::MAX);
        let (handled, response) = serve(&mut store, &proxy, req, out, receiver, output_limit).await;
        let fuel_consumed = fuel_before.saturating_sub(store.get_fuel().unwrap_or(0));
        if let Some(Err(e)) = handled {
            return Err(classify(&e, store.data().limiter.refused(), limits).into());
        }
        match response {
            Some(Ok(response)) => Ok((response.encode(), fuel_consumed)),
            Some(Err(fault)) => Err(fault.into()),
            None => Err(GuestFault::Error("the app returned without a response".into()).into()),
        }
    }
}

/// Runs the app's handler and reads its response at the same time (an app
/// may set the response first and write the body after); stops at the
/// handler's trap. The handler's result, if it ended, and the response, if
/// one came.
async fn serve(
    store: &mut Store<CallState>,
    proxy: &wasmtime_wasi_http::p2::bindings::Proxy,
    req: wasmtime::component::Resource<wasmtime_wasi_http::p2::types::HostIncomingRequest>,
    out: wasmtime::component::Resource<wasmtime_wasi_http::p2::types::HostResponseOutparam>,
    receiver: tokio::sync::oneshot::Receiver<Result<http::Response<HyperOutgoingBody>, ErrorCode>>,
    output_limit: usize,
) -> (Option<wasmtime::Result<()>>, Option<Result<HttpResponse, GuestFault>>) {
    let handle = proxy.wasi_http_incoming_handler().call_handle(&mut *store, req, out);
    let collect = async {
        let response = match receiver.await {
            Ok(Ok(response)) => response,
            Ok(Err(code)) => {
                return Some(Err(GuestFault::Error(format!(
                    "the app answered with an error: {code:?}"
                ))));
            }
            // The outparam was dropped unset.
            Err(_) => return None,
        };
        let (parts, body) = response.into_parts();
        let body = match read_whole(body, output_limit).await {
            Ok(body) => body,
            Err(fault) => return Some(Err(fault)),
        };
        Some(Ok(HttpResponse {
            status: parts.status.as_u16(),
            headers: header_list(&parts.headers),
            body,
        }))
    };
    let mut handle = std::pin::pin!(handle);
    let mut collect = std::pin::pin!(collect);
    let mut handled = None;
    let mut response = None;
    loop {
        tokio::select! {
            result = &mut handle, if handled.is_none() => {
                let failed = result.is_err();
                handled = Some(result);
                if failed || response.is_some() {
                    break;
                }
            }
            collected = &mut collect, if response.is_none() => {
                response = Some(collected);
                if handled.is_some() {
                    break;
                }
            }
        }
    }
    (handled, response.flatten())
}
