use bulkhead::ErrorKind;
use bulkhead::sandbox::{CallLimits, InstanceMode};

use super::Harness;

#[tokio::test]
async fn every_kind_of_trap_is_a_guest_trap() {
    let h = Harness::new();
    let trap = h.guest("trap", InstanceMode::PerRequest);
    for (payload, expect) in [
        ("panic", "unreachable"),
        ("unreachable", "unreachable"),
        ("overflow", "stack exhausted"),
    ] {
        let err = h
            .call(&trap, "tenant-a", payload, &CallLimits::default())
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::GuestTrap, "{payload}: {err}");
        assert!(err.to_string().contains(expect), "{payload}: {err}");
    }
}

#[tokio::test]
async fn a_kept_instance_that_trapped_is_replaced_by_a_fresh_one() {
    let h = Harness::new();
    let trap = h.guest("trap", InstanceMode::PerProcess);
    let err = h
        .call(&trap, "tenant-a", "panic", &CallLimits::default())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::GuestTrap);
    assert!(!trap.has_kept_instance().await, "a trapped store must not be reused");
    let err = h
        .call(&trap, "tenant-a", "unreachable", &CallLimits::default())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::GuestTrap);
}
