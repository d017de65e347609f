//! The `hostile` guest in-process: every bound it runs into is its own typed
//! error, and the sandbox keeps serving.

use bulkhead::ErrorKind;
use bulkhead::sandbox::{CallLimits, InstanceMode, MAX_ERROR_MESSAGE, MAX_RANDOM_BYTES, MAX_RESOURCES};

use super::Harness;

fn limits() -> CallLimits {
    CallLimits {
        memory: 128 << 20,
        ..CallLimits::default()
    }
}

#[tokio::test]
async fn an_error_message_past_the_bound_is_cut_and_says_so() {
    let h = Harness::new();
    let hostile = h.guest("hostile", InstanceMode::PerRequest);
    let size = 17 << 20;
    let err = h
        .call(&hostile, "tenant-a", &format!("error {size}"), &limits())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::GuestError, "{err}");
    let message = err.to_string();
    assert!(message.len() < MAX_ERROR_MESSAGE + 100, "{}", message.len());
    assert!(
        message.contains(&format!("{size} bytes in all")),
        "{}",
        &message[message.len() - 60..]
    );
    assert_eq!(h.ok(&hostile, "tenant-a", "output 3").await, "xxx");
}

#[tokio::test]
async fn leaking_streams_or_pollables_stops_at_the_resource_bound() {
    let h = Harness::new();
    let hostile = h.guest("hostile", InstanceMode::PerRequest);
    for attack in ["streams", "pollables"] {
        let payload = format!("{attack} {}", MAX_RESOURCES * 10);
        let err = h.call(&hostile, "tenant-a", &payload, &limits()).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::GuestTrap, "{attack}: {err}");
        let within = format!("{attack} {}", MAX_RESOURCES / 2);
        assert_eq!(h.ok(&hostile, "tenant-a", &within).await, "done", "{attack}");
    }
}

#[tokio::test]
async fn random_bytes_past_the_bound_are_refused() {
    let h = Harness::new();
    let hostile = h.guest("hostile", InstanceMode::PerRequest);
    let err = h
        .call(&hostile, "tenant-a", &format!("random {}", 64 << 20), &limits())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::GuestTrap, "{err}");
    assert_eq!(
        h.ok(&hostile, "tenant-a", &format!("random {MAX_RANDOM_BYTES}")).await,
        MAX_RANDOM_BYTES.to_string()
    );
}

#[tokio::test]
async fn a_fresh_instance_never_sees_an_earlier_instances_memory() {
    let h = Harness::new();
    let hostile = h.guest("hostile", InstanceMode::PerRequest);
    for round in 0..20 {
        assert_eq!(h.ok(&hostile, "tenant-a", "leak-write").await, "written");
        assert_eq!(h.ok(&hostile, "tenant-b", "leak-read").await, "0", "round {round}");
    }
}

#[tokio::test]
async fn logging_and_forging_are_bounded_and_answer_normally() {
    let h = Harness::new();
    let hostile = h.guest("hostile", InstanceMode::PerRequest);
    assert_eq!(h.ok(&hostile, "tenant-a", "log 5000").await, "logged");
    assert_eq!(h.ok(&hostile, "tenant-a", "log-forge").await, "forged");
}
