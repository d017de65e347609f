//! What a heavy upload costs the other tenants: the latency of warm `echo`
//! calls from two neighbour tenants, measured three times in one run on the
//! same host:
//!
//! - `idle`: nothing else happens (the baseline);
//! - `upload`: an admin uploads a large plugin over and over (new bytes each
//!   time, so the compile cache never answers); bulkhead compiles it in a
//!   limited child process at the lowest CPU priority;
//! - `in-host-compile`: the same bytes compiled in the host's own process,
//!   with wasmtime's parallel compilation, as a host without a compile child
//!   does (the peer design).
//!
//! Run: `cargo bench --bench upload -- [SECONDS]` (default 10). Prints one
//! line per phase: calls, errors, p50/p99/max in microseconds, and how many
//! compiles finished during it.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bulkhead::local::{LocalHost, bench_client, percentile};

/// A valid `bulkhead:plugin` component of about a megabyte whose core
/// module holds `functions` functions of `adds` additions each; `salt`
/// makes its bytes (and so its digest) unique.
fn heavy_component(functions: usize, adds: usize, salt: u64) -> Vec<u8> {
    let mut module = String::from(
        r#"(memory (export "memory") 1)
    (global $heap (mut i32) (i32.const 4096))
    (func (export "realloc") (param i32 i32 i32 i32) (result i32)
      (local $p i32)
      (local.set $p (global.get $heap))
      (global.set $heap (i32.add (global.get $heap) (local.get 3)))
      (local.get $p))
    (func (export "handle") (param i32 i32 i32 i32 i32 i32) (result i32)
      (i32.store8 (i32.const 1024) (i32.const 0))
      (i32.store (i32.const 1028) (local.get 4))
      (i32.store (i32.const 1032) (local.get 5))
      (i32.const 1024))"#,
    );
    for f in 0..functions {
        module.push_str(&format!(
            "(func (export \"f{f}\") (param i64) (result i64) (local.get 0)"
        ));
        for a in 0..adds {
            module.push_str(&format!(
                " (i64.const {}) (i64.mul) (i64.const {a}) (i64.add)",
                salt + f as u64
            ));
        }
        module.push_str(")\n");
    }
    let component = format!(
        r#"(component
  (core module $m {module})
  (core instance $i (instantiate $m))
  (type $request (record (field "namespace" string) (field "session" string) (field "payload" (list u8))))
  (type $error (variant (case "invalid-input" string) (case "failed" string)))
  (func $handle (param "req" $request) (result (result (list u8) (error $error)))
     (canon lift (core func $i "handle") (memory (core memory $i "memory")) (realloc (core func $i "realloc"))))
  (component $api
    (import "request-in" (type $req (eq $request)))
    (import "error-in" (type $err (eq $error)))
    (import "handle-in" (func $h (param "req" $req) (result (result (list u8) (error $err)))))
    (export $req2 "request" (type $req))
    (export $err2 "error" (type $err))
    (export "handle" (func $h) (func (param "req" $req2) (result (result (list u8) (error $err2))))))
  (instance $inst (instantiate $api
    (with "request-in" (type $request)) (with "error-in" (type $error)) (with "handle-in" (func $handle))))
  (export "bulkhead:plugin/handler@0.1.0" (instance $inst)))"#
    );
    wat::parse_str(component).expect("a valid component")
}

/// Warm calls from `tenants` client threads (one tenant each) for `seconds`,
/// while `background` runs on a thread of its own until the calls end;
/// prints one line.
fn phase(label: &str, url: &str, seconds: u64, background: impl FnOnce(&AtomicBool, &AtomicU64) + Send) {
    let tenants = 2;
    let stop = AtomicBool::new(false);
    let compiles = AtomicU64::new(0);
    let (latencies, errors) = std::thread::scope(|scope| {
        let bg = scope.spawn(|| background(&stop, &compiles));
        let deadline = Instant::now() + Duration::from_secs(seconds);
        let clients: Vec<_> = (0..tenants)
            .map(|t| {
                scope.spawn(move || {
                    let agent = bench_client(Duration::from_secs(30));
                    let ns = format!("neighbour-{t}");
                    let (mut latencies, mut errors) = (Vec::new(), 0u64);
                    while Instant::now() < deadline {
                        let started = Instant::now();
                        let ok = match agent.post(url).header("x-bulkhead-namespace", &ns).send("ping") {
                            Ok(mut r) => r.status() == 200 && r.body_mut().read_to_vec().is_ok_and(|b| b == b"ping"),
                            Err(_) => false,
                        };
                        if ok {
                            latencies.push(started.elapsed());
                        } else {
                            errors += 1;
                        }
                    }
                    (latencies, errors)
                })
            })
            .collect();
        let (mut all, mut errors) = (Vec::new(), 0);
        for client in clients {
            let (l, e) = client.join().expect("client thread");
            all.extend(l);
            errors += e;
        }
        stop.store(true, Ordering::Relaxed);
        bg.join().expect("background thread");
        (all, errors)
    });
    let mut all = latencies;
    all.sort_unstable();
    println!(
        "phase={label} seconds={seconds} calls={} errors={errors} compiles={} p50_us={} p99_us={} max_us={}",
        all.len(),
        compiles.load(Ordering::Relaxed),
        percentile(&all, 0.50).as_micros(),
        percentile(&all, 0.99).as_micros(),
        all.last().copied().unwrap_or_default().as_micros()
    );
}

fn main() {
    let seconds = std::env::args().skip(1).find_map(|a| a.parse().ok()).unwrap_or(10);
    let (functions, adds) = (3000, 40);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let host = rt
        .block_on(LocalHost::start(
            Some(env!("CARGO_BIN_EXE_bulkhead").into()),
            |config| {
                config.server.max_plugin_size = 64 << 20;
            },
        ))
        .expect("host starts");
    let host = Arc::new(host);
    let invoke = format!("{}/v1/invoke/echo", host.url);
    let agent = bench_client(Duration::from_secs(30));
    for t in 0..2 {
        let reply = agent
            .post(&invoke)
            .header("x-bulkhead-namespace", format!("neighbour-{t}"))
            .send("warm");
        assert_eq!(reply.expect("warm-up").status(), 200);
    }
    let salt = AtomicU64::new(1);
    let next_bytes = || heavy_component(functions, adds, salt.fetch_add(1, Ordering::Relaxed) * 1_000_003);
    eprintln!("heavy component: {} bytes", next_bytes().len());

    phase("idle", &invoke, seconds, |_, _| {});
    phase("upload", &invoke, seconds, |stop, compiles| {
        let admin = bench_client(Duration::from_secs(300));
        while !stop.load(Ordering::Relaxed) {
            let bytes = next_bytes();
            let reply = admin.put(format!("{}/v1/plugins/heavy", host.url)).send(&bytes[..]);
            match reply {
                Ok(r) if r.status().is_success() => {
                    compiles.fetch_add(1, Ordering::Relaxed);
                }
                Ok(r) => panic!("upload refused: {}", r.status()),
                Err(e) => panic!("upload failed: {e}"),
            }
        }
    });
    phase("in-host-compile", &invoke, seconds, |stop, compiles| {
        let mut config = wasmtime::Config::new();
        config.parallel_compilation(true);
        let engine = wasmtime::Engine::new(&config).expect("engine");
        while !stop.load(Ordering::Relaxed) {
            let bytes = next_bytes();
            wasmtime::component::Component::new(&engine, &bytes).expect("compiles");
            compiles.fetch_add(1, Ordering::Relaxed);
        }
    });
    let host = Arc::into_inner(host).expect("no other owner");
    rt.block_on(host.stop()).expect("shutdown");
}
