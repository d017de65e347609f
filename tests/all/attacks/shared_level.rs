//! Point 9: at level `none` tenants take turns in one worker's pooling
//! allocator; nothing of one instance's memory reaches the next, and a
//! component that needs a wasm feature the host turns off is refused.

use std::sync::Arc;

use bulkhead::isolation::IsolationLevel;
use bulkhead::names::PluginName;
use bulkhead::sandbox::InvalidPlugin;
use bulkhead::service::DeployError;

use super::{Neighbour, wat};
use crate::isolation::{Host, Options};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_never_sees_the_memory_of_another_tenants_earlier_instance() {
    let host = Arc::new(
        Host::start(Options {
            level: IsolationLevel::None,
            ..Options::default()
        })
        .await,
    );
    let neighbour = Neighbour::start(&host, "neighbour").await;
    for round in 0..50 {
        assert_eq!(host.ok("attacker", None, "hostile", "leak-write").await, "written");
        assert_eq!(
            host.ok("victim", None, "hostile", "leak-read").await,
            "0",
            "round {round}"
        );
    }
    neighbour.stop().await.assert_untouched();
    Arc::into_inner(host).unwrap().stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn components_that_need_a_turned_off_wasm_feature_are_refused() {
    let host = Host::start(Options::default()).await;
    for (feature, fields) in [
        ("memory64", "(memory $big i64 1)"),
        ("tail calls", "(func $f (return_call $f))"),
        ("threads' shared memory", "(memory $shared 1 1 shared)"),
        ("multiple memories", "(memory $second 1)"),
        (
            "relaxed SIMD",
            "(func (param v128 v128) (result v128) (i32x4.relaxed_trunc_f32x4_s (local.get 0)))",
        ),
    ] {
        let name = PluginName::new("uses-feature").unwrap();
        let err = host
            .service
            .deploy(name, wat::with_module_fields(fields), None)
            .await
            .expect_err(feature);
        assert!(
            matches!(err, DeployError::Invalid(InvalidPlugin::Malformed(_))),
            "{feature}: {err}"
        );
    }
    assert_eq!(host.ok("tenant-a", None, "echo", "fine").await, "fine");
    host.stop().await;
}
