//! Point 4: an assigned worker whose connection drops is dead at once; a
//! worker that does not answer a call is killed at the call's deadline; a
//! deploy never waits long for an unresponsive worker. Each stands for a
//! worker that misbehaves (stopped, or cut off); its tenant gets a typed
//! error and a new worker, the neighbour notices nothing.

use std::os::fd::OwnedFd;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bulkhead::ErrorKind;
use bulkhead::names::PluginName;
use bulkhead::supervisor::{CALL_SLACK, ExitReason};
use rustix::process::{Pid, PidfdFlags, PidfdGetfdFlags, Signal, kill_process, pidfd_getfd, pidfd_open};

use super::{Neighbour, tight};
use crate::isolation::{Host, Options, hygiene_wait_gone};

fn stop_process(pid: u32) {
    kill_process(Pid::from_raw(pid as i32).unwrap(), Signal::STOP).unwrap();
}

/// Shuts down the worker's end of its connection (its standard input, a
/// duplicate of the socket it talks over), as if the connection broke.
fn cut_connection(pid: u32) {
    let pidfd = pidfd_open(Pid::from_raw(pid as i32).unwrap(), PidfdFlags::empty()).unwrap();
    let socket: OwnedFd = pidfd_getfd(&pidfd, 0, PidfdGetfdFlags::empty()).unwrap();
    std::os::unix::net::UnixStream::from(socket)
        .shutdown(std::net::Shutdown::Both)
        .unwrap();
}

async fn exit_reason(host: &Host, pid: u32) -> ExitReason {
    host.wait_exit(pid).await.exit.reason
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_worker_whose_connection_drops_is_killed_and_replaced() {
    let host = Arc::new(
        Host::start(Options {
            backoff: Duration::from_secs(2),
            ..Options::default()
        })
        .await,
    );
    let neighbour = Neighbour::start(&host, "neighbour").await;
    host.ok("attacker", None, "echo", "warm").await;
    let pid = host.pid_of("ns:attacker");
    // Stopped, it cannot exit on its own: only the host's kill ends it.
    stop_process(pid);
    cut_connection(pid);
    assert!(hygiene_wait_gone(pid).await, "the cut-off worker was not killed");
    assert_eq!(exit_reason(&host, pid).await, ExitReason::Killed);
    host.wait_restarted("ns:attacker", 1).await;
    assert_eq!(host.ok("attacker", None, "echo", "back").await, "back");
    assert_ne!(host.pid_of("ns:attacker"), pid);
    neighbour.stop().await.assert_untouched();
    Arc::into_inner(host).unwrap().stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_that_does_not_answer_is_killed_at_the_calls_deadline() {
    let timeout = Duration::from_secs(1);
    let host = Arc::new(
        Host::start(Options {
            tenants: vec![("attacker", tight(timeout))],
            ..Options::default()
        })
        .await,
    );
    let neighbour = Neighbour::start(&host, "neighbour").await;
    host.ok("attacker", None, "echo", "warm").await;
    let pid = host.pid_of("ns:attacker");
    let call = {
        let host = Arc::clone(&host);
        tokio::spawn(async move { host.call("attacker", None, "sleep", "500").await })
    };
    host.wait_load("ns:attacker", |load| load.in_flight > 0).await;
    let started = Instant::now();
    // The worker stops answering (a thread stuck, or a worker that ignores
    // its own deadline): the host's backstop ends the call.
    stop_process(pid);
    let err = call.await.unwrap().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
    assert!(err.to_string().contains("was killed"), "{err}");
    assert!(started.elapsed() < timeout + CALL_SLACK + Duration::from_secs(20));
    assert!(hygiene_wait_gone(pid).await);
    assert_eq!(exit_reason(&host, pid).await, ExitReason::Killed);
    neighbour.stop().await.assert_untouched();
    Arc::into_inner(host).unwrap().stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deploy_does_not_wait_for_an_unresponsive_worker() {
    let host = Arc::new(Host::start(Options::default()).await);
    let neighbour = Neighbour::start(&host, "neighbour").await;
    host.ok("attacker", None, "echo", "warm").await;
    let pid = host.pid_of("ns:attacker");
    stop_process(pid);
    let deploy = {
        let host = Arc::clone(&host);
        tokio::spawn(async move {
            let name = PluginName::new("greeter").unwrap();
            host.service.deploy(name, crate::isolation::guest("echo"), None).await
        })
    };
    // While the deploy waits on the stopped worker, new workers start.
    assert_eq!(host.ok("newcomer", None, "echo", "fresh").await, "fresh");
    tokio::time::timeout(Duration::from_secs(60), deploy)
        .await
        .expect("the deploy gave up on the stopped worker")
        .unwrap()
        .expect("the deploy succeeded");
    assert!(hygiene_wait_gone(pid).await, "the unresponsive worker was killed");
    assert_eq!(host.ok("neighbour", None, "greeter", "hi").await, "hi");
    neighbour.stop().await.assert_untouched();
    Arc::into_inner(host).unwrap().stop().await;
}
