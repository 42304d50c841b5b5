#!/usr/bin/env bash
# bench_gateway.sh - the JSON/WebSocket gateway against the native protocol,
# same coordinator, same peers, same run (docs/PERFORMANCE.md, "The gateway").
#
# Usage: BUILD=build bash bench/bench_gateway.sh [--node] [W1_TASKS] [W2_TASKS]
#   W1: 1 in flight, 64 B echo (round trip p50/p99); W2: 256 in flight, 64 B
#   echo (tasks/s).  One p2c2rd (--local-peers 0) and one p2c2r-peer process
#   with 2 connections of 128 slots, as bench/compare.sh runs p2c2r.
#   --node: also a Node.js `ws` server answering the same JSON itself
#   (bench/competitors/ws_relay.js; `ws` installed from npm into a temporary
#   directory), driven by the same bench_gateway.
set -euo pipefail
BUILD=${BUILD:-build}
node=0
if [ "${1:-}" = "--node" ]; then node=1; shift; fi
w1=${1:-20000}
w2=${2:-500000}
for b in p2c2rd p2c2r-peer p2c2r bench/bench_gateway; do
    [ -x "$BUILD/$b" ] || { echo "$0: $BUILD/$b not found: run make build first" >&2; exit 2; }
done
tmp=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$tmp"
}
trap cleanup EXIT
"$BUILD/p2c2rd" --listen 127.0.0.1:0 --http 127.0.0.1:0 --ready-file "$tmp/addr" --local-peers 0 \
    --log-level info </dev/null >"$tmp/p2c2rd.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do [ -s "$tmp/addr" ] && break; sleep 0.05; done
addr=$(head -n 1 "$tmp/addr" | tr -d '[:space:]')
http=$(grep -o 'event=http_listening addr=[^ ]*' "$tmp/p2c2rd.log" | head -n 1 | cut -d= -f3)
"$BUILD/p2c2r-peer" --coordinator "$addr" --slots 128 --types echo --connections 2 \
    --key "$tmp/peer.key" --log-level warn </dev/null >"$tmp/peer.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do
    "$BUILD/p2c2r" stats --coordinator "$addr" --json 2>/dev/null | grep -q '"peers_connected":2' && break
    sleep 0.05
done
coord_pid=${pids[0]}
# CPU time of p2c2rd (user + system, clock ticks) from /proc.
coord_ticks() { awk '{print $14 + $15}' "/proc/$coord_pid/stat"; }
hz=$(getconf CLK_TCK)
# One phase: its client's JSON line, and p2c2rd's CPU per task over the
# whole phase (warm-up included: tasks + warm-up of the client's default).
phase() {
    local name=$1 tasks=$2
    shift 2
    local t0 out t1
    t0=$(coord_ticks)
    out=$("$@")
    t1=$(coord_ticks)
    local warm=$((tasks / 20 < 2000 ? tasks / 20 : 2000))
    echo "$name: $out coordinator_cpu_us_per_task=$(awk -v d=$((t1 - t0)) -v hz="$hz" -v n=$((tasks + warm)) \
        'BEGIN { printf "%.2f", d * 1e6 / hz / n }')"
}
phase "native W1" "$w1" "$BUILD/p2c2r" bench --coordinator "$addr" --tasks "$w1" --inflight 1 --json
phase "gateway W1" "$w1" "$BUILD/bench/bench_gateway" --http "$http" --tasks "$w1" --inflight 1 --json
phase "native W2" "$w2" "$BUILD/p2c2r" bench --coordinator "$addr" --tasks "$w2" --inflight 256 --json
phase "gateway W2" "$w2" "$BUILD/bench/bench_gateway" --http "$http" --tasks "$w2" --inflight 256 --json
if [ "$node" = 1 ]; then
    command -v node >/dev/null && command -v npm >/dev/null || { echo "$0: --node needs node and npm" >&2; exit 2; }
    (cd "$tmp" && npm install --no-audit --no-fund --silent ws@8 >/dev/null)
    NODE_PATH="$tmp/node_modules" node "$(dirname "$0")/competitors/ws_relay.js" "$tmp/node.addr" &
    pids+=($!)
    for _ in $(seq 100); do [ -s "$tmp/node.addr" ] && break; sleep 0.05; done
    naddr=$(head -n 1 "$tmp/node.addr" | tr -d '[:space:]')
    echo "node ws W1: $("$BUILD/bench/bench_gateway" --http "$naddr" --tasks "$w1" --inflight 1 --json)"
    echo "node ws W2: $("$BUILD/bench/bench_gateway" --http "$naddr" --tasks "$w2" --inflight 256 --json)"
fi
