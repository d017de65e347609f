//! `fetch`: a `bulkhead:plugin` component that makes an outgoing HTTP
//! request through `wasi:http/outgoing-handler`, as JavaScript and Python
//! plugins can. The payload is `AUTHORITY/PATH`; the output is the
//! response's status, a newline and its body. A request the host does not
//! let out fails with the error code the guest got (`HttpRequestDenied`
//! unless the tenant's `http_allow` names the destination).

use std::io::Read as _;

use wasip2::http::outgoing_handler;
use wasip2::http::types::{Fields, IncomingBody, Method, OutgoingRequest, Scheme};

wit_bindgen::generate!({ path: "../../wit", world: "plugin" });

use bulkhead::plugin::types::{Error, Request};
use exports::bulkhead::plugin::handler::Guest;

struct Fetch;

impl Guest for Fetch {
    fn handle(req: Request) -> Result<Vec<u8>, Error> {
        let target = String::from_utf8(req.payload).map_err(|_| Error::InvalidInput("not UTF-8".into()))?;
        let (authority, path) = target.split_at(target.find('/').unwrap_or(target.len()));
        let request = OutgoingRequest::new(Fields::new());
        let _ = request.set_method(&Method::Get);
        let _ = request.set_scheme(Some(&Scheme::Http));
        let _ = request.set_authority(Some(authority));
        let _ = request.set_path_with_query(Some(if path.is_empty() { "/" } else { path }));
        let failed = |code: &dyn std::fmt::Debug| Error::Failed(format!("egress failed: {code:?}"));
        let future = outgoing_handler::handle(request, None).map_err(|code| failed(&code))?;
        future.subscribe().block();
        let response = match future.get() {
            Some(Ok(Ok(response))) => response,
            Some(Ok(Err(code))) => return Err(failed(&code)),
            _ => return Err(failed(&"no response")),
        };
        let mut out = format!("{}\n", response.status()).into_bytes();
        let body = response.consume().map_err(|()| failed(&"no body"))?;
        {
            let mut stream = body.stream().map_err(|()| failed(&"no body stream"))?;
            let _ = stream.read_to_end(&mut out);
        }
        drop(IncomingBody::finish(body));
        Ok(out)
    }
}

export!(Fetch);
