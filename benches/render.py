#!/usr/bin/env python3
"""Renders BENCHMARKS.md from the raw results benches/run-all.sh keeps.

Usage: benches/render.py benches/results > BENCHMARKS.md

Every figure in the output is read from the files in the results directory;
the prose around them says what each figure measures. Figures that do not
come from this repository are marked as external.
"""

import json
import pathlib
import sys

results = pathlib.Path(sys.argv[1])
run = json.loads((results / "run.json").read_text())
criterion = {row["id"]: row for row in json.loads((results / "criterion.json").read_text())}
cold = json.loads((results / "cold-start.json").read_text())
cold_idle = json.loads((results / "cold-start-idle.json").read_text())
memory = json.loads((results / "memory.json").read_text())


def load_line(name):
    text = (results / name).read_text().strip()
    return text, dict(pair.split("=", 1) for pair in text.split())


load32_text, load32 = load_line("load-32.txt")
load1_text, load1 = load_line("load-1.txt")
upload_text = (results / "upload.txt").read_text().strip()
upload = {}
for line in upload_text.splitlines():
    row = dict(pair.split("=", 1) for pair in line.split())
    upload[row["phase"]] = row


def duration(ns):
    if ns >= 1e6:
        return f"{ns / 1e6:.2f} ms"
    if ns >= 1e3:
        return f"{ns / 1e3:.1f} us"
    return f"{ns:.1f} ns"


def median(bench_id):
    return criterion[bench_id]["median_ns"]


def cell(bench_id):
    row = criterion[bench_id]
    return f"{duration(row['median_ns'])} ({duration(row['median_low_ns'])} to {duration(row['median_high_ns'])})"


def sandbox_of(row):
    """`on`, `off` or `-`; results from before the `--sandbox` flag had the default, on."""
    return row.get("sandbox", "-" if row["pool"] == "-" else "on")


def cold_row(rows, level, pool, sandbox="on"):
    if pool == "-":
        sandbox = "-"
    return next(r for r in rows if r["level"] == level and r["pool"] == pool and sandbox_of(r) == sandbox)


def cold_table(rows):
    lines = ["| level | pool | sandbox | n | p50 | p90 | p99 | max |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(
            f"| {r['level']} | {r['pool']} | {sandbox_of(r)} | {r['n']} | {r['p50_us']} us | {r['p90_us']} us "
            f"| {r['p99_us']} us | {r['max_us']} us |"
        )
    return "\n".join(lines)


def ratio(a, b):
    return f"{a / b:.2f}x"


commit = run["commit"][:7] + (" (with uncommitted changes)" if run["dirty"] else "")
quick = (
    "\n**This is a `--quick` run** (fewer iterations, shorter loads): its figures are only a try of the script.\n"
    if run["quick"]
    else ""
)

sandbox_rows = [
    ("sandbox/echo_per_request", "fresh store + WASI context + instantiation + call + teardown"),
    ("sandbox/echo_per_process", "call on the kept instance (fuel, deadline and limiter reset per call)"),
]
procmgr_rows = [
    (
        "create_to_syncing_multi_thread",
        "`update_process(Create)` until the status watch shows Syncing; caller is a task on a 2-worker runtime (as the host's callers are)",
        "never under 50 ms (polls every 50 ms)",
    ),
    ("create_to_syncing_current_thread", "same, current-thread runtime", "never under 50 ms"),
    (
        "create_to_syncing_external_caller",
        "same, caller outside the runtime (`block_on`: two cross-thread wake-ups)",
        "never under 50 ms",
    ),
    ("create_terminate_cycle", "create, wait Syncing, terminate, wait Finished, same key", "65.7 us"),
    ("work_queue_enqueue_same_id", "the reference's enqueue workload (one id re-enqueued, dedup path)", "161 ns"),
    ("work_queue_dequeue_mostly_empty", "the reference's dequeue workload (one item, then empty)", "33 ns"),
    ("work_queue_enqueue", "distinct ids into a queue growing to 10,000", "not measured"),
    ("work_queue_dequeue", "ready items from a queue of up to 10,000", "not measured"),
    ("exponential_backoff", "`exponential_backoff(3, 1 s, 60 s)`", "16.8 us"),
]
runtime_rows = [
    ("warm/echo_in_process", "the sandbox call alone, no process boundary"),
    ("warm/echo_through_worker", "`Service::invoke` on a live worker: admission, IPC both ways, fresh instance in the worker"),
    ("warm/echo_over_http", "the same through the HTTP API (keep-alive client in the same process)"),
    ("warm/get_or_create_live_process", "key -> live worker, the fast path"),
] + [
    (f"cold_start/{pool}/{level}", what)
    for pool, what in [("pool_on", "first call, worker adopted from the warm pool"), ("pool_off", "first call, worker spawned for it")]
    for level in ["none", "namespace", "session"]
] + [
    ("terminate/pool_on", "terminate a live process (a pool refill may run beside it)"),
    ("terminate/pool_off", "terminate a live process"),
]


def table(rows, columns):
    out = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    out += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(out)


boundary = median("warm/echo_through_worker") - median("warm/echo_in_process")
warm_http = median("warm/echo_over_http") / 1e3
spawn = cold_row(cold, "baseline:spawn", "-")["p50_us"]
spawn_idle = cold_row(cold_idle, "baseline:spawn", "-")["p50_us"]
cold_summary = []
for level in ["none", "namespace", "session"]:
    on, off = cold_row(cold, level, "on"), cold_row(cold, level, "off")
    on_idle, off_idle = cold_row(cold_idle, level, "on"), cold_row(cold_idle, level, "off")
    cold_summary.append(
        [
            f"`{level}`",
            f"{on['p50_us']} us ({ratio(on['p50_us'], warm_http)} the warm HTTP call)",
            f"{off['p50_us']} us ({ratio(off['p50_us'], spawn)} the spawn)",
            f"{on_idle['p50_us']} us",
            f"{off_idle['p50_us']} us ({ratio(off_idle['p50_us'], spawn_idle)} the spawn)",
        ]
    )

sandbox_summary = []
for pool in ["on", "off"]:
    for level in ["none", "namespace", "session"]:
        rows = [r for r in cold if r["level"] == level and r["pool"] == pool]
        on = next((r for r in rows if sandbox_of(r) == "on"), None)
        off = next((r for r in rows if sandbox_of(r) == "off"), None)
        if on and off:
            sandbox_summary.append(
                [f"`{level}`", pool, f"{off['p50_us']} us", f"{on['p50_us']} us", ratio(on["p50_us"], off["p50_us"])]
            )

print(f"""# Benchmarks

Generated by `benches/run-all.sh` (which runs every benchmark below, keeps the
raw results in `benches/results/` and renders this file with
`benches/render.py`); rerun it to check. Every figure is from this repository
at the one commit named here; the only figures from elsewhere are the Go
reference column of the procmgr table, marked as such.
{quick}
| run | |
|---|---|
| commit | `{commit}` |
| started | {run['started_utc']} UTC |
| machine | `nproc` = {run['nproc']}, {run['cpu']}, {run['memory_gib']} GiB, Linux {run['kernel']} |
| toolchain | {run['rustc']}, release profile, wasmtime 48.0.8 |
| load average (1, 5, 15 min) | before {' '.join(run['load_before'])}, after {' '.join(run['load_after'])} |

The machine is a shared 2-vCPU VM: the same command gives figures 10-30 %
apart from one quarter of an hour to the next, so only figures of one run
compare well. Criterion figures are criterion's **median** of the samples
(`median.point_estimate` in `estimates.json`) with its 95 % confidence
interval in brackets.

## Sandbox core

`cargo bench --bench sandbox` (in-process: one engine, `echo`, default limits)

{table([[f"`{i}`", what, cell(i)] for i, what in sandbox_rows], ["bench", "what", "median"])}

## procmgr

`cargo bench --bench procmgr` (an instant syncer: the manager's own
overhead). The last column is **external**: the memo's Go reference
implementation as measured on this machine kind when procmgr was ported (its
harness is not in this repository).

{table([[f"`{i}`", what, cell(i), go] for i, what, go in procmgr_rows], ["bench", "what", "median", "Go reference (external)"])}

## The process boundary, cold start and terminate through the service

`cargo bench --bench runtime`: real worker processes of the release binary;
the cold-start rows time the first call for a new key through the service
(no HTTP), with the pool refilled before each iteration; the terminate rows
time `terminate` on a live process until it is finished (Shutdown, exit,
reap, cgroup removal).

{table([[f"`{i}`", what, cell(i)] for i, what in runtime_rows], ["bench", "what", "median"])}

The process boundary costs {duration(boundary)} per warm call over the
in-process call of the same run.

## Cold start over HTTP: `bulkhead bench cold-start`

`target/release/bulkhead bench cold-start --iterations {cold[0]['n']}` (back to back):

{cold_table(cold)}

`target/release/bulkhead bench cold-start --iterations {cold_idle[0]['n']} --idle-ms 200`
(200 ms of quiet before every measured request and every baseline step: a
first request after a lull):

{cold_table(cold_idle)}

p50 per level, against the warm call over HTTP (`warm/echo_over_http` above)
and the bare spawn of the same run:

{table(cold_summary, ["level", "pool on", "pool off", "pool on, after a lull", "pool off, after a lull"])}

What the worker sandbox (`worker.sandbox`: namespaces, uid drop, Landlock,
seccomp; see `host/src/worker/jail/`) costs a cold start: p50 of the rows
above with `worker.sandbox = "off"` and with the default `"best-effort"`
(every layer on this machine), measured in the same run. A pool worker is
sandboxed before it waits in the pool, so with the pool on only the
assignment's Landlock layer is on the request's path.

{table(sandbox_summary, ["level", "pool", "sandbox off", "sandbox on", "on / off"])}

## What a worker costs in memory: `bulkhead bench memory`

`target/release/bulkhead bench memory` reads `/proc/PID/smaps_rollup` of a
worker idle in the warm pool and of a worker assigned to a tenant, after its
first call and after 1000 calls. `rss` counts every resident page (the
binary's and the libraries' shared pages too), `pss` shares those among the
processes that map them, and `private` is what that worker alone holds: the
part that grows with the number of workers.

{table([[r['worker'], f"{r['rss_kib'] / 1024:.1f} MiB", f"{r['pss_kib'] / 1024:.1f} MiB", f"{r['private_kib'] / 1024:.1f} MiB"] for r in memory], ["worker", "rss", "pss", "private"])}

## HTTP load

`cargo bench --bench load -- 32 8 {load32['seconds']}` (32 keep-alive
connections over 8 namespaces; the client threads run on the same 2 cores as
the host and its workers):

```
{load32_text}
```

**{float(load32['rps']):,.0f} calls/s** with {load32['errors']} errors.

`cargo bench --bench load -- 1 1 {load1['seconds']}` (one connection: warm
`echo` latency over HTTP):

```
{load1_text}
```

Warm `echo` over HTTP at one connection: p50 **{load1['p50_us']} us**, p99 {load1['p99_us']} us.

## A heavy upload beside other tenants

`cargo bench --bench upload -- {upload['idle']['seconds']}`: two neighbour
tenants call `echo` back to back over HTTP, first with nothing else going on
(`idle`), then while an admin uploads a 1 MB plugin of 3,000 functions over and
over with new bytes each time (`upload`: bulkhead compiles it in its limited
child at nice 19), then while the same bytes are compiled in the host's own
process with wasmtime's parallel compilation (`in-host-compile`: what a host
without a compile child does). All three phases in one run, on one host.

```
{upload_text}
```

{table([[name, row['calls'], row['errors'], row['compiles'], row['p50_us'], row['p99_us'], f"{int(row['p99_us']) / int(upload['idle']['p99_us']):.2f}x"] for name, row in upload.items()], ["phase", "calls", "errors", "compiles", "p50 us", "p99 us", "p99 / idle p99"])}

The hostile-plugin issue's bound: neighbours' p99 during a heavy upload
within 2x of their p99 without it.
""")

peer_path = results / "http-peer.json"
if peer_path.exists():
    peer = json.loads(peer_path.read_text())
    rows = {(r["server"], r["connections"]): r for r in peer["rows"]}

    def against_peer(row, field):
        base = rows.get(("wasmtime serve", row["connections"]), {}).get(field)
        return row[field] / base if base else None

    def times(x):
        return "n/a" if x is None else f"{x:.2f}x"

    def peer_cells(row):
        return [
            row["server"], str(row["connections"]), str(row["requests"]), str(row["errors"] + row["non_2xx"]),
            str(row["p50_us"]), str(row["p99_us"]), str(row["rps"]),
            times(against_peer(row, "rps")), times(against_peer(row, "p50_us")),
        ]

    def aim(level):
        rps = rows.get((f"bulkhead {level}", 32))
        p50 = rows.get((f"bulkhead {level}", 1))
        rps_x = rps and against_peer(rps, "rps")
        p50_x = p50 and against_peer(p50, "p50_us")
        if rps_x is None or p50_x is None:
            return f"- level `{level}`: not measured"
        return (
            f"- level `{level}`: requests/s at 32 connections {rps_x:.2f}x the peer's "
            f"({'met' if rps_x >= 1 else 'missed'}); p50 at one connection {p50_x:.2f}x the peer's "
            f"({'met' if p50_x <= 1.5 else 'missed'})"
        )

    print(f"""
## wasi:http apps: bulkhead against `wasmtime serve`

`{peer['command']}` at commit `{peer['commit'][:7]}`{' (dirty tree)' if peer['dirty'] else ''},
{peer['started_utc']} UTC, {peer['nproc']} x {peer['cpu']}. One run, one
machine, one load client ({peer['client']}, keep-alive), one component: the
`http-hello` guest (`GET /` answers `hello from rust`). The peer is
{peer['peer']}, which instantiates the app afresh for every request, as
bulkhead does. bulkhead serves it at `/v1/http/hello/` through its HTTP API
and admission, and runs it in a worker process: one shared by every tenant
at level `none`, one per tenant at level `namespace` (one tenant here).
Each row ran for the command's seconds after a 2 s warm-up; the client
shares the {peer['nproc']} cores with the server under test.

{table([peer_cells(r) for r in peer["rows"]], ["server", "connections", "requests", "errors", "p50 us", "p99 us", "req/s", "req/s / peer", "p50 / peer"])}

The aim: at least the peer's requests/s at 32 connections, and a p50 at one
connection within 1.5x of the peer's, despite the process boundary:

{aim("none")}
{aim("namespace")}
""")
