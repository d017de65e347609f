//! The sandbox core in-process: one `echo` call with a fresh instance (the
//! default `per-request` mode) and one call on a kept `per-process` instance.
//!
//! Run: `cargo bench --bench sandbox`.

use std::hint::black_box;

use bulkhead::builtin;
use bulkhead::names::{Namespace, SessionId};
use bulkhead::sandbox::{CallLimits, InstanceMode, Request, Sandbox, SandboxConfig};
use criterion::{Criterion, criterion_group, criterion_main};

fn sandbox_calls(c: &mut Criterion) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let sandbox = Sandbox::new(SandboxConfig::new(tmp.path().join("cache"), tmp.path().join("data"))).expect("sandbox");
    let echo = sandbox
        .load_plugin("echo", builtin::ECHO.wasm, InstanceMode::PerRequest)
        .expect("echo");
    let kept = sandbox
        .load_plugin("echo-kept", builtin::ECHO.wasm, InstanceMode::PerProcess)
        .expect("echo");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("runtime");
    let limits = CallLimits::default();
    let request = Request {
        namespace: Namespace::new("bench").expect("namespace"),
        session: SessionId::default_session(),
        payload: b"hello".to_vec(),
    };

    let mut group = c.benchmark_group("sandbox");
    group.bench_function("echo_per_request", |b| {
        b.iter(|| {
            let out = runtime.block_on(sandbox.call(&echo, request.clone(), &limits));
            black_box(out.expect("echo call"))
        });
    });
    group.bench_function("echo_per_process", |b| {
        b.iter(|| {
            let out = runtime.block_on(sandbox.call(&kept, request.clone(), &limits));
            black_box(out.expect("echo call"))
        });
    });
    group.finish();
}

criterion_group!(benches, sandbox_calls);
criterion_main!(benches);
