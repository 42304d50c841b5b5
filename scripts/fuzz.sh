#!/usr/bin/env bash
# fuzz.sh - runs every libFuzzer target for a while and fails on any crash.
#
# Usage: scripts/fuzz.sh BUILD_DIR SECONDS
#   BUILD_DIR  a build configured with -DP2C2R_FUZZ=ON -DCMAKE_C_COMPILER=clang
#              (the targets are built here first if needed)
#   SECONDS    how long to fuzz each target
#
# Each target runs on a scratch copy of its checked-in corpus
# (tests/fuzz/corpus/<target>), so the corpus in the tree never grows.
# Prints one summary line per target; on a crash keeps the scratch
# directory with the reproducer and the log, and exits 1.
set -euo pipefail

usage() {
    echo "Usage: $0 BUILD_DIR SECONDS" >&2
    echo "Runs each fuzz target in BUILD_DIR (configured with -DP2C2R_FUZZ=ON and clang) for SECONDS." >&2
    exit 2
}

[ $# -eq 2 ] || usage
build=$1
secs=$2
case $secs in '' | *[!0-9]*) echo "$0: SECONDS must be a whole number, got '$secs'" >&2; usage ;; esac
[ "$secs" -ge 1 ] || { echo "$0: SECONDS must be at least 1" >&2; exit 2; }

root=$(cd "$(dirname "$0")/.." && pwd)
corpus_root=$root/tests/fuzz/corpus
# Every directory under the corpus root names a target.
targets=()
for d in "$corpus_root"/*/; do targets+=("$(basename "$d")"); done

if [ ! -f "$build/build.ninja" ] && [ ! -f "$build/Makefile" ]; then
    echo "$0: $build is not a configured build directory." >&2
    echo "Configure one with: cmake -S $root -B $build -G Ninja -DP2C2R_FUZZ=ON -DCMAKE_C_COMPILER=clang" >&2
    exit 2
fi
cmake --build "$build" --target "${targets[@]}" >/dev/null || {
    echo "$0: building the fuzz targets in $build failed (is it configured with -DP2C2R_FUZZ=ON and clang?)" >&2
    exit 2
}

status=0
for t in "${targets[@]}"; do
    bin=$build/tests/fuzz/$t
    if [ ! -x "$bin" ]; then
        echo "$t: FAIL: $bin not found (configure $build with -DP2C2R_FUZZ=ON and clang)"
        status=1
        continue
    fi
    work=$(mktemp -d "${TMPDIR:-/tmp}/p2c2r-$t.XXXXXX")
    mkdir -p "$work/corpus" "$work/artifacts"
    if [ -d "$corpus_root/$t" ]; then
        cp -R "$corpus_root/$t/." "$work/corpus/"
    fi
    seeds=$(find "$work/corpus" -type f | wc -l)
    rc=0
    "$bin" "$work/corpus" \
        -max_total_time="$secs" \
        -artifact_prefix="$work/artifacts/" \
        -print_final_stats=1 \
        -timeout=10 -rss_limit_mb=2048 \
        >"$work/log" 2>&1 || rc=$?
    crashes=$(find "$work/artifacts" -type f | wc -l)
    runs=$(grep -Eo 'stat::number_of_executed_units: *[0-9]+' "$work/log" | grep -Eo '[0-9]+$' | tail -1 || true)
    [ -n "$runs" ] || runs=$(grep -Eo '^#[0-9]+' "$work/log" | tail -1 | tr -d '#' || true)
    entries=$(find "$work/corpus" -type f | wc -l)
    if [ "$rc" -ne 0 ] || [ "$crashes" -ne 0 ]; then
        echo "$t: FAIL after ${secs}s: exit $rc, $crashes crash file(s); reproducer and log kept in $work"
        grep -E 'ERROR|runtime error|invariant violated|SUMMARY' "$work/log" | head -5 | sed 's/^/    /'
        status=1
    else
        echo "$t: ok, ${runs:-?} runs in ${secs}s, corpus $seeds -> $entries inputs (scratch copy)"
        rm -rf "$work"
    fi
done
exit $status
