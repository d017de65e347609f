use std::time::{Duration, Instant};

use bulkhead::ErrorKind;
use bulkhead::sandbox::{CallLimits, InstanceMode};

use super::{Harness, limits};

#[tokio::test]
async fn spin_is_stopped_by_fuel_and_the_engine_carries_on() {
    let h = Harness::new();
    let spin = h.guest("spin", InstanceMode::PerRequest);
    let echo = h.guest("echo", InstanceMode::PerRequest);
    let tight = limits(Some(10_000_000), CallLimits::DEFAULT_MEMORY, Duration::from_secs(60));
    let err = h.call(&spin, "tenant-a", "", &tight).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::FuelExhausted, "{err}");
    assert!(err.to_string().contains("10000000"), "{err}");
    for _ in 0..3 {
        assert_eq!(h.ok(&echo, "tenant-a", "still here").await, "still here");
    }
}

#[tokio::test]
async fn spin_with_unlimited_fuel_is_stopped_by_its_timeout() {
    let h = Harness::new();
    let spin = h.guest("spin", InstanceMode::PerRequest);
    let timeout = Duration::from_millis(500);
    let started = Instant::now();
    let err = h
        .call(
            &spin,
            "tenant-a",
            "",
            &limits(None, CallLimits::DEFAULT_MEMORY, timeout),
        )
        .await
        .unwrap_err();
    let took = started.elapsed();
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
    assert!(took >= timeout, "stopped early, after {took:?}");
    // A guest that is never stopped spins forever; a busy machine may be
    // late to stop it, so the bound is generous.
    assert!(
        took < Duration::from_secs(10),
        "took {took:?} for a {timeout:?} deadline"
    );
}

#[tokio::test]
async fn a_kept_instance_that_ran_out_of_fuel_is_thrown_away() {
    let h = Harness::new();
    let spin = h.guest("spin", InstanceMode::PerProcess);
    let tight = limits(Some(1_000_000), CallLimits::DEFAULT_MEMORY, Duration::from_secs(60));
    let err = h.call(&spin, "tenant-a", "", &tight).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::FuelExhausted, "{err}");
    assert!(!spin.has_kept_instance().await);
}
