//! What a store carries: WASI, the memory limiter, the call's deadline and the
//! tags that the guest's logs are written with.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Instant;

use tokio::io::AsyncWrite;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::bindings::bulkhead::plugin::log::{self, Level};
use super::bindings::bulkhead::plugin::types;
use super::limits::MemoryLimiter;

/// Longest log message or output line kept; the rest is cut.
const MAX_LOG_LINE: usize = 4096;
/// Log messages (import calls and output lines) one call may emit; a guest
/// that logs in a loop cannot flood the host's log.
const LOG_BUDGET_PER_CALL: u32 = 1000;

/// Who is speaking when a guest logs.
#[derive(Debug, Clone, Default)]
pub(crate) struct LogTags {
    pub(crate) plugin: Arc<str>,
    pub(crate) namespace: Arc<str>,
    pub(crate) session: Arc<str>,
    budget: u32,
    warned: bool,
}

impl LogTags {
    pub(crate) fn new(plugin: Arc<str>, namespace: Arc<str>, session: Arc<str>) -> Self {
        Self {
            plugin,
            namespace,
            session,
            budget: LOG_BUDGET_PER_CALL,
            warned: false,
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
    table: ResourceTable,
    pub(crate) limiter: MemoryLimiter,
    /// When the running call must end; checked on every epoch tick.
    pub(crate) deadline: Instant,
    pub(crate) tags: SharedTags,
}

impl CallState {
    pub(crate) fn new(wasi: WasiCtx, memory: u64, deadline: Instant, tags: SharedTags) -> Self {
        Self {
            wasi,
            table: ResourceTable::new(),
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

fn cut(message: &str) -> &str {
    if message.len() <= MAX_LOG_LINE {
        return message;
    }
    let mut end = MAX_LOG_LINE;
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    &message[..end]
}

impl types::Host for CallState {}

impl log::Host for CallState {
    fn log(&mut self, level: Level, message: String) {
        let mut tags = self.tags.lock().unwrap_or_else(PoisonError::into_inner);
        if !tags.spend() {
            return;
        }
        let message = cut(&message);
        let (plugin, namespace, session) = (&*tags.plugin, &*tags.namespace, &*tags.session);
        macro_rules! emit {
            ($level:expr) => {
                tracing::event!(target: "bulkhead::guest", $level, plugin, namespace, session, "{message}")
            };
        }
        match level {
            Level::Trace => emit!(tracing::Level::TRACE),
            Level::Debug => emit!(tracing::Level::DEBUG),
            Level::Info => emit!(tracing::Level::INFO),
            Level::Warn => emit!(tracing::Level::WARN),
            Level::Error => emit!(tracing::Level::ERROR),
        }
    }
}

/// A guest's stdout or stderr: each line goes to the log, tagged.
#[derive(Debug, Clone)]
pub(crate) struct LogStream {
    stream: &'static str,
    tags: SharedTags,
}

impl LogStream {
    pub(crate) fn new(stream: &'static str, tags: SharedTags) -> Self {
        Self { stream, tags }
    }
}

impl IsTerminal for LogStream {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for LogStream {
    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(LineWriter {
            out: self.clone(),
            line: Vec::new(),
        })
    }
}

/// Splits written bytes into lines; a line longer than [`MAX_LOG_LINE`] is
/// emitted in pieces.
struct LineWriter {
    out: LogStream,
    line: Vec<u8>,
}

impl LineWriter {
    fn emit(&mut self) {
        if self.line.is_empty() {
            return;
        }
        let text = String::from_utf8_lossy(&self.line);
        let text = text.trim_end_matches(['\n', '\r']);
        let mut tags = self.out.tags.lock().unwrap_or_else(PoisonError::into_inner);
        if tags.spend() {
            tracing::info!(
                target: "bulkhead::guest",
                plugin = &*tags.plugin,
                namespace = &*tags.namespace,
                session = &*tags.session,
                stream = self.out.stream,
                "{}",
                cut(text)
            );
        }
        self.line.clear();
    }
}

impl AsyncWrite for LineWriter {
    fn poll_write(mut self: Pin<&mut Self>, _: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        for &byte in buf {
            self.line.push(byte);
            if byte == b'\n' || self.line.len() >= MAX_LOG_LINE {
                self.emit();
            }
        }
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.emit();
        Poll::Ready(Ok(()))
    }
}

impl Drop for LineWriter {
    fn drop(&mut self) {
        self.emit();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_messages_are_cut_on_a_char_boundary() {
        let long = "é".repeat(MAX_LOG_LINE);
        let cut = cut(&long);
        assert!(cut.len() <= MAX_LOG_LINE);
        assert!(cut.chars().all(|c| c == 'é'));
        assert_eq!(super::cut("short"), "short");
    }

    #[test]
    fn the_log_budget_runs_out() {
        let mut tags = LogTags::new("p".into(), "ns".into(), "s".into());
        let allowed = (0..LOG_BUDGET_PER_CALL + 10).filter(|_| tags.spend()).count();
        assert_eq!(allowed, LOG_BUDGET_PER_CALL as usize);
    }
}
