#!/usr/bin/env bash
# Runs every benchmark of the repository at the current commit, keeps the raw
# results in benches/results/ and regenerates BENCHMARKS.md from them.
#
#   benches/run-all.sh            # the full run (about 15 minutes on 2 cores; the first
#                                 # also builds the wasmtime-cli peer of http-peer.sh, about
#                                 # 15 minutes more, and as root installs Debian's wrk)
#   benches/run-all.sh --quick    # fewer iterations and shorter loads, to try the script
#
# It records the commit (and whether the tree was dirty), nproc, the CPU, the
# load average before and after, and the toolchain, next to the raw JSON.
# Every figure in BENCHMARKS.md is read from those files by
# benches/render.py; nothing is typed in by hand.
set -euo pipefail
cd "$(dirname "$0")/.."

quick=false
[ "${1:-}" = "--quick" ] && quick=true
if $quick; then
  iterations=30 idle_iterations=10 load_seconds=3 latency_seconds=2 criterion=(--warm-up-time 1 --measurement-time 2)
else
  iterations=200 idle_iterations=50 load_seconds=10 latency_seconds=5 criterion=()
fi

out=benches/results
rm -rf "$out" target/criterion
mkdir -p "$out"

python3 - "$out/run.json" <<EOF
import json, os, platform, subprocess, sys, datetime
def sh(*cmd):
    return subprocess.run(cmd, capture_output=True, text=True).stdout.strip()
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "unknown")
mem_kib = next(int(l.split()[1]) for l in open("/proc/meminfo") if l.startswith("MemTotal"))
json.dump({
    "commit": sh("git", "rev-parse", "HEAD"),
    "dirty": bool(sh("git", "status", "--porcelain", "--", ".", ":!benches/results", ":!BENCHMARKS.md")),
    "started_utc": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M"),
    "nproc": os.cpu_count(),
    "cpu": cpu,
    "memory_gib": round(mem_kib / 2**20),
    "kernel": platform.release(),
    "rustc": sh("rustc", "--version"),
    "load_before": open("/proc/loadavg").read().split()[:3],
    "quick": "$quick" == "true",
}, open(sys.argv[1], "w"), indent=2)
EOF

cargo build --release -j2
bin=target/release/bulkhead

echo "== criterion benches" >&2
for bench in sandbox procmgr runtime; do
  cargo bench -j2 --bench "$bench" -- "${criterion[@]}" >&2
done
python3 - "$out/criterion.json" <<'EOF'
import json, pathlib, sys
rows = []
for path in sorted(pathlib.Path("target/criterion").glob("**/new/estimates.json")):
    meta = json.loads((path.parent / "benchmark.json").read_text())
    est = json.loads(path.read_text())
    rows.append({
        "id": meta["full_id"],
        "median_ns": est["median"]["point_estimate"],
        "median_low_ns": est["median"]["confidence_interval"]["lower_bound"],
        "median_high_ns": est["median"]["confidence_interval"]["upper_bound"],
        "mean_ns": est["mean"]["point_estimate"],
    })
json.dump(rows, open(sys.argv[1], "w"), indent=2)
EOF

echo "== bench cold-start" >&2
"$bin" bench cold-start --iterations "$iterations" --sandbox both --json > "$out/cold-start.json"
"$bin" bench cold-start --iterations "$idle_iterations" --idle-ms 200 --json > "$out/cold-start-idle.json"

echo "== bench memory" >&2
"$bin" bench memory --json > "$out/memory.json"

echo "== load" >&2
cargo bench -j2 --bench load -- 32 8 "$load_seconds" | tail -n 1 > "$out/load-32.txt"
cargo bench -j2 --bench load -- 1 1 "$latency_seconds" | tail -n 1 > "$out/load-1.txt"

echo "== upload beside neighbours" >&2
cargo bench -j2 --bench upload -- "$load_seconds" | grep '^phase=' > "$out/upload.txt"

echo "== wasi:http against wasmtime serve" >&2
benches/http-peer.sh "$load_seconds"

python3 - "$out/run.json" <<'EOF'
import json, sys
run = json.load(open(sys.argv[1]))
run["load_after"] = open("/proc/loadavg").read().split()[:3]
json.dump(run, open(sys.argv[1], "w"), indent=2)
EOF

python3 benches/render.py "$out" > BENCHMARKS.md
echo "BENCHMARKS.md regenerated from $out" >&2
