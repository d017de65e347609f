//! HTTP load against a real host: `echo` calls from concurrent keep-alive
//! connections spread over namespaces; prints requests/s and latency
//! percentiles. The host runs in this process (real HTTP server, real worker
//! processes); the client threads share the machine with it.
//!
//! Run: `cargo bench --bench load -- [CONNECTIONS] [NAMESPACES] [SECONDS]`
//! (defaults 32, 8, 10).

use std::time::{Duration, Instant};

use bulkhead::local::{LocalHost, bench_client, percentile};

fn arg(n: usize, default: u64) -> u64 {
    std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .nth(n)
        .and_then(|a| a.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let (connections, namespaces, seconds) = (arg(0, 32), arg(1, 8), arg(2, 10));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let host = rt
        .block_on(LocalHost::start(
            Some(env!("CARGO_BIN_EXE_bulkhead").into()),
            |config| {
                config.limits.max_concurrent = 64;
                config.limits.max_queued = 256;
            },
        ))
        .expect("host starts");
    let url = format!("{}/v1/invoke/echo", host.url);

    let agent = || bench_client(Duration::from_secs(30));
    // Warm every namespace's worker first: this measures warm calls.
    for ns in 0..namespaces {
        let reply = agent()
            .post(&url)
            .header("x-bulkhead-namespace", format!("load-{ns}"))
            .send("warm");
        assert_eq!(reply.expect("warm-up").status(), 200);
    }
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let threads: Vec<_> = (0..connections)
        .map(|c| {
            let (url, agent) = (url.clone(), agent());
            let ns = format!("load-{}", c % namespaces);
            std::thread::spawn(move || {
                let (mut latencies, mut errors) = (Vec::new(), 0u64);
                while Instant::now() < deadline {
                    let started = Instant::now();
                    let ok = match agent.post(&url).header("x-bulkhead-namespace", &ns).send("ping") {
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
    let started = Instant::now();
    let (mut all, mut errors) = (Vec::new(), 0);
    for t in threads {
        let (l, e) = t.join().expect("client thread");
        all.extend(l);
        errors += e;
    }
    let elapsed = started.elapsed();
    all.sort_unstable();
    let pct = |q: f64| percentile(&all, q);
    println!(
        "connections={connections} namespaces={namespaces} seconds={seconds} requests={} errors={errors} rps={:.0} p50_us={} p90_us={} p99_us={} max_us={}",
        all.len(),
        all.len() as f64 / elapsed.as_secs_f64(),
        pct(0.50).as_micros(),
        pct(0.90).as_micros(),
        pct(0.99).as_micros(),
        all.last().copied().unwrap_or_default().as_micros()
    );
    rt.block_on(host.stop()).expect("shutdown");
}
