#!/usr/bin/env bash
# bench_anim.sh - frames per second of an animation rendered as durable jobs
# (`p2c2r render --frames N`) against the same frames as live tasks
# (`--live`, one batch per frame) and in-process (`--local`).
#
# Usage: bench/bench_anim.sh [BUILD_DIR] [FRAMES] [TILES]
#   defaults: build 24 8, scene examples/scenes/orbit.json (320x180, 8 spp);
#   SCENE=path, PEERS=N local peers (default 2), REPEAT=3 runs of each (the
#   best is reported: other work on the machine only ever adds time).
#
# Starts `p2c2rd --listen 127.0.0.1:0 --ready-file F --local-peers N --state
# DIR` in a scratch directory, runs each mode REPEAT times with --json, checks
# that every mode's frames are byte-identical, and prints one line per mode.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build}
frames=${2:-24}
tiles=${3:-8}
scene=${SCENE:-$root/examples/scenes/orbit.json}
peers=${PEERS:-2}
repeat=${REPEAT:-3}

die() { echo "bench_anim: $*" >&2; exit 2; }
[ -x "$build/p2c2r" ] || die "no $build/p2c2r (build first: make build)"
tmp=$(mktemp -d)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT

"$build/p2c2rd" --listen 127.0.0.1:0 --ready-file "$tmp/ready" --local-peers "$peers" --state "$tmp/state" \
    --log-level warn >"$tmp/p2c2rd.log" 2>&1 &
pid=$!
for _ in $(seq 100); do [ -s "$tmp/ready" ] && break; sleep 0.05; done
[ -s "$tmp/ready" ] || die "p2c2rd did not start: $(cat "$tmp/p2c2rd.log")"
addr=$(cat "$tmp/ready")

echo "scene $scene, $frames frames, $tiles tiles, $peers local peers, best of $repeat"
for mode in durable live local; do
    best=0
    for r in $(seq "$repeat"); do
        out="$tmp/$mode-$r"
        mkdir -p "$out"
        flag=()
        [ "$mode" = live ] && flag=(--live)
        [ "$mode" = local ] && flag=(--local)
        json=$("$build/p2c2r" render "$scene" --frames "$frames" --tiles "$tiles" -c "$addr" \
                   -o "$out/f_%04d.png" "${flag[@]}" --json)
        fps=$(python3 -c 'import json,sys; d=json.loads(sys.argv[1]); assert d["status"]=="ok"; print(d["frames_per_s"])' "$json")
        best=$(python3 -c 'import sys; print(max(float(sys.argv[1]), float(sys.argv[2])))' "$best" "$fps")
        for f in "$out"/f_*.png; do
            cmp -s "$f" "$tmp/durable-1/$(basename "$f")" || die "$f differs from the first durable run"
        done
    done
    printf '%-8s %.2f frames/s\n' "$mode" "$best"
done
