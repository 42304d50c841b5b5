#!/usr/bin/env bash
# bench_render.sh - renders one frame of the demo scene through the fabric
# with 1, 2 and 4 local peers and prints the wall time and the speed-up over
# one peer, plus the same frame in-process on one thread (bench_raytrace).
#
# Usage: bench/bench_render.sh [BUILD_DIR] [SPP] [TILES] [WIDTH] [HEIGHT]
#   defaults: build 8 16 1920 1080, scene examples/scenes/demo.json
#   (override the scene with SCENE=path, the peer counts with PEERS="1 2 4",
#   the runs per configuration with REPEAT=3: the best is reported, since
#   other work on the machine only ever adds time).
#
# Each run starts `p2c2rd --listen 127.0.0.1:0 --ready-file F --local-peers N`
# in a scratch directory, runs `p2c2r render SCENE -o F.png --tiles TILES
# --spp SPP --json`, and stops the daemon.  Every frame must be
# byte-identical to the others (the split and the peers must not matter).
# Prints a table and one JSON line per run.  Ideal speed-up is
# min(N, cores): local peers are threads of one machine.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build}
spp=${2:-8}
tiles=${3:-16}
width=${4:-1920}
height=${5:-1080}
scene=${SCENE:-$root/examples/scenes/demo.json}
peers_list=${PEERS:-1 2 4}
repeat=${REPEAT:-3}
cores=$(nproc)

die() { echo "bench_render: $*" >&2; exit 2; }
[ -d "$build" ] || die "no build directory $build (build first: cmake -S . -B build -G Ninja && ninja -C build)"

# The renderer: `p2c2r render` once the dispatcher knows it, else the
# test driver that runs the same cmd_render.
if "$build/p2c2r" render --help >/dev/null 2>&1; then
    render=("$build/p2c2r" render)
elif [ -x "$build/tests/tasks/raytrace/rt_render_cli" ]; then
    render=("$build/tests/tasks/raytrace/rt_render_cli")
else
    die "neither '$build/p2c2r render' nor rt_render_cli is built"
fi
daemon=$build/p2c2rd
# (grep reads all of nm's output: with -q, nm could die of SIGPIPE under pipefail.)
nm "$daemon" 2>/dev/null | grep ' exec_raytrace$' >/dev/null ||
    die "$daemon does not contain the raytrace executor (rebuild it)"
[ -x "$build/bench/bench_raytrace" ] || die "bench_raytrace is not built"

work=$(mktemp -d "${TMPDIR:-/tmp}/bench-render.XXXXXX")
pid=
cleanup() {
    if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT

field() { grep -o "\"$1\":[0-9.]*" "$2" | head -1 | cut -d: -f2; }

echo "scene $scene at ${width}x${height}, $spp spp, $tiles tiles; $cores cores; best of $repeat runs"
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
"$build/bench/bench_raytrace" "$scene" --width "$width" --height "$height" --spp "$spp" --repeat "$repeat" \
    --output "$work/local.png" >"$work/local.txt"
local_s=$(grep -o '"render_s":[0-9.]*' "$work/local.txt" | cut -d: -f2)
grep '^{' "$work/local.txt"

declare -A wall
for n in $peers_list; do
    rm -f "$work/ready"
    "$daemon" --listen 127.0.0.1:0 --ready-file "$work/ready" --local-peers "$n" --log-level warn \
        >"$work/daemon$n.log" 2>&1 &
    pid=$!
    for _ in $(seq 1 100); do [ -s "$work/ready" ] && break; sleep 0.1; done
    [ -s "$work/ready" ] || { cat "$work/daemon$n.log"; die "p2c2rd with $n peers did not start"; }
    best=
    for r in $(seq 1 "$repeat"); do
        "${render[@]}" "$scene" -o "$work/fabric$n.png" --coordinator "$(cat "$work/ready")" --tiles "$tiles" \
            --spp "$spp" --width "$width" --height "$height" --json >"$work/fabric$n.$r.json"
        cmp -s "$work/fabric$n.png" "$work/local.png" || die "the frame from $n peers differs from the local one"
        w=$(field wall_us "$work/fabric$n.$r.json")
        if [ -z "$best" ] || [ "$w" -lt "$best" ]; then best=$w; cp "$work/fabric$n.$r.json" "$work/fabric$n.json"; fi
    done
    kill "$pid"
    wait "$pid" 2>/dev/null || true
    pid=
    wall[$n]=$best
    used=$(grep -o '"peers":\[.*\]' "$work/fabric$n.json" | grep -o '"peer":' | wc -l)
    echo "{\"bench\":\"raytrace_fabric\",\"peers\":$n,\"peers_used\":$used,\"width\":$width,\"height\":$height,\"spp\":$spp,\"tiles\":$tiles,\"runs\":$repeat,\"wall_s\":$(awk "BEGIN{printf \"%.3f\", ${wall[$n]}/1e6}"),\"speedup\":$(awk "BEGIN{printf \"%.2f\", ${wall[1]:-${wall[$n]}}/${wall[$n]}}"),\"ideal\":$(( n < cores ? n : cores ))}"
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
printf '\n%-22s %9s %9s %7s %11s\n' "run" "wall s" "speed-up" "ideal" "efficiency"
printf '%-22s %9.3f %9s %7s %11s\n' "in-process, 1 thread" "$local_s" "-" "-" "-"
for n in $peers_list; do
    ideal=$(( n < cores ? n : cores ))
    awk -v n="$n" -v w="${wall[$n]}" -v w1="${wall[1]:-${wall[$n]}}" -v ideal="$ideal" 'BEGIN {
        s = w1 / w
        printf "%-22s %9.3f %9.2f %7d %10.0f%%\n", "fabric, " n " peer" (n == 1 ? "" : "s"), w / 1e6, s, ideal, 100 * s / ideal
    }'
done
echo "all frames byte-identical to the in-process render"
