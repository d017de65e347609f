#!/usr/bin/env bash
# One wasi:http hello component (guests/http-hello, `GET /` answers "hello
# from rust"), served side by side in one run on this machine by
# `wasmtime serve` (the peer, wasmtime-cli at the wasmtime version bulkhead
# embeds) and by bulkhead at `/v1/http/hello/` with isolation levels `none`
# and `namespace`; the same load client (wrk, keep-alive) at 1 and at 32
# connections against each. Writes benches/results/http-peer.json.
#
#   benches/http-peer.sh [SECONDS]     # seconds of load per row (default 10)
#
# The peer is built once into target/tools (cargo install, about 15 minutes
# on 2 cores); wrk comes from Debian's package (apt-get install, as root).
# Both servers are loopback only, and every process started here is killed
# on exit.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${1:-10}
# The wasmtime that bulkhead embeds, from Cargo.lock.
wasmtime_version=$(awk '/^name = "wasmtime"$/ { getline; gsub(/[^0-9.]/, ""); print; exit }' Cargo.lock)
[ -n "$wasmtime_version" ] || { echo "no wasmtime in Cargo.lock" >&2; exit 1; }
root=$PWD/target/tools/wasmtime-$wasmtime_version
wasmtime=$root/bin/wasmtime
out=benches/results
mkdir -p "$out"

if [ ! -x "$wasmtime" ]; then
  echo "== building the peer: wasmtime-cli $wasmtime_version into $root" >&2
  CARGO_TARGET_DIR=$PWD/target/peer-build cargo install wasmtime-cli --version "$wasmtime_version" \
    --locked --root "$root" -j2 >&2
fi
if ! command -v wrk > /dev/null; then
  if [ "$(id -u)" = 0 ]; then
    apt-get install -y -q wrk >&2
  else
    echo "http-peer.sh needs wrk (Debian package wrk); install it or run as root" >&2
    exit 1
  fi
fi

cargo build --release -j2 >&2
bin=$PWD/target/release/bulkhead
app=$PWD/target/guests-wasm/wasm32-wasip2/release/guest_http_hello.wasm
[ -f "$app" ] || { echo "no $app: the release build should have made it" >&2; exit 1; }

scratch=$(mktemp -d)
server=  # the pid of the server under test, while one runs
stop_server() {
  if [ -n "$server" ]; then
    kill "$server" 2> /dev/null || true
    wait "$server" 2> /dev/null || true
    server=
  fi
}
cleanup() {
  stop_server
  rm -rf "$scratch"
}
trap cleanup EXIT

# Fails the run, showing the log of the server under test.
fail() {
  echo "$1" >&2
  if [ -n "${2:-}" ] && [ -f "$2" ]; then cat "$2" >&2; fi
  exit 1
}

# wrk's summary of one row, as one JSON object.
cat > "$scratch/report.lua" <<'EOF'
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"requests":%d,"errors":%d,"non_2xx":%d,"seconds":%.3f,"p50_us":%d,"p99_us":%d,"max_us":%d}\n',
    summary.requests, e.connect + e.read + e.write + e.timeout, e.status,
    summary.duration / 1e6, latency:percentile(50), latency:percentile(99), latency.max))
end
EOF

# Waits (at most about 120 s) until GET $1 answers 200; $3 is the log.
wait_ready() {
  local url=$1 header=$2 log=$3
  for _ in $(seq 600); do
    kill -0 "$server" 2> /dev/null || fail "the server of $url exited" "$log"
    if [ "$(curl -s -m 2 -o /dev/null -w '%{http_code}' -H "$header" "$url")" = 200 ]; then
      return 0
    fi
    sleep 0.2
  done
  fail "$url never answered 200" "$log"
}

# Runs the two loads against $2 (with header $3); appends rows for server $1.
load() {
  local name=$1 url=$2 header=$3
  # Warm up: workers started, instances pooled, connections open.
  wrk -t2 -c32 -d2s -H "$header" "$url" > /dev/null
  for connections in 1 32; do
    local threads=$((connections == 1 ? 1 : 2))
    local row
    row=$(wrk -t"$threads" -c"$connections" -d"${seconds}s" -H "$header" -s "$scratch/report.lua" "$url" | tail -n 1)
    [[ $row == \{*\} ]] || fail "wrk gave no summary for $name: $row"
    echo "$name c=$connections $row" >&2
    printf '{"server":"%s","connections":%d,%s\n' "$name" "$connections" "${row#\{}" >> "$scratch/rows"
  done
}

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$wasmtime" serve -O pooling-allocator -S cli --addr "127.0.0.1:$port" "$app" 2> "$scratch/peer.log" &
server=$!
wait_ready "http://127.0.0.1:$port/" "x-none: 1" "$scratch/peer.log"
load "wasmtime serve" "http://127.0.0.1:$port/" "x-none: 1"
stop_server

for level in none namespace; do
  mkdir -p "$scratch/$level"
  cat > "$scratch/$level/bulkhead.toml" <<EOF
[server]
listen = "127.0.0.1:0"
[isolation]
level = "$level"
[data]
dir = "$scratch/$level/data"
[plugins.hello]
path = "$app"
EOF
  log=$scratch/$level/log
  "$bin" serve --config "$scratch/$level/bulkhead.toml" 2> "$log" &
  server=$!
  url=
  for _ in $(seq 600); do
    url=$(sed -n 's/^listening on //p' "$log")
    [ -n "$url" ] && break
    kill -0 "$server" 2> /dev/null || fail "bulkhead ($level) exited" "$log"
    sleep 0.2
  done
  [ -n "$url" ] || fail "bulkhead ($level) did not start" "$log"
  wait_ready "$url/v1/http/hello/" "x-bulkhead-namespace: bench" "$log"
  load "bulkhead $level" "$url/v1/http/hello/" "x-bulkhead-namespace: bench"
  stop_server
done

python3 - "$scratch/rows" "$out/http-peer.json" "$seconds" "$wasmtime_version" <<'EOF'
import json, os, subprocess, sys, datetime
rows = [json.loads(line) for line in open(sys.argv[1])]
for row in rows:
    row["rps"] = round(row["requests"] / row["seconds"])
sh = lambda *cmd: subprocess.run(cmd, capture_output=True, text=True).stdout.strip()
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "unknown")
json.dump({
    "command": f"benches/http-peer.sh {sys.argv[3]}",
    "commit": sh("git", "rev-parse", "HEAD"),
    "dirty": bool(sh("git", "status", "--porcelain", "--", ".", ":!benches/results", ":!BENCHMARKS.md")),
    "started_utc": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M"),
    "nproc": os.cpu_count(),
    "cpu": cpu,
    "peer": f"wasmtime-cli {sys.argv[4]}: wasmtime serve -O pooling-allocator -S cli",
    "client": sh("sh", "-c", "wrk -v 2>&1 | head -n 1"),
    "rows": rows,
}, open(sys.argv[2], "w"), indent=2)
EOF
echo "wrote $out/http-peer.json" >&2
