//! What a store carries: WASI, the memory limiter, the call's deadline and the
//! tags that the guest's logs are written with; and the guest's log path.
//!
//! A guest's log lines (the `log` import, stdout, stderr) are a channel into
//! the host's log, so each one is bounded and sanitised before it is
//! written: cut at [`MAX_LOG_LINE`] bytes, invalid UTF-8 replaced, every
//! control character (newlines included, so no line can forge another)
//! escaped. A call may write at most [`LOG_BUDGET_PER_CALL`] lines, and a
//! worker process (a compartment; its one sandbox) at most [`LOG_RATE`] lines a second over
//! time, in bursts of up to [`LOG_BURST`]; lines over either bound are
//! dropped and counted in a summary line. The worker writes its log through
//! one non-blocking write per line (`worker/log.rs`), so a slow reader of its stderr
//! never stalls a call inside a host function.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use tokio_util::bytes::Bytes;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use super::bindings::bulkhead::plugin::log::{self, Level};
use super::bindings::bulkhead::plugin::types;
use super::http::Hooks;
use super::limits::MemoryLimiter;

/// Longest log message or output line kept, in bytes; the rest is cut.
pub const MAX_LOG_LINE: usize = 4096;
/// Log lines (import calls and output lines) one call may emit.
pub const LOG_BUDGET_PER_CALL: u32 = 1000;
/// Guest log lines a worker process may write per second over time.
pub const LOG_RATE: f64 = 200.0;
/// Guest log lines a worker process may write in one burst.
pub const LOG_BURST: f64 = 1000.0;
/// Resources (streams, pollables, descriptors) one store may hold at once.
/// wasmtime's default is a million; each costs host memory outside
/// `limits.memory`, so a guest that leaks them in a loop is stopped here
/// (its call fails; it is the guest's own trap).
pub const MAX_RESOURCES: usize = 10_000;
/// The in-memory size the headers of one HTTP request or response of a
/// store may take (wasmtime's default is 128 KiB).
const MAX_HTTP_FIELDS: usize = 64 << 10;
/// How many bytes of writing a guest's stdout or stderr stream admits at a
/// time (`check-write`).
const OUTPUT_PERMIT: usize = 4096;

/// Replaces invalid UTF-8 and escapes every control character, so that one
/// guest line is one log line and carries no terminal control sequence.
pub(crate) fn sanitise(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(&bytes[..bytes.len().min(MAX_LOG_LINE)]);
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// The worker process's guest-log token bucket.
struct Bucket {
    tokens: f64,
    at: Instant,
    dropped: u64,
    reported: Instant,
}

/// A sandbox's guest-log token bucket: one per worker process, which has
/// one sandbox (a bucket of its own for each sandbox of a test process).
#[derive(Debug, Default)]
pub(crate) struct LogBucket(Mutex<Option<Bucket>>);

impl std::fmt::Debug for Bucket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bucket")
            .field("tokens", &self.tokens)
            .finish_non_exhaustive()
    }
}

/// Whether the worker process may write one more guest log line now.
fn admit_line(bucket: &LogBucket) -> bool {
    let mut bucket = bucket.0.lock().unwrap_or_else(PoisonError::into_inner);
    let now = Instant::now();
    let b = bucket.get_or_insert(Bucket {
        tokens: LOG_BURST,
        at: now,
        dropped: 0,
        reported: now,
    });
    b.tokens = (b.tokens + now.duration_since(b.at).as_secs_f64() * LOG_RATE).min(LOG_BURST);
    b.at = now;
    if b.tokens >= 1.0 {
        b.tokens -= 1.0;
        if b.dropped > 0 && now.duration_since(b.reported).as_secs() >= 1 {
            tracing::warn!(target: "bulkhead::guest", "dropped {} guest log lines over {LOG_RATE} a second", b.dropped);
            b.dropped = 0;
            b.reported = now;
        }
        true
    } else {
        b.dropped += 1;
        false
    }
}

/// Who is speaking when a guest logs.
#[derive(Debug, Clone, Default)]
pub(crate) struct LogTags {
    pub(crate) plugin: Arc<str>,
    pub(crate) namespace: Arc<str>,
    pub(crate) session: Arc<str>,
    budget: u32,
    warned: bool,
    /// The sandbox's bucket, shared by all its calls.
    bucket: Arc<LogBucket>,
}

impl LogTags {
    pub(crate) fn new(plugin: Arc<str>, namespace: Arc<str>, session: Arc<str>, bucket: Arc<LogBucket>) -> Self {
        Self {
            plugin,
            namespace,
            session,
            budget: LOG_BUDGET_PER_CALL,
            warned: false,
            bucket,
        }
    }

    /// Takes one message from the budget; false once it is spent.
    fn spend(&mut self) -> bool {
        if self.budget > 0 {
            self.budget -= 1;
            return true;
        }
        if !self.warned {
            self.warned = true;
            tracing::warn!(
                target: "bulkhead::guest",
                plugin = &*self.plugin,
                namespace = &*self.namespace,
                "log budget of {LOG_BUDGET_PER_CALL} messages per call spent; dropping the rest"
            );
        }
        false
    }
}

pub(crate) type SharedTags = Arc<Mutex<LogTags>>;

/// The data of every store.
pub(crate) struct CallState {
    wasi: WasiCtx,
    http: WasiHttpCtx,
    /// Where outgoing HTTP requests go (or that they are denied).
    pub(crate) hooks: Hooks,
    table: ResourceTable,
    pub(crate) limiter: MemoryLimiter,
    /// When the running call must end; checked on every epoch tick.
    pub(crate) deadline: Instant,
    pub(crate) tags: SharedTags,
}

impl CallState {
    pub(crate) fn new(wasi: WasiCtx, hooks: Hooks, memory: u64, deadline: Instant, tags: SharedTags) -> Self {
        let mut table = ResourceTable::new();
        table.set_max_capacity(MAX_RESOURCES);
        let mut http = WasiHttpCtx::new();
        http.set_field_size_limit(MAX_HTTP_FIELDS);
        Self {
            wasi,
            http,
            hooks,
            table,
            limiter: MemoryLimiter::new(memory),
            deadline,
            tags,
        }
    }
}

impl WasiView for CallState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for CallState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.hooks,
        }
    }
}

/// Writes one guest line to the log, within the call's budget and the
/// worker's rate.
fn emit(tags: &SharedTags, stream: &str, level: tracing::Level, line: &[u8]) {
    let mut tags = tags.lock().unwrap_or_else(PoisonError::into_inner);
    if !tags.spend() || !admit_line(&tags.bucket) {
        return;
    }
    let text = sanitise(line);
    let (plugin, namespace, session) = (&*tags.plugin, &*tags.namespace, &*tags.session);
    macro_rules! event {
        ($level:expr) => {
            tracing::event!(target: "bulkhead::guest", $level, plugin, namespace, session, stream, "{text}")
        };
    }
    match level {
        tracing::Level::TRACE => event!(tracing::Level::TRACE),
        tracing::Level::DEBUG => event!(tracing::Level::DEBUG),
        tracing::Level::INFO => event!(tracing::Level::INFO),
        tracing::Level::WARN => event!(tracing::Level::WARN),
        tracing::Level::ERROR => event!(tracing::Level::ERROR),
    }
}

impl types::Host for CallState {}

impl log::Host for CallState {
    fn log(&mut self, level: Level, message: String) {
        let level = match level {
            Level::Trace => tracing::Level::TRACE,
            Level::Debug => tracing::Level::DEBUG,
            Level::Info => tracing::Level::INFO,
            Level::Warn => tracing::Level::WARN,
            Level::Error => tracing::Level::ERROR,
        };
        emit(&self.tags, "log", level, message.as_bytes());
    }
}

/// A guest's stdout or stderr: each line goes to the log, tagged. Every
/// `get-stdout` of a store shares one line buffer, and a stream costs the
/// host a few bytes (no task, no buffer of its own); how many a store may
/// hold at once is bounded by [`MAX_RESOURCES`].
#[derive(Debug, Clone)]
pub(crate) struct LogStream {
    stream: &'static str,
    tags: SharedTags,
    line: Arc<Mutex<Vec<u8>>>,
}

impl LogStream {
    pub(crate) fn new(stream: &'static str, tags: SharedTags) -> Self {
        Self {
            stream,
            tags,
            line: Arc::default(),
        }
    }

    /// Appends `bytes`; every complete line (or [`MAX_LOG_LINE`] bytes
    /// without a newline) goes to the log.
    fn write(&self, bytes: &[u8]) {
        let mut line = self.line.lock().unwrap_or_else(PoisonError::into_inner);
        for &byte in bytes {
            if byte == b'\n' {
                self.flush_line(&mut line);
            } else {
                line.push(byte);
                if line.len() >= MAX_LOG_LINE {
                    self.flush_line(&mut line);
                }
            }
        }
    }

    fn flush_line(&self, line: &mut Vec<u8>) {
        if !line.is_empty() {
            let text = line.strip_suffix(b"\r").unwrap_or(line);
            emit(&self.tags, self.stream, tracing::Level::INFO, text);
            line.clear();
        }
    }
}

impl Drop for LogStream {
    fn drop(&mut self) {
        // The last handle of a store's stream writes what is left.
        if Arc::strong_count(&self.line) == 1 {
            let mut line = self.line.lock().unwrap_or_else(PoisonError::into_inner);
            self.flush_line(&mut line);
        }
    }
}

impl IsTerminal for LogStream {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for LogStream {
    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(tokio::io::sink())
    }

    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for LogStream {
    async fn ready(&mut self) {}
}

impl OutputStream for LogStream {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        LogStream::write(self, &bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(OUTPUT_PERMIT)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_lines_are_cut_and_stay_valid_text() {
        let long = "é".repeat(MAX_LOG_LINE);
        let cut = sanitise(long.as_bytes());
        assert!(cut.len() <= MAX_LOG_LINE + 3, "{}", cut.len());
        assert!(cut.chars().all(|c| c == 'é' || c == '\u{fffd}'));
        assert_eq!(sanitise(b"short"), "short");
    }

    #[test]
    fn control_characters_cannot_forge_a_log_line() {
        let forged = sanitise(b"ok\nERROR bulkhead: admin token accepted\r\x1b[2J\x07");
        assert!(!forged.chars().any(char::is_control), "{forged:?}");
        assert_eq!(forged, "ok\\nERROR bulkhead: admin token accepted\\r\\u{1b}[2J\\u{7}");
        assert_eq!(sanitise(b"\xff\xfeok"), "\u{fffd}\u{fffd}ok");
    }

    #[test]
    fn the_log_budget_runs_out() {
        let mut tags = LogTags::new("p".into(), "ns".into(), "s".into(), Arc::default());
        let allowed = (0..LOG_BUDGET_PER_CALL + 10).filter(|_| tags.spend()).count();
        assert_eq!(allowed, LOG_BUDGET_PER_CALL as usize);
    }
}
