//! The sandbox core with the real compiled guests: every guest's
//! expectations (one module per guest, which the build enforces), every way a
//! call can fail, and every way an upload can be wrong.

mod cache;
mod counter;
mod echo;
mod fetch;
mod fs;
mod hog;
mod hostile;
mod http_hello;
mod invalid_uploads;
mod logs;
mod sleep;
mod spin;
mod trap;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bulkhead::names::{Namespace, SessionId};
use bulkhead::sandbox::{CallFailure, CallLimits, CallOutput, InstanceMode, Plugin, Request, Sandbox, SandboxConfig};
use tempfile::TempDir;

/// A guest without a test module of its name here fails to compile.
macro_rules! assert_guest_has_test {
    ($name:ident) => {
        #[allow(unused_imports, reason = "only proves that the module exists")]
        use self::$name as _;
    };
}
bulkhead_guest_artifacts::foreach_guest!(assert_guest_has_test);

/// A sandbox on a fresh data directory. The compile cache is shared by the
/// whole test run (it lives in cargo's target tmp dir) unless a test asks
/// for its own.
pub(crate) struct Harness {
    pub sandbox: Sandbox,
    pub data_dir: PathBuf,
    _tmp: TempDir,
}

impl Harness {
    pub(crate) fn new() -> Self {
        Self::with(|_| {})
    }

    pub(crate) fn with(adjust: impl FnOnce(&mut SandboxConfig)) -> Self {
        let tmp = tempfile::tempdir().expect("tempdir");
        let data_dir = tmp.path().join("data");
        let cache = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("compile-cache");
        let mut config = SandboxConfig::new(cache, &data_dir);
        config.instance_slots = 16;
        adjust(&mut config);
        let sandbox = Sandbox::new(config).expect("sandbox");
        Self {
            sandbox,
            data_dir,
            _tmp: tmp,
        }
    }

    /// Loads the named guest.
    pub(crate) fn guest(&self, name: &str, mode: InstanceMode) -> Arc<Plugin> {
        let bytes = std::fs::read(guest_path(name)).expect("guest artifact");
        self.sandbox.load_plugin(name, &bytes, mode).expect("guest loads")
    }

    pub(crate) async fn call(
        &self,
        plugin: &Plugin,
        namespace: &str,
        payload: &str,
        limits: &CallLimits,
    ) -> Result<CallOutput, CallFailure> {
        self.sandbox.call(plugin, request(namespace, payload), limits).await
    }

    /// A call that must succeed; returns its output as text.
    pub(crate) async fn ok(&self, plugin: &Plugin, namespace: &str, payload: &str) -> String {
        let out = self
            .call(plugin, namespace, payload, &CallLimits::default())
            .await
            .unwrap_or_else(|e| panic!("{} {payload:?} failed: {e}", plugin.name()));
        String::from_utf8(out.output).expect("guest output is UTF-8")
    }
}

pub(crate) fn guest_path(name: &str) -> &'static str {
    bulkhead_guest_artifacts::GUESTS
        .iter()
        .find(|(guest, _)| *guest == name)
        .map(|(_, path)| *path)
        .unwrap_or_else(|| panic!("no guest named {name}"))
}

pub(crate) fn request(namespace: &str, payload: &str) -> Request {
    Request {
        namespace: Namespace::new(namespace).expect("namespace"),
        session: SessionId::default_session(),
        payload: payload.as_bytes().to_vec(),
    }
}

pub(crate) fn limits(fuel: Option<u64>, memory: u64, timeout: Duration) -> CallLimits {
    CallLimits { fuel, memory, timeout }
}
