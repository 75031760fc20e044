#!/usr/bin/env bash
# Builds nasperf (release) and serves on 127.0.0.1:50051 until Ctrl-C, with
# the embedded SQLite store in ./nasperf-data. The first start imports the
# benchmark tables (NASPERF_BENCHDATA, default ../shared/benchdata) into the
# store and trains one model per objective before it reports ready; a
# second start reuses what it stored.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/build-env.sh
cargo build --release
exec "$CARGO_TARGET_DIR/release/nasperf" serve \
    --bench "$NASPERF_BENCHDATA" \
    --listen "${NASPERF_LISTEN:-127.0.0.1:50051}"
