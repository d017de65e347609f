//! Point 8: a worker's instance slots follow its plugin set; running out is
//! its own typed error (`worker_unavailable`), never a guest fault.

use std::sync::Arc;

use bulkhead::ErrorKind;
use bulkhead::names::PluginName;
use bulkhead::sandbox::InstanceMode;

use super::Neighbour;
use crate::isolation::{Host, Options, guest};

async fn deploy_kept(host: &Host, names: impl Iterator<Item = String>) -> Vec<String> {
    let mut deployed = Vec::new();
    for name in names {
        let plugin = PluginName::new(name.clone()).unwrap();
        host.service
            .deploy(plugin, guest("counter"), Some(InstanceMode::PerProcess))
            .await
            .unwrap();
        deployed.push(name);
    }
    deployed
}

/// `n` calls at once of `sleep 300` for `ns`; each holds a slot meanwhile.
async fn concurrent_sleeps(
    host: &Arc<Host>,
    ns: &'static str,
    n: usize,
) -> Vec<Result<String, bulkhead::service::InvokeError>> {
    let calls = (0..n).map(|_| {
        let host = Arc::clone(host);
        tokio::spawn(async move {
            host.call(ns, None, "sleep", "300")
                .await
                .map(|out| String::from_utf8(out.output).unwrap())
        })
    });
    futures_util::future::join_all(calls)
        .await
        .into_iter()
        .map(|r| r.unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kept_instances_deployed_at_run_time_leave_room_for_calls_and_running_out_is_typed() {
    let host = Arc::new(
        Host::start(Options {
            instance_slots: 16,
            ..Options::default()
        })
        .await,
    );
    let neighbour = Neighbour::start(&host, "neighbour").await;
    host.ok("tenant-a", None, "echo", "warm").await;
    // Six per-process plugins deployed after tenant-a's worker started,
    // each keeping an instance there.
    let six = deploy_kept(&host, (0..6).map(|i| format!("kept{i}"))).await;
    for name in &six {
        assert_eq!(host.ok("tenant-a", None, name, "").await, "1");
    }
    for result in concurrent_sleeps(&host, "tenant-a", 16).await {
        assert_eq!(result.expect("room for every call"), "slept 300");
    }
    // Many more than the worker was started for: some calls find no slot,
    // and say so; none is a guest fault.
    let more = deploy_kept(&host, (6..20).map(|i| format!("kept{i}"))).await;
    for name in &more {
        let _ = host.call("tenant-a", None, name, "").await;
    }
    let results = concurrent_sleeps(&host, "tenant-a", 16).await;
    let refused: Vec<_> = results.iter().filter_map(|r| r.as_ref().err()).collect();
    assert!(
        !refused.is_empty(),
        "the worker had room for more than it was built for"
    );
    for err in refused {
        assert_eq!(err.kind(), ErrorKind::WorkerUnavailable, "{err}");
        assert!(err.to_string().contains("instance slots"), "{err}");
    }
    // A worker started now is built for the whole set.
    for name in six.iter().chain(&more) {
        assert_eq!(host.ok("tenant-b", None, name, "").await, "1");
    }
    for result in concurrent_sleeps(&host, "tenant-b", 16).await {
        assert_eq!(result.expect("a new worker has room"), "slept 300");
    }
    neighbour.stop().await.assert_untouched();
    Arc::into_inner(host).unwrap().stop().await;
}
