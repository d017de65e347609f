//! The storm: four attacker tenants cycle through every fault and attack at
//! once (traps, spins, memory bombs, timeouts, start code that traps,
//! oversized replies, leaked host resources, random-byte bombs, log floods,
//! killed and cut-off workers) until 750 faults have landed, while two
//! neighbours call steadily. Each attack gets its own typed error; the
//! neighbours see zero errors.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bulkhead::ErrorKind;
use bulkhead::names::PluginName;
use bulkhead::sandbox::{CallLimits, MAX_RESOURCES};

use super::{Neighbour, wat};
use crate::isolation::{Host, Options, sigkill};

/// Faults to land in all.
const FAULTS: usize = 750;
/// Every this many faults, an attacker's worker is killed under a call.
const KILL_EVERY: usize = 60;

/// One attack: a call and the error it must get (`None`: it must succeed,
/// bounded, as a log flood does).
struct Attack {
    plugin: &'static str,
    payload: String,
    expect: Option<ErrorKind>,
}

fn attacks() -> Vec<Attack> {
    let attack = |plugin, payload: &str, expect| Attack {
        plugin,
        payload: payload.to_owned(),
        expect,
    };
    vec![
        attack("trap", "panic", Some(ErrorKind::GuestTrap)),
        attack("spin", "", Some(ErrorKind::FuelExhausted)),
        attack("hog", "", Some(ErrorKind::MemoryLimit)),
        attack("trapper", "x", Some(ErrorKind::GuestTrap)),
        attack("hostile", &format!("error {}", 1 << 20), Some(ErrorKind::GuestError)),
        attack("hostile", &format!("output {}", 17 << 20), Some(ErrorKind::GuestError)),
        attack(
            "hostile",
            &format!("streams {}", MAX_RESOURCES * 10),
            Some(ErrorKind::GuestTrap),
        ),
        attack(
            "hostile",
            &format!("pollables {}", MAX_RESOURCES * 10),
            Some(ErrorKind::GuestTrap),
        ),
        attack("hostile", &format!("random {}", 64 << 20), Some(ErrorKind::GuestTrap)),
        attack("hostile", "log 2000", None),
        attack("hostile", "log-forge", None),
        attack("sleep", "5000", Some(ErrorKind::Timeout)),
    ]
}

fn attacker_policy() -> bulkhead::isolation::TenantPolicy {
    bulkhead::isolation::TenantPolicy {
        call: CallLimits {
            fuel: Some(100_000_000),
            memory: 32 << 20,
            timeout: Duration::from_secs(1),
        },
        ..bulkhead::isolation::TenantPolicy::default()
    }
}

/// Kills `ns`'s worker under a call of its own; the call fails as crashed,
/// and the tenant waits out its restart.
async fn kill_under_call(host: &Arc<Host>, ns: &'static str) {
    let process_id = format!("ns:{ns}");
    host.ok(ns, None, "echo", "up").await;
    let restarts = host.service.process(&process_id).unwrap().status.restart_count;
    let pid = host.pid_of(&process_id);
    let call = {
        let host = Arc::clone(host);
        tokio::spawn(async move { host.call(ns, None, "sleep", "200").await })
    };
    host.wait_load(&process_id, |load| load.in_flight > 0).await;
    sigkill(pid);
    // The call may have finished just before the kill landed.
    if let Err(err) = call.await.unwrap() {
        assert_eq!(err.kind(), ErrorKind::WorkerCrashed, "{ns}: {err}");
    }
    host.wait_restarted(&process_id, restarts + 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seven_hundred_and_fifty_faults_leave_the_neighbours_at_zero_errors() {
    let attackers = ["attacker-0", "attacker-1", "attacker-2", "attacker-3"];
    let host = Arc::new(
        Host::start(Options {
            backoff: Duration::from_millis(200),
            tenants: attackers.iter().map(|ns| (*ns, attacker_policy())).collect(),
            ..Options::default()
        })
        .await,
    );
    host.service
        .deploy(
            PluginName::new("trapper").unwrap(),
            wat::with_start("unreachable"),
            None,
        )
        .await
        .unwrap();
    let neighbours = [
        Neighbour::start(&host, "neighbour-a").await,
        Neighbour::start(&host, "neighbour-b").await,
    ];
    let landed = Arc::new(AtomicUsize::new(0));
    let storms = attackers.map(|ns| {
        let (host, landed) = (Arc::clone(&host), Arc::clone(&landed));
        tokio::spawn(async move {
            let attacks = attacks();
            let (mut mine, mut bounded) = (0usize, 0usize);
            for round in 0.. {
                for attack in &attacks {
                    if landed.load(Ordering::Relaxed) >= FAULTS {
                        return (mine, bounded);
                    }
                    match (host.call(ns, None, attack.plugin, &attack.payload).await, attack.expect) {
                        (Err(err), Some(kind)) => {
                            assert_eq!(err.kind(), kind, "{ns}: {} {}: {err}", attack.plugin, attack.payload);
                            mine += 1;
                            if landed.fetch_add(1, Ordering::Relaxed) % KILL_EVERY == KILL_EVERY - 1 {
                                kill_under_call(&host, ns).await;
                                mine += 1;
                            }
                        }
                        (Ok(_), None) => bounded += 1,
                        (got, _) => panic!("{ns} round {round}: {} {}: {got:?}", attack.plugin, attack.payload),
                    }
                }
            }
            unreachable!("the rounds end when the faults have landed")
        })
    });
    let mut faults = 0;
    for storm in storms {
        let (mine, bounded) = storm.await.expect("an attacker's task");
        assert!(mine > 0 && bounded > 0, "every attacker attacked");
        faults += mine;
    }
    assert!(faults >= FAULTS, "{faults} faults");
    eprintln!("storm: {faults} faults landed");
    for neighbour in neighbours {
        neighbour.stop().await.assert_untouched();
    }
    for ns in attackers {
        assert_eq!(host.ok(ns, None, "echo", "after").await, "after");
    }
    Arc::into_inner(host).unwrap().stop().await;
}
