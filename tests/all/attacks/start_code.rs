//! Point 1: a plugin's start code runs only inside its own tenant's worker,
//! for that tenant's call, under that call's limits: never in the host (at
//! upload or at boot), never in a warm-pool worker before it is assigned.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bulkhead::ErrorKind;
use bulkhead::names::PluginName;
use bulkhead::sandbox::InstanceMode;
use bulkhead::service::DeployError;

use super::{Neighbour, tight, wat};
use crate::isolation::{Host, Options};

fn name(name: &str) -> PluginName {
    PluginName::new(name).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_start_function_that_blocks_never_runs_in_the_host_or_the_pool() {
    let host = Arc::new(
        Host::start(Options {
            warm: 2,
            tenants: vec![("attacker", tight(Duration::from_secs(1)))],
            ..Options::default()
        })
        .await,
    );
    let neighbour = Neighbour::start(&host, "neighbour").await;
    // It would block a minute wherever it runs: the upload does not wait.
    let started = Instant::now();
    host.service
        .deploy(name("sleeper"), wat::blocking_start(60), Some(InstanceMode::PerRequest))
        .await
        .expect("its types are right, so the upload is valid");
    let upload = started.elapsed();
    assert!(
        upload < Duration::from_secs(30),
        "the upload ran the start code: {upload:?}"
    );
    // New workers still start (the pool refills, warm-up runs no tenant
    // code), and a new tenant's first call is served.
    assert!(
        host.service.wait_pool_filled(Duration::from_secs(30)).await,
        "the pool refills"
    );
    for ns in ["new-a", "new-b", "new-c"] {
        assert_eq!(host.ok(ns, None, "echo", "fresh").await, "fresh");
    }
    // The attacker's own call runs it, and its own deadline stops it.
    let started = Instant::now();
    let err = host.call("attacker", None, "sleeper", "x").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
    assert!(started.elapsed() < Duration::from_secs(30));
    neighbour.stop().await.assert_untouched();
    Arc::into_inner(host).unwrap().stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_functions_that_trap_or_spin_fail_their_own_calls_and_never_the_boot() {
    let store = tempfile::tempdir().unwrap();
    let options = || Options {
        tenants: vec![("attacker", tight(Duration::from_secs(2)))],
        plugins_dir: Some(store.path().to_owned()),
        ..Options::default()
    };
    let host = Arc::new(Host::start(options()).await);
    let neighbour = Neighbour::start(&host, "neighbour").await;
    for (plugin, body, kind) in [
        ("trapper", "unreachable", ErrorKind::GuestTrap),
        ("spinner", "(loop (br 0))", ErrorKind::FuelExhausted),
    ] {
        host.service
            .deploy(name(plugin), wat::with_start(body), None)
            .await
            .unwrap_or_else(|e| panic!("{plugin}: {e}"));
        let err = host.call("attacker", None, plugin, "x").await.unwrap_err();
        assert_eq!(err.kind(), kind, "{plugin}: {err}");
    }
    neighbour.stop().await.assert_untouched();
    Arc::into_inner(host).unwrap().stop().await;
    // Booting with them stored runs none of them: the boot succeeds and
    // serves them (to fail their own calls) beside everything else.
    let host = Host::start(options()).await;
    let names: Vec<String> = host.service.plugins().into_iter().map(|p| p.name).collect();
    assert!(
        names.contains(&"trapper".to_owned()) && names.contains(&"spinner".to_owned()),
        "{names:?}"
    );
    assert!(host.service.quarantine().is_empty());
    assert_eq!(host.ok("neighbour", None, "echo", "after").await, "after");
    let err = host.call("attacker", None, "trapper", "x").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::GuestTrap, "{err}");
    host.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stored_plugin_that_cannot_be_served_is_quarantined_and_the_boot_goes_on() {
    let store = tempfile::tempdir().unwrap();
    let options = || Options {
        plugins_dir: Some(store.path().to_owned()),
        ..Options::default()
    };
    let host = Host::start(options()).await;
    host.service
        .deploy(name("doomed"), crate::isolation::guest("echo"), None)
        .await
        .unwrap();
    host.stop().await;
    // While the host is down, a well-formed store file is made to hold a
    // component that no longer compiles (as a host upgrade might make it).
    let mut bytes = crate::isolation::guest("echo");
    bytes.truncate(bytes.len() / 3);
    bulkhead::service::PluginStore::open(store.path())
        .unwrap()
        .save("doomed", &bytes, InstanceMode::PerRequest)
        .unwrap();

    let host = Host::start(options()).await;
    let quarantine = host.service.quarantine();
    let doomed = quarantine.get("doomed").expect("listed with why");
    assert!(doomed.reason.contains("not a valid component"), "{}", doomed.reason);
    assert_eq!(host.ok("tenant-a", None, "echo", "served").await, "served");
    let err = host.call("tenant-a", None, "doomed", "x").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::WorkerUnavailable, "{err}");
    assert!(err.to_string().contains("quarantined"), "{err}");
    // A valid deploy of the name clears it.
    host.service
        .deploy(name("doomed"), crate::isolation::guest("echo"), None)
        .await
        .unwrap();
    assert!(host.service.quarantine().is_empty());
    assert_eq!(host.ok("tenant-a", None, "doomed", "back").await, "back");
    host.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_with_a_start_function_is_checked_but_not_run() {
    // An upload whose types are wrong is refused as before; one whose start
    // code would trap is accepted, since nothing of it runs at upload.
    let host = Host::start(Options::default()).await;
    let err = host
        .service
        .deploy(name("bad"), b"\0asm\x0d\0\x01\0garbage".to_vec(), None)
        .await
        .unwrap_err();
    assert!(matches!(err, DeployError::Invalid(_)), "{err}");
    host.service
        .deploy(name("trap-at-start"), wat::with_start("unreachable"), None)
        .await
        .expect("accepted: it is not run");
    host.stop().await;
}
