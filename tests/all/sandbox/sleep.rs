use std::time::{Duration, Instant};

use bulkhead::ErrorKind;
use bulkhead::sandbox::{CallLimits, InstanceMode};

use super::{Harness, limits};

#[tokio::test]
async fn sleep_sleeps_through_the_wasi_clock() {
    let h = Harness::new();
    let sleep = h.guest("sleep", InstanceMode::PerRequest);
    let started = Instant::now();
    assert_eq!(h.ok(&sleep, "tenant-a", "20").await, "slept 20");
    assert!(started.elapsed() >= Duration::from_millis(20));
}

#[tokio::test]
async fn sleep_refuses_a_payload_that_is_not_a_number() {
    let h = Harness::new();
    let sleep = h.guest("sleep", InstanceMode::PerRequest);
    let err = h
        .call(&sleep, "tenant-a", "abc", &CallLimits::default())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::GuestError, "{err}");
    assert!(
        err.to_string().starts_with("invalid input:") && err.to_string().contains("abc"),
        "{err}"
    );
}

#[tokio::test]
async fn a_blocked_host_call_is_cut_at_the_timeout() {
    let h = Harness::new();
    let sleep = h.guest("sleep", InstanceMode::PerRequest);
    let started = Instant::now();
    let err = h
        .call(
            &sleep,
            "tenant-a",
            "5000",
            &limits(None, CallLimits::DEFAULT_MEMORY, Duration::from_millis(200)),
        )
        .await
        .unwrap_err();
    let took = started.elapsed();
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
    // Cut short: it asked to sleep 5 s (a busy machine may be late to cut it).
    assert!(took < Duration::from_millis(4000), "took {took:?}");
}

#[tokio::test]
async fn a_kept_instance_that_timed_out_is_thrown_away() {
    let h = Harness::new();
    let sleep = h.guest("sleep", InstanceMode::PerProcess);
    assert_eq!(h.ok(&sleep, "tenant-a", "1").await, "slept 1");
    assert!(sleep.has_kept_instance().await);
    let short = limits(None, CallLimits::DEFAULT_MEMORY, Duration::from_millis(100));
    let err = h.call(&sleep, "tenant-a", "5000", &short).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout);
    assert!(!sleep.has_kept_instance().await);
    assert_eq!(h.ok(&sleep, "tenant-a", "1").await, "slept 1");
}
