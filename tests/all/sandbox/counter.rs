use bulkhead::sandbox::InstanceMode;

use super::Harness;

#[tokio::test]
async fn counter_counts_up_when_kept_per_process() {
    let h = Harness::new();
    let counter = h.guest("counter", InstanceMode::PerProcess);
    for expected in ["1", "2", "3"] {
        assert_eq!(h.ok(&counter, "tenant-a", "").await, expected);
    }
    assert!(counter.has_kept_instance().await);
}

#[tokio::test]
async fn counter_is_always_one_per_request() {
    let h = Harness::new();
    let counter = h.guest("counter", InstanceMode::PerRequest);
    for _ in 0..3 {
        assert_eq!(h.ok(&counter, "tenant-a", "").await, "1");
    }
    assert!(!counter.has_kept_instance().await);
}

#[tokio::test]
async fn an_unbound_sandbox_shares_one_kept_instance_across_namespaces() {
    let h = Harness::new();
    let counter = h.guest("counter", InstanceMode::PerProcess);
    assert_eq!(h.ok(&counter, "tenant-a", "").await, "1");
    assert_eq!(h.ok(&counter, "tenant-b", "").await, "2");
}

#[tokio::test]
async fn a_bound_sandbox_refuses_other_namespaces() {
    let h = Harness::new();
    h.sandbox.bind_namespace("tenant-a".parse().unwrap()).unwrap();
    assert_eq!(
        h.sandbox
            .bind_namespace("tenant-b".parse().unwrap())
            .unwrap_err()
            .as_str(),
        "tenant-a"
    );
    let counter = h.guest("counter", InstanceMode::PerProcess);
    assert_eq!(h.ok(&counter, "tenant-a", "").await, "1");
    let err = h.call(&counter, "tenant-b", "", &Default::default()).await.unwrap_err();
    assert_eq!(err.kind(), bulkhead::ErrorKind::Forbidden, "{err}");
    assert_eq!(h.ok(&counter, "tenant-a", "").await, "2");
}
