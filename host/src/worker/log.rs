//! The worker's log: lines to standard error (a pipe the host reads), each
//! written by the thread that logs it with one non-blocking `write`.
//!
//! A worker never waits for its log: when the pipe is full (the host reads
//! slowly) the line is dropped and counted, and the count is written before
//! the next line that fits. There is no writer thread, so the sandbox's
//! per-thread layers (identity, Landlock) cover every thread the worker has.

use std::io::{self, Write};
use std::sync::atomic::{AtomicU64, Ordering};

use rustix::fs::{OFlags, fcntl_getfl, fcntl_setfl};

/// Lines dropped because the pipe was full, not yet reported.
static DROPPED: AtomicU64 = AtomicU64::new(0);

/// Installs the log with `filter` (tracing's env-filter syntax; `info` if it
/// does not parse).
pub(super) fn init(filter: &str) {
    let stderr = io::stderr();
    // Without O_NONBLOCK a full pipe would block the logging thread; the
    // write end is the worker's alone, so the flag changes nothing else.
    if let Ok(flags) = fcntl_getfl(&stderr) {
        let _ = fcntl_setfl(&stderr, flags | OFlags::NONBLOCK);
    }
    let filter =
        tracing_subscriber::EnvFilter::try_new(filter).unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(|| LossyStderr)
        .with_ansi(false)
        .with_target(false)
        .init();
}

/// One formatted line at a time to standard error, dropped when the pipe is
/// full.
struct LossyStderr;

impl Write for LossyStderr {
    fn write(&mut self, line: &[u8]) -> io::Result<usize> {
        let dropped = DROPPED.swap(0, Ordering::Relaxed);
        if dropped > 0 {
            let note = format!("(the worker dropped {dropped} log lines: its log pipe was full)\n");
            if !write_some(note.as_bytes()) {
                DROPPED.fetch_add(dropped, Ordering::Relaxed);
            }
        }
        if !write_some(line) {
            DROPPED.fetch_add(1, Ordering::Relaxed);
        }
        // The line is dealt with either way; the formatter must not retry.
        Ok(line.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Writes what fits of `bytes`; `false` if nothing did. A line up to
/// `PIPE_BUF` (4 KiB) is written whole or not at all.
fn write_some(mut bytes: &[u8]) -> bool {
    let stderr = io::stderr();
    let mut wrote = false;
    while !bytes.is_empty() {
        match rustix::io::write(&stderr, bytes) {
            Ok(0) => break,
            Ok(n) => {
                wrote = true;
                bytes = &bytes[n..];
            }
            Err(rustix::io::Errno::INTR) => {}
            Err(_) => break,
        }
    }
    wrote
}
