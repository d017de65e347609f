//! Guest logs reach the host's log, tagged with plugin and namespace.

use std::io::Write;
use std::sync::{Arc, Mutex};

use bulkhead::sandbox::{CallLimits, InstanceMode};
use tracing_subscriber::fmt::MakeWriter;

use super::Harness;

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Captured {
    type Writer = Captured;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

fn capture() -> (Captured, tracing::subscriber::DefaultGuard) {
    let captured = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(captured.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::INFO)
        .finish();
    let guard = tracing::subscriber::set_default(subscriber);
    (captured, guard)
}

#[tokio::test(flavor = "current_thread")]
async fn the_log_import_is_tagged_with_namespace_session_and_plugin() {
    let h = Harness::new();
    let fs = h.guest("fs", InstanceMode::PerRequest);
    let (captured, _guard) = capture();
    h.ok(&fs, "tenant-a", "list /data").await;
    let text = captured.text();
    let line = text
        .lines()
        .find(|l| l.contains("fs list /data"))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(line.contains("INFO"), "{line}");
    assert!(line.contains("namespace=\"tenant-a\""), "{line}");
    assert!(line.contains("session=\"default\""), "{line}");
    assert!(line.contains("plugin=\"fs\""), "{line}");
}

#[tokio::test(flavor = "current_thread")]
async fn guest_stderr_goes_to_the_log() {
    let h = Harness::new();
    let trap = h.guest("trap", InstanceMode::PerRequest);
    let (captured, _guard) = capture();
    let _ = h.call(&trap, "tenant-b", "panic", &CallLimits::default()).await;
    let text = captured.text();
    let line = text
        .lines()
        .find(|l| l.contains("deliberate panic"))
        .unwrap_or_else(|| panic!("no panic message in the log:\n{text}"));
    assert!(line.contains("stream=\"stderr\""), "{line}");
    assert!(line.contains("namespace=\"tenant-b\""), "{line}");
}
