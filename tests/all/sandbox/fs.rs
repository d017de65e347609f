use bulkhead::ErrorKind;
use bulkhead::sandbox::{CallLimits, InstanceMode};

use super::Harness;

#[tokio::test]
async fn fs_writes_reads_and_lists_its_namespace_directory() {
    let h = Harness::new();
    let fs = h.guest("fs", InstanceMode::PerRequest);
    assert_eq!(h.ok(&fs, "tenant-a", "write /data/x hello there").await, "");
    assert_eq!(h.ok(&fs, "tenant-a", "read /data/x").await, "hello there");
    assert_eq!(h.ok(&fs, "tenant-a", "write /data/y 2").await, "");
    assert_eq!(h.ok(&fs, "tenant-a", "list /data").await, "x\ny");
    // The data is on the host's disk, in the namespace's directory.
    let on_disk = std::fs::read_to_string(h.data_dir.join("tenant-a/x")).unwrap();
    assert_eq!(on_disk, "hello there");
}

#[tokio::test]
async fn a_namespace_cannot_see_what_another_wrote() {
    let h = Harness::new();
    let fs = h.guest("fs", InstanceMode::PerRequest);
    assert_eq!(h.ok(&fs, "tenant-b", "write /data/secret b-only").await, "");
    assert_eq!(h.ok(&fs, "tenant-a", "list /data").await, "");
    for attempt in [
        "read /data/secret",
        "read /data/../tenant-b/secret",
        "read /data/../../data/tenant-b/secret",
        "list /data/..",
        "list /data/../tenant-b",
    ] {
        let err = h
            .call(&fs, "tenant-a", attempt, &CallLimits::default())
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::GuestError, "{attempt}: {err}");
    }
    assert_eq!(h.ok(&fs, "tenant-b", "read /data/secret").await, "b-only");
}

#[tokio::test]
async fn paths_outside_data_are_refused() {
    let h = Harness::new();
    let fs = h.guest("fs", InstanceMode::PerRequest);
    let outside = h.data_dir.parent().unwrap().join("outside.txt");
    std::fs::write(&outside, "host file").unwrap();
    for attempt in [
        "read /etc/passwd".to_owned(),
        "list /".to_owned(),
        "list /etc".to_owned(),
        format!("read {}", outside.display()),
        "read ../outside.txt".to_owned(),
        "write /data/../escape nope".to_owned(),
        "write /tmp/escape nope".to_owned(),
        "read x".to_owned(),
    ] {
        let err = h
            .call(&fs, "tenant-a", &attempt, &CallLimits::default())
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::GuestError, "{attempt}: {err}");
    }
    assert!(!h.data_dir.join("escape").exists());
    assert!(!h.data_dir.parent().unwrap().join("escape").exists());
}

#[tokio::test]
async fn a_symlink_cannot_lead_out_of_data() {
    let h = Harness::new();
    let fs = h.guest("fs", InstanceMode::PerRequest);
    assert_eq!(h.ok(&fs, "tenant-b", "write /data/secret b-only").await, "");
    assert_eq!(h.ok(&fs, "tenant-a", "write /data/mine a").await, "");
    // Someone plants a link in tenant-a's directory pointing at tenant-b's.
    std::os::unix::fs::symlink(h.data_dir.join("tenant-b"), h.data_dir.join("tenant-a/link")).unwrap();
    let err = h
        .call(&fs, "tenant-a", "read /data/link/secret", &CallLimits::default())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::GuestError, "{err}");
}

#[tokio::test]
async fn an_unknown_command_is_the_guests_invalid_input() {
    let h = Harness::new();
    let fs = h.guest("fs", InstanceMode::PerRequest);
    let err = h
        .call(&fs, "tenant-a", "delete /data/x", &CallLimits::default())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::GuestError);
    assert!(err.to_string().contains("unknown command"), "{err}");
}

#[tokio::test]
async fn a_kept_instance_has_no_filesystem_unless_the_sandbox_is_bound() {
    let h = Harness::new();
    let fs = h.guest("fs", InstanceMode::PerProcess);
    let err = h
        .call(&fs, "tenant-a", "write /data/x 1", &CallLimits::default())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::GuestError, "{err}");

    let bound = Harness::new();
    bound.sandbox.bind_namespace("tenant-a".parse().unwrap()).unwrap();
    let fs = bound.guest("fs", InstanceMode::PerProcess);
    assert_eq!(bound.ok(&fs, "tenant-a", "write /data/x 1").await, "");
    assert_eq!(bound.ok(&fs, "tenant-a", "read /data/x").await, "1");
}

#[tokio::test]
async fn a_plugin_that_opens_files_gets_its_directory_created_on_first_call() {
    let h = Harness::new();
    let fs = h.guest("fs", InstanceMode::PerRequest);
    assert!(fs.opens_files(), "fs imports wasi:filesystem/preopens");
    assert!(!h.data_dir.join("tenant-a").exists());
    assert_eq!(h.ok(&fs, "tenant-a", "list /data").await, "");
    assert!(h.data_dir.join("tenant-a").is_dir());
}
