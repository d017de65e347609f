//! The isolation runtime with real worker processes: a warm call through the
//! runtime (the process boundary included), `get_or_create` on a live
//! process, and create + terminate cycles with and without the warm pool.
//!
//! Run: `cargo bench --bench runtime`.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bulkhead::config::{Config, DataConfig};
use bulkhead::isolation::{IsolationKey, IsolationLevel, Runtime};
use bulkhead::names::{Namespace, SessionId};
use criterion::{Criterion, criterion_group, criterion_main};

struct Host {
    runtime: Arc<Runtime>,
    _dir: tempfile::TempDir,
}

fn host(rt: &tokio::runtime::Runtime, level: IsolationLevel, warm: u32) -> Host {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = Config::default();
    config.isolation.level = level;
    config.isolation.idle_timeout = Duration::ZERO;
    config.pool.warm = warm;
    config.data = DataConfig::under(dir.path().join("data"));
    let service = rt
        .block_on(bulkhead::service::start(
            &config,
            Some(env!("CARGO_BIN_EXE_bulkhead").into()),
        ))
        .expect("host starts");
    Host {
        runtime: service.runtime,
        _dir: dir,
    }
}

fn runtime_benches(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let mut group = c.benchmark_group("runtime");

    let h = host(&rt, IsolationLevel::Namespace, 2);
    let ns = Namespace::new("bench").expect("namespace");
    rt.block_on(h.runtime.invoke(ns.clone(), None, "echo", b"warm".to_vec()))
        .expect("first call");
    group.bench_function("warm_echo_through_worker", |b| {
        b.iter(|| {
            black_box(
                rt.block_on(h.runtime.invoke(ns.clone(), None, "echo", b"ping".to_vec()))
                    .expect("call"),
            )
        });
    });
    let key = IsolationKey {
        namespace: ns.clone(),
        session: SessionId::default_session(),
    };
    group.bench_function("get_or_create_live_process", |b| {
        b.iter(|| {
            black_box(
                rt.block_on(h.runtime.manager().get_or_create_process(&key))
                    .expect("live"),
            )
        });
    });
    for (name, warm) in [
        ("create_terminate_cycle_pool_on", 2),
        ("create_terminate_cycle_pool_off", 0),
    ] {
        let h = host(&rt, IsolationLevel::Session, warm);
        let supervisor = Arc::clone(h.runtime.manager().supervisor());
        let mut i = 0u64;
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    if warm > 0 {
                        rt.block_on(supervisor.wait_pool_filled(Duration::from_secs(30)));
                    }
                    i += 1;
                    let session = SessionId::new(format!("s{i}")).expect("session");
                    let started = Instant::now();
                    rt.block_on(
                        h.runtime
                            .invoke(ns.clone(), Some(session.clone()), "echo", b"x".to_vec()),
                    )
                    .expect("cold call");
                    rt.block_on(
                        h.runtime
                            .manager()
                            .terminate_process(&format!("session:{session}"), None),
                    )
                    .expect("terminate");
                    total += started.elapsed();
                }
                total
            });
        });
        rt.block_on(h.runtime.shutdown(Instant::now() + Duration::from_secs(30)))
            .expect("shutdown");
    }
    group.finish();
    rt.block_on(h.runtime.shutdown(Instant::now() + Duration::from_secs(30)))
        .expect("shutdown");
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30).measurement_time(Duration::from_secs(5));
    targets = runtime_benches
}
criterion_main!(benches);
