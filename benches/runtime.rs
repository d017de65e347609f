//! The service with real worker processes of the release binary:
//! the process boundary (a warm call in-process, through a worker, and over
//! HTTP, in one run), `get_or_create` on a live process, terminate, and cold
//! start per isolation level with the warm pool on and off.
//!
//! Run: `cargo bench --bench runtime`.

use std::hint::black_box;
use std::time::{Duration, Instant};

use bulkhead::builtin;
use bulkhead::isolation::{IsolationKey, IsolationLevel, SessionScope};
use bulkhead::local::{LocalHost, bench_client};
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
    .process_id(level, SessionScope::Global)
    .to_string()
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
    rt.block_on(h.service.invoke(ns.clone(), None, "echo", b"warm".to_vec()))
        .expect("first call");
    group.bench_function("echo_through_worker", |b| {
        b.iter(|| {
            black_box(
                rt.block_on(h.service.invoke(ns.clone(), None, "echo", b"ping".to_vec()))
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
                rt.block_on(h.service.manager().get_or_create_process(&key))
                    .expect("live"),
            )
        });
    });
    group.finish();
    stop(rt, h);
}

/// A first call for a new key through the runtime (the pool, when on,
/// refilled before it); returns the time it took and the key's process id.
fn first_call(
    rt: &tokio::runtime::Runtime,
    h: &LocalHost,
    level: IsolationLevel,
    warm: u32,
    n: &mut u64,
) -> (Duration, String) {
    if warm > 0 {
        assert!(
            rt.block_on(h.service.wait_pool_filled(Duration::from_secs(30))),
            "pool refills"
        );
    }
    *n += 1;
    let ns = Namespace::new(format!("bench-{n}")).expect("namespace");
    let session = SessionId::new(format!("s{n}")).expect("session");
    let started = Instant::now();
    let out = rt
        .block_on(
            h.service
                .invoke(ns.clone(), Some(session.clone()), "echo", b"x".to_vec()),
        )
        .expect("cold call");
    let took = started.elapsed();
    assert!(out.cold_start.is_some(), "the key was new");
    (took, process_id(level, &ns, &session))
}

fn terminate(rt: &tokio::runtime::Runtime, h: &LocalHost, id: &str) -> Duration {
    let started = Instant::now();
    rt.block_on(h.service.terminate(id, None)).expect("terminate");
    started.elapsed()
}

/// Cold start (first call for a new key, through the runtime) per level
/// and pool mode, and terminating a live process (Shutdown, exit, reap and
/// clean-up) per pool mode. Each iteration times only its own step.
fn cold_start_and_terminate(c: &mut Criterion, rt: &tokio::runtime::Runtime) {
    let mut n = 0u64;
    for (pool, warm) in [("pool_on", 2), ("pool_off", 0)] {
        for level in [IsolationLevel::None, IsolationLevel::Namespace, IsolationLevel::Session] {
            let h = host(rt, level, warm);
            c.benchmark_group("cold_start")
                .bench_function(BenchmarkId::new(pool, level.as_str()), |b| {
                    b.iter_custom(|iters| {
                        (0..iters)
                            .map(|_| {
                                let (took, id) = first_call(rt, &h, level, warm, &mut n);
                                terminate(rt, &h, &id);
                                took
                            })
                            .sum()
                    });
                });
            if level == IsolationLevel::Session {
                c.benchmark_group("terminate").bench_function(pool, |b| {
                    b.iter_custom(|iters| {
                        (0..iters)
                            .map(|_| {
                                let (_, id) = first_call(rt, &h, level, warm, &mut n);
                                terminate(rt, &h, &id)
                            })
                            .sum()
                    });
                });
            }
            stop(rt, h);
        }
    }
}

fn runtime_benches(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    warm_calls(c, &rt);
    cold_start_and_terminate(c, &rt);
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30).measurement_time(Duration::from_secs(4));
    targets = runtime_benches
}
criterion_main!(benches);
