//! Point 2: a compile bomb costs a limited child process, never the host:
//! it is refused at its bound with `invalid_plugin`, while a neighbour's
//! calls go on; the next upload compiles as usual.

use std::sync::Arc;
use std::time::Duration;

use bulkhead::names::PluginName;
use bulkhead::sandbox::InvalidPlugin;
use bulkhead::service::DeployError;
use bulkhead::supervisor::CompileLimits;

use super::{Neighbour, wat};
use crate::isolation::{Host, Options, guest};

/// A small upload (about a megabyte) that takes Cranelift minutes: a long
/// loop body of 100,000 additions over 2,000 locals, all of them live.
pub(crate) fn compile_bomb() -> Vec<u8> {
    let locals = 2000;
    let mut body = String::new();
    for i in 0..100_000usize {
        let (a, b, c) = ((i * 7919) % locals, (i * 104_729) % locals, (i * 1_299_709) % locals);
        body.push_str(&format!("(local.set {c} (i64.add (local.get {a}) (local.get {b})))\n"));
    }
    let mut stores = String::new();
    for l in (0..locals).step_by(97) {
        stores.push_str(&format!("(i64.store (i32.const {}) (local.get {l}))\n", l * 8));
    }
    let bomb = format!(
        "(func $bomb (export \"bomb\") (local {}) (loop $again {body} (br_if $again (i32.eqz (i32.wrap_i64 (local.get 1))))) {stores})",
        "i64 ".repeat(locals)
    );
    wat::with_module_fields(&bomb)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_compile_bomb_is_refused_at_its_bound_and_the_neighbour_notices_nothing() {
    let host = Arc::new(
        Host::start(Options {
            compile: CompileLimits {
                memory_max: 1 << 30,
                timeout: Duration::from_secs(3),
            },
            ..Options::default()
        })
        .await,
    );
    let neighbour = Neighbour::start(&host, "neighbour").await;
    let err = host
        .service
        .deploy(PluginName::new("bomb").unwrap(), compile_bomb(), None)
        .await
        .unwrap_err();
    assert!(
        matches!(err, DeployError::Invalid(InvalidPlugin::CompileLimit(_))),
        "{err}"
    );
    assert_eq!(err.kind(), bulkhead::ErrorKind::InvalidPlugin);
    assert!(err.to_string().contains("compile_timeout"), "{err}");
    host.service
        .deploy(PluginName::new("after").unwrap(), guest("echo"), None)
        .await
        .expect("the next upload compiles");
    assert_eq!(host.ok("neighbour", None, "after", "hi").await, "hi");
    neighbour.stop().await.assert_untouched();
    Arc::into_inner(host).unwrap().stop().await;
}
