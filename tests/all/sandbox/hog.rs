use std::time::Duration;

use bulkhead::ErrorKind;
use bulkhead::sandbox::InstanceMode;

use super::{Harness, limits};

#[tokio::test]
async fn hog_is_stopped_by_the_memory_limit() {
    let h = Harness::new();
    let hog = h.guest("hog", InstanceMode::PerRequest);
    let err = h
        .call(&hog, "tenant-a", "", &limits(None, 16 << 20, Duration::from_secs(60)))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::MemoryLimit, "{err}");
    assert!(err.to_string().contains(&(16u64 << 20).to_string()), "{err}");
    let echo = h.guest("echo", InstanceMode::PerRequest);
    assert_eq!(h.ok(&echo, "tenant-a", "fine").await, "fine");
}

#[tokio::test]
async fn the_sandbox_ceiling_caps_a_generous_call_limit() {
    let h = Harness::with(|c| c.max_memory = 8 << 20);
    let hog = h.guest("hog", InstanceMode::PerRequest);
    let err = h
        .call(&hog, "tenant-a", "", &limits(None, 1 << 30, Duration::from_secs(60)))
        .await
        .unwrap_err();
    // The pool refuses the growth before the limiter sees it: still a trap
    // after a failed growth, and never a host crash.
    assert!(
        matches!(err.kind(), ErrorKind::MemoryLimit | ErrorKind::GuestTrap),
        "{err}"
    );
}
