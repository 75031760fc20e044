#!/usr/bin/env bash
# Fuzzes every parser of outside input (the targets in fuzz/, which link
# nasperf-core only, never LightGBM's C++): architecture encodings, proxy
# maps, model text, model manifests with their text, the benchmark tables.
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]     (default 180 s, every target)
#
# A crash stops the script with libFuzzer's report and the input that
# crashed, saved under $NASPERF_FUZZ_DIR/artifacts/<target>/; replay it with
# `cargo fuzz run <target> <file>` in fuzz/, and keep it as a regression test
# beside the parser. Corpora grow in $NASPERF_FUZZ_DIR/corpus (default
# ~/.cache/nasperf-fuzz), outside the work tree, so each run starts where the
# last one stopped.
#
# Seeds come from the benchmark tables ($NASPERF_BENCHDATA: the first rows
# of each table, never committed) and, when a nasperf binary is built
# ($NASPERF_BIN, default the release build), from a small model it trains.
#
# cargo-fuzz needs the compiler's -Z flags (sanitizers, coverage). This
# machine has one toolchain, stable, and no other can be fetched, so the
# flags are unlocked with RUSTC_BOOTSTRAP=1 instead of a nightly toolchain.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/build-env.sh

seconds="${1:-180}"
shift || true
all_targets=(arch_encoding proxy_map model_text model_manifest bench_table)
if [ "$#" -gt 0 ]; then targets=("$@"); else targets=("${all_targets[@]}"); fi

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "== installing cargo-fuzz"
    cargo install --locked cargo-fuzz --version 0.13.2
fi
export RUSTC_BOOTSTRAP=1

work="${NASPERF_FUZZ_DIR:-$HOME/.cache/nasperf-fuzz}"
seeds="$work/seeds"
mkdir -p "$work/corpus" "$work/artifacts"
rm -rf "$seeds"
mkdir -p "$seeds"/{arch_encoding,proxy_map,model_text,model_manifest,bench_table}

echo "== seeds"
# Every spelling clients use, valid and nearly valid.
i=0
for arch in '|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_1x1~1|none~2|' \
    '(4, 3, 3, 0, 0, 0)' '421211' '[4, 3, 3, 0, 0, 0]' '|none~0|+|none~0|none~1|+|none~0|none~1|none~2|' \
    '444444' '42121' '(4,3,3,0,0,0)' ' 421211 '; do
    printf '%s' "$arch" > "$seeds/arch_encoding/$i"
    i=$((i + 1))
done
if [ -d "$NASPERF_BENCHDATA" ]; then
    # One seed per objective: the byte choosing it, then its table's first rows.
    python3 - "$NASPERF_BENCHDATA" "$seeds/bench_table" <<'PY'
import os, sys
root, out = sys.argv[1], sys.argv[2]
n = 0
for dirpath, _, files in sorted(os.walk(root)):
    for name in sorted(files):
        if not name.endswith(".csv"):
            continue
        with open(os.path.join(dirpath, name), "rb") as f:
            head = b"".join(f.readline() for _ in range(12))
        for choice in range(0, 256, 37):
            with open(os.path.join(out, f"{n}"), "wb") as seed:
                seed.write(bytes([choice]) + head)
            n += 1
PY
fi
bin="${NASPERF_BIN:-$CARGO_TARGET_DIR/release/nasperf}"
if [ -x "$bin" ] && [ -d "$NASPERF_BENCHDATA" ]; then
    models="$(mktemp -d)"
    "$bin" train --bench "$NASPERF_BENCHDATA" --out "$models" --iterations 6 --jobs 1 \
        --objective cifar10/val_acc_200ep --objective cifar10/edgegpu_latency >/dev/null
    i=0
    for manifest in "$models"/*/*.manifest.json; do
        [ -f "$manifest" ] || continue
        text="$(dirname "$manifest")/$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["model_file"])' "$manifest")"
        cp "$text" "$seeds/model_text/$i"
        { cat "$manifest"; printf '\0'; cat "$text"; } > "$seeds/model_manifest/$i"
        i=$((i + 1))
    done
    rm -rf "$models"
    echo "seed models: $i"
else
    echo "no nasperf binary at $bin: model targets start without a trained model" >&2
fi

cd fuzz
for target in "${targets[@]}"; do
    echo "== fuzz $target for ${seconds}s"
    mkdir -p "$work/corpus/$target" "$work/artifacts/$target"
    log="$work/$target.log"
    set +e
    cargo fuzz run -O "$target" "$work/corpus/$target" "$seeds/$target" -- \
        -max_total_time="$seconds" -artifact_prefix="$work/artifacts/$target/" \
        -print_final_stats=1 >"$log" 2>&1
    status=$?
    set -e
    grep -E '^(Done|stat::number_of_executed_units|stat::new_units_added|stat::peak_rss_mb)|INFO: seed corpus' "$log" || true
    if [ "$status" -ne 0 ]; then
        tail -n 60 "$log" >&2
        echo "fuzz target $target failed (exit $status); the input is in $work/artifacts/$target/, the log in $log" >&2
        exit "$status"
    fi
done
