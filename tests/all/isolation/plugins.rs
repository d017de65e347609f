//! Deploying, replacing and removing plugins reaches every live worker.

use std::sync::Arc;

use bulkhead::ErrorKind;
use bulkhead::names::PluginName;
use bulkhead::sandbox::InstanceMode;
use bulkhead::service::{DeployError, RemoveError};

use super::{Host, Options, guest};

fn name(name: &str) -> PluginName {
    PluginName::new(name).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deployed_plugin_reaches_live_and_new_workers() {
    let host = Arc::new(Host::start(Options::default()).await);
    host.ok("tenant-a", None, "echo", "x").await;
    let err = host.call("tenant-a", None, "greeter", "x").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PluginNotFound);
    host.service
        .deploy(name("greeter"), guest("echo"), Some(InstanceMode::PerRequest))
        .await
        .unwrap();
    // tenant-a's worker was live before the deploy; tenant-b's is new.
    assert_eq!(host.ok("tenant-a", None, "greeter", "hi").await, "hi");
    assert_eq!(host.ok("tenant-b", None, "greeter", "hi").await, "hi");
    host.service.remove("greeter").await.unwrap();
    let err = host.call("tenant-a", None, "greeter", "x").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PluginNotFound);
    let err = host.service.remove("greeter").await.unwrap_err();
    assert!(matches!(err, RemoveError::NotFound { .. }), "{err}");
    Arc::into_inner(host).unwrap().stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replaced_plugin_finishes_calls_in_flight_on_the_old_version() {
    let host = Arc::new(Host::start(Options::default()).await);
    host.service
        .deploy(name("slow"), guest("sleep"), Some(InstanceMode::PerRequest))
        .await
        .unwrap();
    host.ok("tenant-a", None, "echo", "warm").await;
    let in_flight = {
        let host = Arc::clone(&host);
        tokio::spawn(async move { host.call("tenant-a", None, "slow", "400").await })
    };
    host.wait_load("ns:tenant-a", |load| load.in_flight > 0).await;
    host.service
        .deploy(name("slow"), guest("echo"), Some(InstanceMode::PerRequest))
        .await
        .unwrap();
    assert_eq!(in_flight.await.unwrap().unwrap().output, b"slept 400");
    assert_eq!(
        host.ok("tenant-a", None, "slow", "400").await,
        "400",
        "new calls run the new version"
    );
    Arc::into_inner(host).unwrap().stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_upload_is_refused_and_changes_nothing() {
    let host = Host::start(Options::default()).await;
    host.ok("tenant-a", None, "echo", "x").await;
    let err = host
        .service
        .deploy(
            name("echo"),
            b"definitely not wasm".to_vec(),
            Some(InstanceMode::PerRequest),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, DeployError::Invalid(_)), "{err}");
    assert_eq!(host.ok("tenant-a", None, "echo", "still").await, "still");
    host.stop().await;
}
