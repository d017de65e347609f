//! The HTTP server: hyper's HTTP/1 connections with every limit a hostile
//! client meets (`[server]` keys, [`HttpLimits`]), a connection cap, and a
//! shutdown that ends within a bound whatever the clients do.
//!
//! Each connection has a watchdog that knows which phase it is in: waiting
//! for a request (`idle_timeout`), reading a request's headers
//! (`header_read_timeout`, from their first byte), or busy with a request
//! (the handlers bound the body with `body_read_timeout`, the call with its
//! own limits). In any phase, an answer whose write stalls longer than
//! `write_timeout` cuts the connection. The phase moves on events (bytes
//! read, a request begun, its answer written), never by polling.
//!
//! With `[server.tls]`, each connection first completes a TLS handshake
//! (rustls, within `header_read_timeout`); a client that speaks plain HTTP
//! to the TLS port is cut at the handshake.
//!
//! A request refused before its body was read (a bad token, a body over
//! the limit) still has its body read and discarded, up to [`DRAIN_LIMIT`]
//! bytes for at most [`DRAIN_TIME`], so that a client that sends the whole
//! body before reading the answer (Python's `urllib`, `ureq`) reads the
//! error instead of a broken pipe.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes, HttpBody};
use axum::http::{Request, header};
use hyper::body::{Frame, Incoming, SizeHint};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, Semaphore};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

use tokio_rustls::rustls;

use crate::config::{HttpLimits, TlsFiles};
use crate::metrics::HostMetrics;

/// The most of a refused request's body that is read and thrown away.
pub(crate) const DRAIN_LIMIT: u64 = 8 << 20;
/// The longest a refused request's body is read for.
pub(crate) const DRAIN_TIME: Duration = Duration::from_secs(5);
/// How long the accept loop rests after the system refused an accept (out
/// of descriptors): a pause, not a spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);
/// After `shutdown_timeout`, how long cut connections get to go.
const CUT_SLACK: Duration = Duration::from_secs(1);

/// The listen backlog: connections the kernel queues before they are
/// accepted (the kernel caps it at `net.core.somaxconn`). tokio's default
/// of 128 makes a burst of connects wait a SYN retry (a second) each time
/// it overflows.
const BACKLOG: u32 = 4096;

/// Binds `address` for [`serve`], with a backlog for bursts.
pub(crate) fn bind(address: SocketAddr) -> io::Result<TcpListener> {
    let socket = match address {
        SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
        SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
    };
    socket.set_reuseaddr(true)?;
    socket.bind(address)?;
    socket.listen(BACKLOG)
}

/// Why the server closed a connection itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CloseReason {
    IdleTimeout,
    HeaderTimeout,
    WriteTimeout,
    Shutdown,
    TlsHandshake,
}

impl CloseReason {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::IdleTimeout => "idle_timeout",
            Self::HeaderTimeout => "header_timeout",
            Self::WriteTimeout => "write_timeout",
            Self::Shutdown => "shutdown",
            Self::TlsHandshake => "tls_handshake",
        }
    }
}

/// The rustls configuration of `files`: the certificate chain and its key,
/// HTTP/1.1 by ALPN. Errors say which file is wrong and why.
pub(crate) fn tls_config(files: &TlsFiles) -> Result<Arc<rustls::ServerConfig>, String> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let cert = files.cert.display();
    let chain = CertificateDer::pem_file_iter(&files.cert)
        .and_then(Iterator::collect::<Result<Vec<_>, _>>)
        .map_err(|e| format!("cannot read the certificate {cert}: {e}"))?;
    if chain.is_empty() {
        return Err(format!("{cert} holds no PEM certificate"));
    }
    let key = PrivateKeyDer::from_pem_file(&files.key)
        .map_err(|e| format!("cannot read the private key {}: {e}", files.key.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| format!("{cert} and {} do not make a TLS identity: {e}", files.key.display()))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Serves `app` on `listener` under `limits` (over TLS with `tls`) until
/// `shutdown` resolves; then stops accepting, lets requests in flight
/// finish for `shutdown_timeout`, cuts every connection left and returns.
pub(crate) async fn serve(
    listener: TcpListener,
    app: Router,
    limits: HttpLimits,
    tls: Option<Arc<rustls::ServerConfig>>,
    metrics: HostMetrics,
    shutdown: impl Future<Output = ()>,
) {
    let tls = tls.map(tokio_rustls::TlsAcceptor::from);
    let limits = Arc::new(limits);
    let slots = Arc::new(Semaphore::new(limits.max_connections as usize));
    let tracker = TaskTracker::new();
    let graceful = CancellationToken::new();
    let cut = CancellationToken::new();
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .max_buf_size(usize::try_from(limits.max_header_size).unwrap_or(usize::MAX).max(8192))
        .max_header_size(usize::try_from(limits.max_header_size).unwrap_or(usize::MAX))
        // The watchdog bounds the header phase (and the idle one before it).
        .header_read_timeout(None);
    let builder = Arc::new(builder);
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(e) if is_per_connection(&e) => continue,
            Err(e) => {
                tracing::warn!("accept failed: {e}; pausing accepts for {ACCEPT_BACKOFF:?}");
                tokio::select! {
                    () = &mut shutdown => break,
                    () = tokio::time::sleep(ACCEPT_BACKOFF) => continue,
                }
            }
        };
        let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
            metrics.http_connection_refused();
            refuse(&stream, limits.max_connections);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let connection = Connection {
            app: app.clone(),
            limits: Arc::clone(&limits),
            builder: Arc::clone(&builder),
            metrics: metrics.clone(),
            graceful: graceful.clone(),
            cut: cut.clone(),
        };
        let tls = tls.clone();
        tracker.spawn(async move {
            match tls {
                None => connection.run(stream, peer).await,
                Some(acceptor) => connection.handshake(&acceptor, stream, peer).await,
            }
            drop(slot);
        });
    }
    drop(listener);
    tracing::info!(
        open = tracker.len(),
        "stopped accepting; letting calls in flight finish"
    );
    graceful.cancel();
    tracker.close();
    if tokio::time::timeout(limits.shutdown_timeout, tracker.wait())
        .await
        .is_err()
    {
        tracing::warn!(
            open = tracker.len(),
            "connections still open after server.shutdown_timeout ({:?}); cutting them",
            limits.shutdown_timeout
        );
        cut.cancel();
        let _ = tokio::time::timeout(CUT_SLACK, tracker.wait()).await;
    }
}

/// Accept errors that concern one connection only (it was reset before
/// we took it): the next accept may go on at once.
fn is_per_connection(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused | io::ErrorKind::ConnectionAborted | io::ErrorKind::ConnectionReset
    )
}

/// Answers a connection over the cap without a task: one non-blocking
/// write of a canned 429, then close.
fn refuse(stream: &TcpStream, max: u32) {
    let body = format!(
        r#"{{"error":{{"kind":"bulkhead_full","message":"the host has server.max_connections ({max}) connections open; retry later","process_id":null}}}}"#
    );
    let response = format!(
        "HTTP/1.1 429 Too Many Requests\r\ncontent-type: application/json\r\ncontent-length: {}\r\nretry-after: 1\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.try_write(response.as_bytes());
}

/// What one connection's task needs.
struct Connection {
    app: Router,
    limits: Arc<HttpLimits>,
    builder: Arc<hyper::server::conn::http1::Builder>,
    metrics: HostMetrics,
    graceful: CancellationToken,
    cut: CancellationToken,
}

impl Connection {
    /// Completes the TLS handshake within `header_read_timeout` (or before
    /// a shutdown), then serves.
    async fn handshake(self, acceptor: &tokio_rustls::TlsAcceptor, stream: TcpStream, peer: SocketAddr) {
        let handshake = tokio::time::timeout(self.limits.header_read_timeout, acceptor.accept(stream));
        let shaken = tokio::select! {
            shaken = handshake => shaken,
            () = self.graceful.cancelled() => return,
        };
        match shaken {
            Ok(Ok(stream)) => self.run(stream, peer).await,
            Ok(Err(e)) => {
                tracing::debug!(%peer, "TLS handshake failed: {e}");
                self.metrics.http_connection_closed(CloseReason::TlsHandshake.as_str());
            }
            Err(_) => self.metrics.http_connection_closed(CloseReason::TlsHandshake.as_str()),
        }
    }

    async fn run<T>(self, stream: T, peer: SocketAddr)
    where
        T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let activity = Arc::new(Activity::new());
        let _open = self.metrics.http_connection_opened();
        let service = {
            let activity = Arc::clone(&activity);
            let app = self.app.clone();
            hyper::service::service_fn(move |request: Request<Incoming>| {
                let busy = Busy::begin(&activity);
                let app = app.clone();
                async move {
                    let drain = !expects_continue(request.headers());
                    let request = request.map(|body| drained(body, &busy, drain));
                    let response = app.oneshot(request).await.unwrap_or_else(|e: Infallible| match e {});
                    Ok::<_, Infallible>(response.map(|body| {
                        Body::new(Watched {
                            inner: body,
                            _busy: busy,
                        })
                    }))
                }
            })
        };
        let io = TokioIo::new(WatchedIo {
            inner: stream,
            activity: Arc::clone(&activity),
        });
        let connection = self.builder.serve_connection(io, service);
        tokio::pin!(connection);
        let mut draining = false;
        let closed = loop {
            let deadline = activity.deadline(&self.limits);
            tokio::select! {
                result = connection.as_mut() => {
                    if let Err(e) = result {
                        tracing::debug!(%peer, "connection ended: {e}");
                    }
                    break None;
                }
                () = sleep_until(deadline.map(|(at, _)| at)) => {
                    if let Some((at, reason)) = activity.deadline(&self.limits)
                        && at <= Instant::now()
                    {
                        break Some(reason);
                    }
                }
                () = activity.changed.notified() => {}
                () = self.graceful.cancelled(), if !draining => {
                    draining = true;
                    connection.as_mut().graceful_shutdown();
                }
                () = self.cut.cancelled() => break Some(CloseReason::Shutdown),
            }
        };
        if let Some(reason) = closed {
            tracing::debug!(%peer, reason = reason.as_str(), "closing the connection");
            self.metrics.http_connection_closed(reason.as_str());
        }
    }
}

/// Whether this request's client waits for `100 Continue` before its body:
/// then an unread body is not drained (the client may never send it, and
/// what follows would be its next request).
fn expects_continue(headers: &http::HeaderMap) -> bool {
    headers
        .get(header::EXPECT)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"))
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Where a connection is, for its watchdog.
#[derive(Debug)]
struct Activity {
    state: Mutex<Phase>,
    /// Woken on every change of phase or of the write stall.
    changed: Notify,
}

#[derive(Debug)]
struct Phase {
    /// Requests begun and not yet answered in full (with HTTP/1, 0 or 1).
    busy: usize,
    /// While not busy: when the wait began, and whether a byte of the next
    /// request has arrived (then `since` is when it did).
    since: Instant,
    reading_head: bool,
    /// Since when a write has been waiting for the client to read.
    write_stalled: Option<Instant>,
}

impl Activity {
    fn new() -> Self {
        Self {
            state: Mutex::new(Phase {
                busy: 0,
                since: Instant::now(),
                reading_head: false,
                write_stalled: None,
            }),
            changed: Notify::new(),
        }
    }

    fn phase(&self) -> std::sync::MutexGuard<'_, Phase> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The next deadline and what passing it means.
    fn deadline(&self, limits: &HttpLimits) -> Option<(Instant, CloseReason)> {
        let phase = self.phase();
        let waiting = (phase.busy == 0).then(|| {
            if phase.reading_head {
                (phase.since + limits.header_read_timeout, CloseReason::HeaderTimeout)
            } else {
                (phase.since + limits.idle_timeout, CloseReason::IdleTimeout)
            }
        });
        let stalled = phase
            .write_stalled
            .map(|since| (since + limits.write_timeout, CloseReason::WriteTimeout));
        [waiting, stalled].into_iter().flatten().min_by_key(|(at, _)| *at)
    }

    fn read_some(&self) {
        let mut phase = self.phase();
        if phase.busy == 0 && !phase.reading_head {
            phase.reading_head = true;
            phase.since = Instant::now();
            drop(phase);
            self.changed.notify_one();
        }
    }

    fn write_blocked(&self) {
        let mut phase = self.phase();
        if phase.write_stalled.is_none() {
            phase.write_stalled = Some(Instant::now());
            drop(phase);
            self.changed.notify_one();
        }
    }

    fn wrote_some(&self) {
        let mut phase = self.phase();
        if phase.write_stalled.is_some() {
            phase.write_stalled = None;
            drop(phase);
            self.changed.notify_one();
        }
    }
}

/// A request in progress: held by its answer's body and by its request
/// body while that is drained; the connection is idle again when the last
/// holder goes.
#[derive(Clone, Debug)]
struct Busy {
    _held: Arc<BusyInner>,
}

#[derive(Debug)]
struct BusyInner(Arc<Activity>);

impl Busy {
    fn begin(activity: &Arc<Activity>) -> Self {
        {
            let mut phase = activity.phase();
            phase.busy += 1;
            phase.reading_head = false;
        }
        activity.changed.notify_one();
        Self {
            _held: Arc::new(BusyInner(Arc::clone(activity))),
        }
    }
}

impl Drop for BusyInner {
    fn drop(&mut self) {
        {
            let mut phase = self.0.phase();
            phase.busy = phase.busy.saturating_sub(1);
            phase.since = Instant::now();
            phase.reading_head = false;
        }
        self.0.changed.notify_one();
    }
}

/// The request body as handlers see it: hyper's, drained on drop if left
/// unread (see the module doc).
fn drained(body: Incoming, busy: &Busy, drain: bool) -> Body {
    Body::new(Drained {
        inner: Some(body),
        busy: Some(busy.clone()),
        drain,
    })
}

struct Drained {
    inner: Option<Incoming>,
    /// Keeps the connection busy until the body is read or drained.
    busy: Option<Busy>,
    drain: bool,
}

impl HttpBody for Drained {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = self.get_mut();
        let Some(inner) = this.inner.as_mut() else {
            return Poll::Ready(None);
        };
        let polled = Pin::new(inner).poll_frame(cx);
        if matches!(polled, Poll::Ready(None | Some(Err(_)))) {
            this.inner = None;
            this.busy = None;
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.as_ref().is_none_or(HttpBody::is_end_stream)
    }

    fn size_hint(&self) -> SizeHint {
        self.inner
            .as_ref()
            .map_or_else(|| SizeHint::with_exact(0), HttpBody::size_hint)
    }
}

impl Drop for Drained {
    fn drop(&mut self) {
        let Some(body) = self.inner.take() else {
            return;
        };
        if !self.drain || body.is_end_stream() || body.size_hint().lower() > DRAIN_LIMIT {
            return;
        }
        let busy = self.busy.take();
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                let _ = tokio::time::timeout(DRAIN_TIME, discard(body)).await;
                drop(busy);
            });
        }
    }
}

/// Reads and throws away up to [`DRAIN_LIMIT`] bytes of `body`.
async fn discard(mut body: Incoming) {
    let mut read = 0u64;
    while let Some(Ok(frame)) = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await {
        read += frame.data_ref().map_or(0, |d| d.len() as u64);
        if read > DRAIN_LIMIT {
            return;
        }
    }
}

/// An answer's body, holding its request's [`Busy`] until written.
struct Watched {
    inner: Body,
    _busy: Busy,
}

impl HttpBody for Watched {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.get_mut().inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// The socket, telling the watchdog when bytes arrive and when a write
/// waits for the client.
struct WatchedIo<T> {
    inner: T,
    activity: Arc<Activity>,
}

impl<T: AsyncRead + Unpin> AsyncRead for WatchedIo<T> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.inner).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            this.activity.read_some();
        }
        polled
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for WatchedIo<T> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_write(cx, data);
        this.track(&polled);
        polled
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        this.track(&polled);
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

impl<T> WatchedIo<T> {
    fn track(&self, polled: &Poll<io::Result<usize>>) {
        match polled {
            Poll::Pending => self.activity.write_blocked(),
            Poll::Ready(_) => self.activity.wrote_some(),
        }
    }
}

/// The descriptors kept for workers and the host's own files, beside the
/// client connections: each worker holds a few in the host (its socket,
/// pidfd, log pipe, cgroup files).
pub(crate) fn descriptor_reserve(max_processes: u32) -> u64 {
    256 + 8 * u64::from(max_processes)
}

/// Raises the open-files limit to its hard limit and returns the number of
/// client connections that leaves room for beside `reserve` descriptors.
pub(crate) fn connections_within_open_files(reserve: u64) -> u64 {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    let raised = match limit.maximum {
        Some(hard) if limit.current.is_some_and(|soft| soft < hard) => {
            let wanted = Rlimit {
                current: Some(hard),
                maximum: Some(hard),
            };
            match setrlimit(Resource::Nofile, wanted) {
                Ok(()) => Some(hard),
                Err(e) => {
                    tracing::warn!("cannot raise the open-files limit to {hard}: {e}");
                    limit.current
                }
            }
        }
        _ => limit.current,
    };
    raised.map_or(u64::MAX, |soft| soft.saturating_sub(reserve))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> HttpLimits {
        HttpLimits {
            header_read_timeout: Duration::from_secs(2),
            idle_timeout: Duration::from_secs(5),
            write_timeout: Duration::from_secs(3),
            ..HttpLimits::default()
        }
    }

    #[tokio::test(start_paused = true)]
    async fn the_watchdog_follows_the_phases_of_a_connection() {
        let activity = Arc::new(Activity::new());
        let opened = Instant::now();
        let limits = limits();
        assert_eq!(
            activity.deadline(&limits),
            Some((opened + limits.idle_timeout, CloseReason::IdleTimeout))
        );
        tokio::time::advance(Duration::from_secs(1)).await;
        activity.read_some();
        let head = Instant::now();
        assert_eq!(
            activity.deadline(&limits),
            Some((head + limits.header_read_timeout, CloseReason::HeaderTimeout))
        );
        // More bytes of the same head do not move its deadline.
        tokio::time::advance(Duration::from_millis(500)).await;
        activity.read_some();
        assert_eq!(activity.deadline(&limits).unwrap().0, head + limits.header_read_timeout);
        let busy = Busy::begin(&activity);
        assert_eq!(
            activity.deadline(&limits),
            None,
            "a request in progress has no idle deadline"
        );
        activity.write_blocked();
        let stalled = Instant::now();
        assert_eq!(
            activity.deadline(&limits),
            Some((stalled + limits.write_timeout, CloseReason::WriteTimeout))
        );
        activity.wrote_some();
        assert_eq!(activity.deadline(&limits), None);
        // Reads while busy (the body) are not a new head.
        activity.read_some();
        assert_eq!(activity.deadline(&limits), None);
        let drain = busy.clone();
        drop(busy);
        assert_eq!(activity.deadline(&limits), None, "still busy while the body drains");
        tokio::time::advance(Duration::from_secs(1)).await;
        drop(drain);
        let idle = Instant::now();
        assert_eq!(
            activity.deadline(&limits),
            Some((idle + limits.idle_timeout, CloseReason::IdleTimeout))
        );
    }

    #[test]
    fn a_write_stall_counts_while_waiting_for_the_next_request_too() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .unwrap();
        runtime.block_on(async {
            let activity = Activity::new();
            let limits = HttpLimits {
                idle_timeout: Duration::from_secs(60),
                write_timeout: Duration::from_secs(3),
                ..HttpLimits::default()
            };
            activity.write_blocked();
            assert_eq!(activity.deadline(&limits).unwrap().1, CloseReason::WriteTimeout);
        });
    }
}
