//! The isolation runtime with real worker processes of the release binary:
//! the process boundary (a warm call in-process, through a worker, and over
//! HTTP, in one run), `get_or_create` on a live process, terminate, and cold
//! start per isolation level with the warm pool on and off.
//!
//! Run: `cargo bench --bench runtime`.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bulkhead::api::{LocalHost, bench_client};
use bulkhead::builtin;
use bulkhead::isolation::{IsolationKey, IsolationLevel};
use bulkhead::names::{Namespace, SessionId};
use bulkhead::sandbox::{CallLimits, InstanceMode, Request, Sandbox, SandboxConfig};
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};

fn host(rt: &tokio::runtime::Runtime, level: IsolationLevel, warm: u32) -> LocalHost {
    rt.block_on(LocalHost::start(
        Some(env!("CARGO_BIN_EXE_bulkhead").into()),
        |config| {
            config.isolation.level = level;
            config.pool.warm = warm;
        },
    ))
    .expect("host starts")
}

fn stop(rt: &tokio::runtime::Runtime, h: LocalHost) {
    rt.block_on(h.stop()).expect("shutdown");
}

fn process_id(level: IsolationLevel, ns: &Namespace, session: &SessionId) -> String {
    IsolationKey {
        namespace: ns.clone(),
        session: session.clone(),
    }
    .process_id(level)
}

fn warm_calls(c: &mut Criterion, rt: &tokio::runtime::Runtime) {
    let mut group = c.benchmark_group("warm");
    let tmp = tempfile::tempdir().expect("tempdir");
    let sandbox = Sandbox::new(SandboxConfig::new(tmp.path().join("cache"), tmp.path().join("data"))).expect("sandbox");
    let echo = sandbox
        .load_plugin("echo", builtin::ECHO.wasm, InstanceMode::PerRequest)
        .expect("echo");
    let ns = Namespace::new("bench").expect("namespace");
    let request = Request {
        namespace: ns.clone(),
        session: SessionId::default_session(),
        payload: b"ping".to_vec(),
    };
    let limits = CallLimits::default();
    group.bench_function("echo_in_process", |b| {
        b.iter(|| {
            black_box(
                rt.block_on(sandbox.call(&echo, request.clone(), &limits))
                    .expect("call"),
            )
        });
    });

    let h = host(rt, IsolationLevel::Namespace, 2);
    rt.block_on(h.runtime.invoke(ns.clone(), None, "echo", b"warm".to_vec()))
        .expect("first call");
    group.bench_function("echo_through_worker", |b| {
        b.iter(|| {
            black_box(
                rt.block_on(h.runtime.invoke(ns.clone(), None, "echo", b"ping".to_vec()))
                    .expect("call"),
            )
        });
    });
    let agent = bench_client(Duration::from_secs(30));
    let url = format!("{}/v1/invoke/echo", h.url);
    group.bench_function("echo_over_http", |b| {
        b.iter(|| {
            let mut reply = agent
                .post(&url)
                .header("x-bulkhead-namespace", "bench")
                .send("ping")
                .expect("http");
            black_box(reply.body_mut().read_to_vec().expect("body"))
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
    group.finish();
    stop(rt, h);
}

/// Cold start (first call for a new key, through the runtime) and terminate,
/// each timed alone; the pool is refilled before each iteration.
fn cold_start(c: &mut Criterion, rt: &tokio::runtime::Runtime) {
    let mut group = c.benchmark_group("cold_start");
    let mut n = 0u64;
    for (pool, warm) in [("pool_on", 2), ("pool_off", 0)] {
        for level in [IsolationLevel::None, IsolationLevel::Namespace, IsolationLevel::Session] {
            let h = host(rt, level, warm);
            let supervisor = Arc::clone(h.runtime.manager().supervisor());
            let mut terminate = Duration::ZERO;
            let mut terminations = 0u32;
            group.bench_function(BenchmarkId::new(pool, level.as_str()), |b| {
                b.iter_custom(|iters| {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        if warm > 0 {
                            rt.block_on(supervisor.wait_pool_filled(Duration::from_secs(30)));
                        }
                        n += 1;
                        let ns = Namespace::new(format!("bench-{n}")).expect("namespace");
                        let session = SessionId::new(format!("s{n}")).expect("session");
                        let started = Instant::now();
                        let out = rt
                            .block_on(
                                h.runtime
                                    .invoke(ns.clone(), Some(session.clone()), "echo", b"x".to_vec()),
                            )
                            .expect("cold call");
                        total += started.elapsed();
                        assert!(out.cold_start.is_some());
                        let id = process_id(level, &ns, &session);
                        let started = Instant::now();
                        rt.block_on(h.runtime.manager().terminate_process(&id, None))
                            .expect("terminate");
                        terminate += started.elapsed();
                        terminations += 1;
                    }
                    total
                });
            });
            if level == IsolationLevel::Session {
                println!(
                    "cold_start/{pool}: terminate took {:?} on average over {terminations}",
                    terminate / terminations.max(1)
                );
            }
            stop(rt, h);
        }
    }
    group.finish();
}

fn runtime_benches(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    warm_calls(c, &rt);
    cold_start(c, &rt);
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30).measurement_time(Duration::from_secs(4));
    targets = runtime_benches
}
criterion_main!(benches);
