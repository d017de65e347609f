#!/usr/bin/env bash
# Runs the bounded fuzz targets (host/src/fuzz.rs) longer than the test
# suite does, in release mode: IPC frames, config files, uploads.
#   scripts/fuzz.sh [SECONDS_PER_TARGET]   (default 60)
# BULKHEAD_FUZZ_SEED=N replays a run; a failure prints its seed.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-60}"
BULKHEAD_FUZZ_SECONDS="$seconds" cargo test -j2 --release -p bulkhead --lib fuzz:: -- --nocapture --test-threads 1
