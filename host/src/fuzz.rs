//! Bounded fuzzing of what reaches the host from outside: IPC frames from a
//! (possibly compromised) worker, configuration files, and uploads. Each
//! target mutates valid inputs at random (a seed it prints) for a bounded
//! time and checks that every input gets a typed answer: no panic, no hang.
//!
//! In the test suite each target runs for a moment;
//! `scripts/fuzz.sh SECONDS` runs them longer, in release mode.
//! `BULKHEAD_FUZZ_SEED` replays a run. A finding becomes a regression test
//! beside the code it concerns.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::{Duration, Instant};

use crate::config::{Config, Overrides};
use crate::ipc::{FromWorker, PluginSpec, ToWorker};
use crate::sandbox::{InstanceMode, SandboxConfig, Validator};

/// How long each target runs: `BULKHEAD_FUZZ_SECONDS`, else a moment.
fn budget() -> Duration {
    std::env::var("BULKHEAD_FUZZ_SECONDS")
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
        .map_or(Duration::from_millis(1500), Duration::from_secs_f64)
}

fn seed() -> u64 {
    std::env::var("BULKHEAD_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| fastrand::u64(..))
}

/// Runs `one` on inputs made by `make` until the budget is spent; a panic
/// fails the test with the seed and the input's number.
fn fuzz<T: std::fmt::Debug>(target: &str, mut make: impl FnMut(&mut fastrand::Rng) -> T, mut one: impl FnMut(&T)) {
    let seed = seed();
    let mut rng = fastrand::Rng::with_seed(seed);
    let started = Instant::now();
    let mut inputs = 0u64;
    while inputs == 0 || started.elapsed() < budget() {
        let input = make(&mut rng);
        if catch_unwind(AssertUnwindSafe(|| one(&input))).is_err() {
            let shown: String = format!("{input:?}").chars().take(2000).collect();
            panic!("{target}: input {inputs} of BULKHEAD_FUZZ_SEED={seed} panicked: {shown}");
        }
        inputs += 1;
    }
    eprintln!(
        "fuzz {target}: {inputs} inputs in {:?} (BULKHEAD_FUZZ_SEED={seed})",
        started.elapsed()
    );
}

/// A random change of `bytes`: flips, cuts, insertions, repeats, splices.
fn mutate(rng: &mut fastrand::Rng, bytes: &[u8]) -> Vec<u8> {
    let mut out = bytes.to_vec();
    for _ in 0..rng.usize(1..=4) {
        let len = out.len();
        match rng.u8(..6) {
            0 if len > 0 => {
                let i = rng.usize(..len);
                out[i] ^= 1 << rng.u8(..8);
            }
            1 if len > 0 => out.truncate(rng.usize(..len)),
            2 => {
                let i = rng.usize(..=len);
                let junk: Vec<u8> = (0..rng.usize(1..16)).map(|_| rng.u8(..)).collect();
                out.splice(i..i, junk);
            }
            3 if len > 0 => {
                let i = rng.usize(..len);
                out[i] = [0, 0xff, 0x7f, 0x80][rng.usize(..4)];
            }
            4 if len > 1 => {
                let (a, b) = (rng.usize(..len), rng.usize(..len));
                let (a, b) = (a.min(b), a.max(b));
                let piece = out[a..b].to_vec();
                let at = rng.usize(..=out.len());
                out.splice(at..at, piece);
            }
            _ if len > 0 => {
                let i = rng.usize(..len);
                out.remove(i);
            }
            _ => out.push(rng.u8(..)),
        }
    }
    out
}

/// Frames as a worker or the host would send them.
fn valid_frames() -> Vec<u8> {
    let mut stream = Vec::new();
    let mut frame = |bytes: Vec<u8>| {
        stream.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
        stream.extend_from_slice(&bytes);
    };
    let to = [
        ToWorker::Ping { nonce: 7 },
        ToWorker::PluginRemove { name: "echo".into() },
        ToWorker::Shutdown {
            grace: Duration::from_secs(3),
        },
        ToWorker::PluginAdd(PluginSpec {
            name: "p".into(),
            mode: InstanceMode::PerProcess,
            artifact: crate::sandbox::Artifact {
                sha256: crate::sandbox::sha256(b"artifact"),
                size: 8,
                path: "/cache/artifact".into(),
                compiled_sha256: crate::sandbox::sha256(b"compiled"),
                world: crate::sandbox::World::HttpProxy,
            },
        }),
    ];
    for message in &to {
        frame(postcard::to_stdvec(message).unwrap());
    }
    let from = [
        FromWorker::Hello { protocol: 2, pid: 42 },
        FromWorker::Ready,
        FromWorker::Pong { nonce: 9 },
        FromWorker::PluginAdded {
            name: "p".into(),
            error: Some("no".into()),
        },
        FromWorker::InitFailed { message: "x".into() },
    ];
    for message in &from {
        frame(postcard::to_stdvec(message).unwrap());
    }
    stream
}

/// Reads every frame of `stream` as `T` until the end or an error.
fn drain<T: serde::de::DeserializeOwned>(runtime: &tokio::runtime::Runtime, stream: &[u8]) {
    runtime.block_on(async {
        let (mut receiver, _sender) = crate::ipc::channel::<_, _, T, T>(stream, tokio::io::sink());
        // Each frame consumes input, so this ends; the deadline says so.
        let read = tokio::time::timeout(Duration::from_secs(10), async {
            while let Some(frame) = receiver.recv().await {
                if frame.is_err() {
                    break;
                }
            }
        });
        assert!(read.await.is_ok(), "the decoder hung");
    });
}

#[test]
fn ipc_frames_from_a_hostile_peer_are_refused_not_fatal() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let valid = valid_frames();
    drain::<FromWorker>(&runtime, &valid);
    fuzz(
        "ipc frames",
        |rng| {
            if rng.u8(..10) == 0 {
                // A frame that claims to be huge, or pure noise.
                let mut noise: Vec<u8> = (0..rng.usize(..64)).map(|_| rng.u8(..)).collect();
                noise.splice(0..0, rng.u32(..).to_be_bytes());
                noise
            } else {
                mutate(rng, &valid)
            }
        },
        |stream| {
            drain::<FromWorker>(&runtime, stream);
            drain::<ToWorker>(&runtime, stream);
        },
    );
}

#[test]
fn mutated_config_files_load_or_name_their_error() {
    let shipped = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../config/bulkhead.toml")).unwrap();
    let example = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../config/examples/multi-tenant.toml"
    ))
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fuzzed.toml");
    let words = [
        "\"0s\"",
        "\"-1s\"",
        "\"1e400s\"",
        "18446744073709551616",
        "-1",
        "\"\"",
        "[]",
        "{}",
        "true",
        "\"64M\"",
        "\"999999TiB\"",
        "\"0.0.0.0:0\"",
        "\"session\"",
        "\"\\u0000\"",
        "nan",
        "inf",
        "\"../..\"",
        "\"/\"",
    ];
    fuzz(
        "config",
        |rng| {
            let base = if rng.bool() { &shipped } else { &example };
            // Uncomment lines, replace values with odd ones, or mutate bytes.
            let mut lines: Vec<String> = base.lines().map(str::to_owned).collect();
            for _ in 0..rng.usize(1..6) {
                let i = rng.usize(..lines.len());
                let line = lines[i].trim_start_matches("# ").to_owned();
                lines[i] = match line.split_once(" = ") {
                    Some((key, _)) if rng.bool() => format!("{key} = {}", words[rng.usize(..words.len())]),
                    _ => line,
                };
            }
            let text = lines.join("\n");
            if rng.u8(..4) == 0 {
                String::from_utf8_lossy(&mutate(rng, text.as_bytes())).into_owned()
            } else {
                text
            }
        },
        |text| {
            std::fs::write(&path, text).unwrap();
            let _ = Config::load(
                Some(&path),
                std::iter::empty::<(String, String)>(),
                &Overrides::default(),
            );
        },
    );
}

#[test]
fn mutated_uploads_are_valid_or_invalid_plugins_never_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let config = SandboxConfig::new(dir.path().join("cache"), dir.path().join("data"));
    let validator = Validator::new(&config, true).unwrap();
    let valid = [crate::builtin::ECHO.wasm, crate::builtin::COUNTER.wasm];
    assert!(validator.compile(valid[0]).is_ok());
    fuzz(
        "uploads",
        |rng| {
            let base = valid[rng.usize(..valid.len())];
            mutate(rng, base)
        },
        |bytes| {
            let _ = validator.compile(bytes);
        },
    );
}
