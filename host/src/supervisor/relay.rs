//! The host's relay of a worker's stderr into its own log.
//!
//! A worker is not trusted here (it may be an escaped guest): a line is cut
//! at [`MAX_RELAY_LINE`] bytes whatever the worker writes (no newline never
//! makes the host buffer more), invalid UTF-8 is replaced and control
//! characters are escaped (the worker already escapes its guests' lines;
//! this covers a worker that does not), and at most [`RELAY_RATE`] lines a
//! second (in bursts of [`RELAY_BURST`]) reach the log; the rest are counted
//! and reported in one line.

use std::time::Instant;

use tokio::io::AsyncReadExt;

use crate::sandbox::MAX_LOG_LINE;

/// The longest line relayed, in bytes: a worker's own prefix (timestamp,
/// level, fields) plus a guest line of [`MAX_LOG_LINE`].
pub(crate) const MAX_RELAY_LINE: usize = MAX_LOG_LINE + 1024;
/// Lines a second one worker's stderr may put into the host's log.
pub(crate) const RELAY_RATE: f64 = 500.0;
/// Lines one worker's stderr may put into the host's log in one burst.
pub(crate) const RELAY_BURST: f64 = 2000.0;

/// Relays `stderr` of worker `pid` until it closes.
pub(crate) fn relay_stderr(pid: u32, stderr: std::process::ChildStderr) {
    let Ok(pipe) = tokio::net::unix::pipe::Receiver::from_owned_fd(std::os::fd::OwnedFd::from(stderr)) else {
        return;
    };
    tokio::spawn(relay(pid, pipe));
}

async fn relay(pid: u32, mut pipe: impl tokio::io::AsyncRead + Unpin) {
    let mut lines = Lines::default();
    let mut chunk = vec![0u8; 8192];
    loop {
        let n = match pipe.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        for line in lines.push(&chunk[..n]) {
            lines.emit(pid, &line);
        }
    }
    if let Some(line) = lines.finish() {
        lines.emit(pid, &line);
    }
}

/// Splits bytes into bounded lines, and rate-limits what is emitted.
struct Lines {
    current: Vec<u8>,
    /// The current line was cut: skip the rest of it.
    skipping: bool,
    tokens: f64,
    at: Instant,
    dropped: u64,
}

impl Default for Lines {
    fn default() -> Self {
        Self {
            current: Vec::new(),
            skipping: false,
            tokens: RELAY_BURST,
            at: Instant::now(),
            dropped: 0,
        }
    }
}

impl Lines {
    /// The complete lines in `bytes` (a line over [`MAX_RELAY_LINE`] is
    /// emitted cut, marked, and the rest of it dropped).
    fn push(&mut self, bytes: &[u8]) -> Vec<Vec<u8>> {
        let mut done = Vec::new();
        for &byte in bytes {
            if byte == b'\n' {
                if !self.skipping {
                    done.push(std::mem::take(&mut self.current));
                }
                self.skipping = false;
                self.current.clear();
            } else if !self.skipping {
                self.current.push(byte);
                if self.current.len() >= MAX_RELAY_LINE {
                    let mut cut = std::mem::take(&mut self.current);
                    cut.extend_from_slice(" [cut]".as_bytes());
                    done.push(cut);
                    self.skipping = true;
                }
            }
        }
        done
    }

    fn finish(&mut self) -> Option<Vec<u8>> {
        (!self.current.is_empty() && !self.skipping).then(|| std::mem::take(&mut self.current))
    }

    fn admit(&mut self) -> bool {
        let now = Instant::now();
        self.tokens = (self.tokens + now.duration_since(self.at).as_secs_f64() * RELAY_RATE).min(RELAY_BURST);
        self.at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            self.dropped += 1;
            false
        }
    }

    fn emit(&mut self, pid: u32, line: &[u8]) {
        if !self.admit() {
            return;
        }
        if self.dropped > 0 {
            tracing::warn!(target: "bulkhead::worker", pid, "dropped {} lines of this worker's log over {RELAY_RATE} a second", self.dropped);
            self.dropped = 0;
        }
        let text = crate::sandbox::sanitise(line);
        tracing::info!(target: "bulkhead::worker", pid, "{text}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_split_and_a_line_without_end_is_cut() {
        let mut lines = Lines::default();
        assert_eq!(lines.push(b"one\ntw"), [b"one".to_vec()]);
        assert_eq!(lines.push(b"o\n"), [b"two".to_vec()]);
        let endless = vec![b'x'; MAX_RELAY_LINE * 3];
        let out = lines.push(&endless);
        assert_eq!(out.len(), 1, "one cut line, the rest skipped");
        assert!(out[0].ends_with(b" [cut]") && out[0].len() == MAX_RELAY_LINE + 6);
        assert_eq!(
            lines.push(b"more\nnext\n"),
            [b"next".to_vec()],
            "the cut line's tail is skipped"
        );
        assert!(lines.finish().is_none());
    }

    #[test]
    fn a_flood_is_rate_limited() {
        let mut lines = Lines::default();
        let admitted = (0..RELAY_BURST as usize * 2).filter(|_| lines.admit()).count();
        assert!(admitted < RELAY_BURST as usize + 50, "{admitted}");
        assert!(lines.dropped > 0);
    }

    #[tokio::test]
    async fn the_relay_holds_at_most_one_bounded_line_of_an_endless_stream() {
        // An endless line: the relay must end when the stream does, having
        // held no more than its line bound.
        let (mut write, read) = tokio::io::duplex(1 << 16);
        let relay = tokio::spawn(relay(1, read));
        let chunk = vec![b'x'; 1 << 16];
        for _ in 0..64 {
            tokio::io::AsyncWriteExt::write_all(&mut write, &chunk).await.unwrap();
        }
        drop(write);
        relay.await.unwrap();
    }
}
