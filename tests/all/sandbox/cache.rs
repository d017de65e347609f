use bulkhead::sandbox::{InstanceMode, PluginError, Sandbox, SandboxConfig};

use super::{Harness, guest_path};

fn private_cache() -> (tempfile::TempDir, Sandbox) {
    let tmp = tempfile::tempdir().unwrap();
    let sandbox = Sandbox::new(SandboxConfig::new(tmp.path().join("cache"), tmp.path().join("data"))).unwrap();
    (tmp, sandbox)
}

#[test]
fn a_second_load_of_the_same_plugin_hits_the_compile_cache() {
    let (_tmp, sandbox) = private_cache();
    let bytes = std::fs::read(guest_path("echo")).unwrap();
    let first = sandbox.compile(&bytes).unwrap();
    assert!(!first.cache_hit);
    assert!(first.artifact.path.is_file());
    let second = sandbox.compile(&bytes).unwrap();
    assert!(second.cache_hit, "the second load compiled again");
    assert_eq!(second.artifact, first.artifact);
    assert_eq!(first.artifact.sha256, bulkhead::sandbox::sha256(&bytes));
}

#[test]
fn another_sandbox_on_the_same_cache_reuses_the_artifact() {
    let tmp = tempfile::tempdir().unwrap();
    let config = SandboxConfig::new(tmp.path().join("cache"), tmp.path().join("data"));
    let bytes = std::fs::read(guest_path("counter")).unwrap();
    let first = Sandbox::new(config.clone()).unwrap().compile(&bytes).unwrap();
    let again = Sandbox::new(config).unwrap().compile(&bytes).unwrap();
    assert!(!first.cache_hit && again.cache_hit);
}

#[tokio::test]
async fn a_damaged_cache_entry_is_compiled_again() {
    let (_tmp, sandbox) = private_cache();
    let bytes = std::fs::read(guest_path("echo")).unwrap();
    let first = sandbox.compile(&bytes).unwrap();
    std::fs::write(&first.artifact.path, b"not an artifact").unwrap();
    let again = sandbox.compile(&bytes).unwrap();
    assert!(!again.cache_hit);
    let echo = sandbox.load("echo", again.artifact, InstanceMode::PerRequest).unwrap();
    let out = sandbox
        .call(&echo, super::request("tenant-a", "ok"), &Default::default())
        .await
        .unwrap();
    assert_eq!(out.output, b"ok");
}

#[test]
fn an_unwritable_cache_is_a_host_error_not_an_invalid_plugin() {
    let (tmp, sandbox) = private_cache();
    let bytes = std::fs::read(guest_path("echo")).unwrap();
    // Replace the cache's directory by a file: nothing can be stored.
    let cache_dir = std::fs::read_dir(tmp.path().join("cache"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    std::fs::remove_dir_all(&cache_dir).unwrap();
    std::fs::write(&cache_dir, b"").unwrap();
    let err = sandbox.compile(&bytes).unwrap_err();
    assert!(matches!(err, PluginError::Cache { .. }), "{err}");
    assert_eq!(err.kind(), None);
}

#[test]
fn the_harness_shares_its_cache_across_tests() {
    let h = Harness::new();
    let bytes = std::fs::read(guest_path("echo")).unwrap();
    h.sandbox.compile(&bytes).unwrap();
    assert!(h.sandbox.compile(&bytes).unwrap().cache_hit);
}
