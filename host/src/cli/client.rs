//! The HTTP side of the client commands: the validated base URL, one request
//! with its headers, token and timeout, and turning what comes back into
//! either a 2xx response or a [`CliError`].
//!
//! Plain HTTP only: the host serves on a local address and never speaks TLS.
//! Proxy variables are ignored for the same reason, so that an `HTTP_PROXY`
//! meant for the internet does not swallow calls to `127.0.0.1`.

use std::fmt;
use std::io::{self, Read, Write};
use std::time::Duration;

use ureq::http::{Method, Request, Response, header};
use ureq::{Agent, Body};

use super::ClientArgs;
use super::error::{CliError, ServerError};

/// How long connecting may take: a local host accepts at once or not at all.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The largest JSON or text body read into memory (error bodies, listings, reports).
const MAX_BUFFERED_BODY: u64 = 16 * 1024 * 1024;

/// The host's base URL: `http://HOST:PORT`, optionally with a path prefix,
/// stored without a trailing slash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaseUrl(String);

impl BaseUrl {
    /// Accepts `http://HOST:PORT[/prefix]` with or without a trailing slash;
    /// rejects other schemes, queries and fragments with a message that says why.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let Some((scheme, rest)) = text.split_once("://") else {
            return Err(format!(
                "`{text}` is not a URL: expected http://HOST:PORT, e.g. http://127.0.0.1:8080"
            ));
        };
        if scheme.eq_ignore_ascii_case("https") {
            return Err("https is not supported: bulkhead serves plain HTTP, use http://HOST:PORT".to_owned());
        }
        if !scheme.eq_ignore_ascii_case("http") {
            return Err(format!("unsupported scheme `{scheme}`: use http://HOST:PORT"));
        }
        if rest.contains(['?', '#']) {
            return Err("the URL must not have a query or fragment: use http://HOST:PORT".to_owned());
        }
        let rest = rest.trim_end_matches('/');
        let authority = rest.split('/').next().unwrap_or_default();
        if authority.is_empty() {
            return Err(format!("`{text}` has no host: expected http://HOST:PORT"));
        }
        let url = format!("http://{rest}");
        http::Uri::try_from(url.as_str()).map_err(|err| format!("`{text}` is not a valid URL: {err}"))?;
        Ok(Self(url))
    }

    /// The URL as text, without a trailing slash.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for BaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Percent-encodes one path segment: everything but RFC 3986's unreserved
/// characters (`A-Z a-z 0-9 - . _ ~`), so process ids such as `session:abc`
/// and any name travel intact.
pub fn encode_segment(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for byte in segment.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// A connection to one host: base URL, token and timeout.
#[derive(Debug, Clone)]
pub struct Client {
    agent: Agent,
    base: BaseUrl,
    token: Option<String>,
    timeout_secs: u64,
}

impl Client {
    /// A client for the host and credentials in `args`.
    pub fn new(args: &ClientArgs) -> Self {
        let agent = Agent::config_builder()
            .http_status_as_error(false)
            .proxy(None)
            .timeout_connect(Some(CONNECT_TIMEOUT))
            .user_agent(concat!("bulkhead/", env!("CARGO_PKG_VERSION")))
            .build()
            .into();
        Self {
            agent,
            base: args.url.clone(),
            token: args.token.clone(),
            timeout_secs: args.timeout,
        }
    }

    /// Raises the request budget to at least `secs` (a terminate waits out its grace).
    pub fn with_min_timeout(mut self, secs: u64) -> Self {
        self.timeout_secs = self.timeout_secs.max(secs);
        self
    }

    /// The host's base URL.
    pub fn base(&self) -> &BaseUrl {
        &self.base
    }

    /// Sends `method path` (path starting with `/`, segments already encoded)
    /// with `headers` and `body`; returns the response if its status is 2xx.
    pub fn send(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<Vec<u8>>,
    ) -> Result<Response<Body>, CliError> {
        let mut builder = Request::builder().method(method).uri(format!("{}{path}", self.base));
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        if let Some(token) = &self.token {
            builder = builder.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        let result = match body {
            Some(body) => self.run(builder.body(body)),
            None => self.run(builder.body(())),
        };
        let mut response = result?;
        if response.status().is_success() {
            return Ok(response);
        }
        let retry_after = response
            .headers()
            .get(header::RETRY_AFTER)
            .and_then(|value| value.to_str().ok());
        let retry_after = retry_after.map(str::to_owned);
        let body = self.read_body(&mut response)?;
        Err(ServerError::from_parts(response.status().as_u16(), retry_after.as_deref(), &body).into())
    }

    /// `GET path`, returning the body as text if the status is 2xx.
    pub fn get_text(&self, path: &str) -> Result<String, CliError> {
        let mut response = self.send(Method::GET, path, &[], None)?;
        let body = self.read_body(&mut response)?;
        String::from_utf8(body).map_err(|_| self.protocol("the body is not UTF-8 text"))
    }

    /// Reads a whole (bounded) body into memory.
    pub fn read_body(&self, response: &mut Response<Body>) -> Result<Vec<u8>, CliError> {
        response
            .body_mut()
            .with_config()
            .limit(MAX_BUFFERED_BODY)
            .read_to_vec()
            .map_err(|err| self.body_failed(err))
    }

    /// Streams a body of any size to `out`: read failures are the connection's,
    /// write failures the output's.
    pub fn copy_body(&self, response: &mut Response<Body>, out: &mut dyn Write) -> Result<u64, CliError> {
        let mut reader = response.body_mut().as_reader();
        let mut buf = vec![0; 64 * 1024];
        let mut total = 0;
        loop {
            let n = match reader.read(&mut buf) {
                Ok(0) => return Ok(total),
                Ok(n) => n,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                Err(err) => return Err(self.body_read_failed(err)),
            };
            out.write_all(&buf[..n]).map_err(CliError::Output)?;
            total += n as u64;
        }
    }

    /// A 2xx answer whose body is not what the contract promises.
    pub fn protocol(&self, detail: impl Into<String>) -> CliError {
        CliError::Protocol {
            url: self.base.to_string(),
            detail: detail.into(),
        }
    }

    fn run(&self, request: Result<Request<impl ureq::AsSendBody>, http::Error>) -> Result<Response<Body>, CliError> {
        let request = request.map_err(|err| CliError::Usage(format!("cannot build the request: {err}")))?;
        let request = self
            .agent
            .configure_request(request)
            .timeout_global(Some(Duration::from_secs(self.timeout_secs)))
            .build();
        self.agent.run(request).map_err(|err| self.request_failed(err))
    }

    /// The request got no response: nothing listens there, or it timed out.
    fn request_failed(&self, err: ureq::Error) -> CliError {
        let url = self.base.to_string();
        match err {
            ureq::Error::Timeout(_) => CliError::Timeout {
                url,
                secs: self.timeout_secs,
            },
            source => CliError::Unreachable { url, source },
        }
    }

    /// The response started but its body could not be read to the end.
    fn body_failed(&self, err: ureq::Error) -> CliError {
        let url = self.base.to_string();
        match err {
            ureq::Error::Timeout(_) => CliError::Timeout {
                url,
                secs: self.timeout_secs,
            },
            err => CliError::Interrupted {
                url,
                detail: err.to_string(),
            },
        }
    }

    fn body_read_failed(&self, err: io::Error) -> CliError {
        if err.kind() == io::ErrorKind::TimedOut {
            return CliError::Timeout {
                url: self.base.to_string(),
                secs: self.timeout_secs,
            };
        }
        match err.downcast::<ureq::Error>() {
            Ok(inner) => self.body_failed(inner),
            Err(err) => CliError::Interrupted {
                url: self.base.to_string(),
                detail: err.to_string(),
            },
        }
    }
}
