#!/usr/bin/env bash
# Builds nasperf, trains one model per objective from the benchmark tables
# (NASPERF_BENCHDATA, default ../shared/benchdata), and serves them on
# 127.0.0.1:50051 until Ctrl-C. Models go to ./nasperf-models.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/build-env.sh
cargo build
nasperf="$CARGO_TARGET_DIR/debug/nasperf"
if [ ! -d nasperf-models ] || [ -z "$(ls -A nasperf-models)" ]; then
    "$nasperf" train --bench "$NASPERF_BENCHDATA" --out nasperf-models
fi
exec "$nasperf" serve --models nasperf-models --listen "${NASPERF_LISTEN:-127.0.0.1:50051}"
