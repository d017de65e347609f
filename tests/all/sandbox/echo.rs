use std::sync::Arc;

use bulkhead::sandbox::{CallLimits, InstanceMode};
use tokio::task::JoinSet;

use super::{Harness, request};

#[tokio::test]
async fn echo_returns_its_payload() {
    let h = Harness::new();
    let echo = h.guest("echo", InstanceMode::PerRequest);
    assert_eq!(h.ok(&echo, "tenant-a", "hello").await, "hello");
    assert_eq!(h.ok(&echo, "tenant-a", "").await, "");
}

#[tokio::test]
async fn echo_returns_binary_payloads_byte_for_byte() {
    let h = Harness::new();
    let echo = h.guest("echo", InstanceMode::PerRequest);
    let payload: Vec<u8> = (0..=255).cycle().take(100_000).collect();
    let mut req = request("tenant-a", "");
    req.payload = payload.clone();
    let out = h.sandbox.call(&echo, req, &CallLimits::default()).await.unwrap();
    assert_eq!(out.output, payload);
    assert!(out.fuel_consumed > 0, "fuel is metered");
}

#[tokio::test]
async fn echo_is_embedded_as_a_built_in_plugin() {
    let h = Harness::new();
    let echo = h
        .sandbox
        .load_plugin("echo", bulkhead::builtin::ECHO.wasm, InstanceMode::PerRequest)
        .unwrap();
    assert_eq!(h.ok(&echo, "tenant-a", "built in").await, "built in");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_concurrent_calls_each_get_their_own_instance() {
    let h = Arc::new(Harness::new());
    let echo = h.guest("echo", InstanceMode::PerRequest);
    let mut calls = JoinSet::new();
    for i in 0..50 {
        let (h, echo) = (Arc::clone(&h), Arc::clone(&echo));
        calls.spawn(async move { (i, h.ok(&echo, &format!("tenant-{}", i % 5), &i.to_string()).await) });
    }
    while let Some(done) = calls.join_next().await {
        let (i, out) = done.unwrap();
        assert_eq!(out, i.to_string());
    }
}

#[tokio::test]
async fn a_plugin_that_cannot_open_files_leaves_the_data_directory_alone() {
    let h = Harness::new();
    let echo = h.guest("echo", InstanceMode::PerRequest);
    assert!(!echo.opens_files(), "echo does not import wasi:filesystem/preopens");
    assert_eq!(h.ok(&echo, "tenant-a", "hello").await, "hello");
    assert!(
        !h.data_dir.join("tenant-a").exists(),
        "no directory is created for a plugin that cannot open it"
    );
}
