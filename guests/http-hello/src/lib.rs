//! `http-hello`: a `wasi:http/proxy` app, built with nothing but the WASI
//! bindings, as any such app is. Its JavaScript twin
//! (`guests/js/http-hello`) answers the same way.
//!
//! Every response has `x-app: rust`, `x-method` and `x-path` (the path and
//! query it received), and `x-echo` copied from the request when present.
//! - `POST` (any path): status 201, the request's body back, with
//!   `x-body-length` and the request's `content-type`.
//! - `GET /status/NNN`: status NNN.
//! - `GET /spin`: spins for ever (for the call's fuel or deadline).
//! - `GET /bomb`: allocates without bound (for the memory limit).
//! - `GET /sleep/MS`: sleeps MS milliseconds, then answers.
//! - `GET /fetch/AUTHORITY/PATH`: makes an outgoing `GET
//!   http://AUTHORITY/PATH` and answers 200 with its status in
//!   `x-upstream-status` and its body, or 502 with the error it got.
//! - any other `GET`: 200 `hello from rust`.

use std::io::{Read as _, Write as _};

use wasip2::http::outgoing_handler;
use wasip2::http::types::{
    Fields, IncomingBody, IncomingRequest, Method, OutgoingBody, OutgoingRequest, OutgoingResponse, ResponseOutparam,
    Scheme,
};

wasip2::http::proxy::export!(Hello);

struct Hello;

type Headers = Vec<(String, Vec<u8>)>;

impl wasip2::exports::http::incoming_handler::Guest for Hello {
    fn handle(request: IncomingRequest, response_out: ResponseOutparam) {
        let method = request.method();
        let path = request.path_with_query().unwrap_or_else(|| "/".into());
        let headers = request.headers().entries();
        let mut out: Headers = vec![
            ("x-app".into(), b"rust".to_vec()),
            ("x-method".into(), method_name(&method).into_bytes()),
            ("x-path".into(), path.clone().into_bytes()),
        ];
        if let Some((_, value)) = headers.iter().find(|(name, _)| name == "x-echo") {
            out.push(("x-echo".into(), value.clone()));
        }
        let (status, body) = match (&method, path.as_str()) {
            (Method::Post, _) => {
                let body = read_body(request);
                out.push(("x-body-length".into(), body.len().to_string().into_bytes()));
                if let Some((_, value)) = headers.iter().find(|(name, _)| name == "content-type") {
                    out.push(("content-type".into(), value.clone()));
                }
                (201, body)
            }
            (_, "/spin") => spin(),
            (_, "/bomb") => bomb(),
            (_, p) if p.starts_with("/status/") => {
                let code = p["/status/".len()..].parse().unwrap_or(400);
                (code, format!("status {code}\n").into_bytes())
            }
            (_, p) if p.starts_with("/sleep/") => {
                let ms: u64 = p["/sleep/".len()..].parse().unwrap_or(0);
                wasip2::clocks::monotonic_clock::subscribe_duration(ms * 1_000_000).block();
                (200, b"slept\n".to_vec())
            }
            (_, p) if p.starts_with("/fetch/") => fetch(&p["/fetch/".len()..], &mut out),
            _ => {
                out.push(("content-type".into(), b"text/plain".to_vec()));
                (200, b"hello from rust\n".to_vec())
            }
        };
        respond(response_out, status, &out, &body);
    }
}

fn method_name(method: &Method) -> String {
    match method {
        Method::Get => "GET".into(),
        Method::Head => "HEAD".into(),
        Method::Post => "POST".into(),
        Method::Put => "PUT".into(),
        Method::Delete => "DELETE".into(),
        Method::Connect => "CONNECT".into(),
        Method::Options => "OPTIONS".into(),
        Method::Trace => "TRACE".into(),
        Method::Patch => "PATCH".into(),
        Method::Other(other) => other.clone(),
    }
}

fn read_body(request: IncomingRequest) -> Vec<u8> {
    let body = request.consume().expect("the body is consumed once");
    let mut bytes = Vec::new();
    {
        let mut stream = body.stream().expect("the stream is taken once");
        // A closed stream ends the read; an error leaves what was read.
        let _ = stream.read_to_end(&mut bytes);
    }
    drop(IncomingBody::finish(body));
    bytes
}

fn respond(response_out: ResponseOutparam, status: u16, headers: &Headers, body: &[u8]) {
    let fields = Fields::from_list(headers).expect("the app's own headers are valid");
    let response = OutgoingResponse::new(fields);
    let _ = response.set_status_code(status);
    let outgoing = response.body().expect("the body is taken once");
    ResponseOutparam::set(response_out, Ok(response));
    {
        let mut stream = outgoing.write().expect("the stream is taken once");
        // Chunks of at most 4 KiB: what a stream admits at a time.
        for chunk in body.chunks(4096) {
            if stream.write_all(chunk).is_err() {
                return;
            }
        }
        let _ = stream.flush();
    }
    let _ = OutgoingBody::finish(outgoing, None);
}

fn spin() -> (u16, Vec<u8>) {
    let mut n = 0u64;
    loop {
        n = std::hint::black_box(n.wrapping_add(1));
    }
}

fn bomb() -> (u16, Vec<u8>) {
    let mut held = Vec::new();
    loop {
        held.push(std::hint::black_box(vec![1u8; 1 << 20]));
    }
}

fn fetch(target: &str, out: &mut Headers) -> (u16, Vec<u8>) {
    let (authority, path) = match target.find('/') {
        Some(slash) => (&target[..slash], &target[slash..]),
        None => (target, "/"),
    };
    let request = OutgoingRequest::new(Fields::new());
    let _ = request.set_method(&Method::Get);
    let _ = request.set_scheme(Some(&Scheme::Http));
    let _ = request.set_authority(Some(authority));
    let _ = request.set_path_with_query(Some(path));
    let future = match outgoing_handler::handle(request, None) {
        Ok(future) => future,
        Err(code) => return (502, format!("egress failed: {code:?}\n").into_bytes()),
    };
    future.subscribe().block();
    let response = match future.get() {
        Some(Ok(Ok(response))) => response,
        Some(Ok(Err(code))) => return (502, format!("egress failed: {code:?}\n").into_bytes()),
        _ => return (502, b"egress failed: no response\n".to_vec()),
    };
    out.push(("x-upstream-status".into(), response.status().to_string().into_bytes()));
    let body = response.consume().expect("the body is consumed once");
    let mut bytes = Vec::new();
    {
        let mut stream = body.stream().expect("the stream is taken once");
        let _ = stream.read_to_end(&mut bytes);
    }
    drop(IncomingBody::finish(body));
    (200, bytes)
}
