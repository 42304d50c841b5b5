#!/usr/bin/env bash
# bench_durable.sh - durable jobs against live tasks (issue 13), one run:
#   1. W2 alone (p2c2r bench: 64 B echo tasks, 256 in flight, p2c2r-peer
#      --connections 2 --slots 128) against p2c2rd --state;
#   2. durable jobs alone: acknowledged jobs/s and ack latency p50/p99 with a
#      live probe (one echo in flight) in the same run, per --job-sync mode
#      and batch size;
#   3. W2 with a durable load beside it (bench_durable at --rate, default
#      2,000 jobs/s, batches of 32);
#   4. when nats-server and libnats-dev are installed (scripts/deps.sh
#      --bench): NATS JetStream doing the same (bench/competitors/
#      bench_jetstream.c: a work-queue stream on file storage, a job counted
#      at its PubAck, a worker acking each), batches of 1 and 32;
#   5. when redis-server is installed (scripts/deps.sh --bench): Redis with
#      an append-only file (everysec and always), RPUSH of a 64-byte job,
#      one at a time and pipelined 32 deep (redis-benchmark).
# Each line also gives the coordinator's CPU (utime + stime from /proc, 10 ms
# ticks) per task or job: on a shared machine wall-clock throughput varies
# run to run far more than the 10% the comparison is about, CPU time much
# less.
# Usage: BUILD=build bash bench/bench_durable.sh [W2_TASKS] [SECONDS]
set -euo pipefail
BUILD=${BUILD:-build}
TASKS=${1:-500000}
SECS=${2:-10}
RATE=${RATE:-2000}
dir=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$dir"' EXIT

start() { # SYNC
    rm -rf "$dir/state" "$dir/ready"
    "$BUILD/p2c2rd" --listen 127.0.0.1:0 --ready-file "$dir/ready" --state "$dir/state" --job-sync "$1" \
        --log-level warn >"$dir/coord.log" 2>&1 &
    coord=$!
    for _ in $(seq 200); do [ -s "$dir/ready" ] && break; sleep 0.05; done
    addr=$(cat "$dir/ready")
    "$BUILD/p2c2r-peer" --coordinator "$addr" --connections 2 --slots 128 --types echo \
        --key "$dir/peer.key" --log-level warn >"$dir/peer.log" 2>&1 &
    peer=$!
    sleep 0.5
}
stop() {
    kill "$peer" "$coord"
    wait "$peer" "$coord" 2>/dev/null || true
}
# Waits until every durable job acknowledged so far has its outcome, so that
# the next measurement does not share the peers with a durable backlog.
drain() {
    for _ in $(seq 1200); do
        n=$("$BUILD/p2c2r" stats --coordinator "$addr" --json | grep -Eo '"jobs_pending": *[0-9]+' | grep -Eo '[0-9]+$')
        [ "${n:-1}" = 0 ] && return
        sleep 0.1
    done
    echo "durable backlog did not drain" >&2
}
cpu_us() { awk '{ print ($14 + $15) * 10000 }' "/proc/$coord/stat"; }
w2() {
    local c0 c1 t0 t1 r
    c0=$(cpu_us)
    t0=$(date +%s.%N)
    r=$("$BUILD/p2c2r" bench --coordinator "$addr" --tasks "$TASKS" --inflight 256 --size 64 2>&1 |
        grep -Eo '[0-9.]+ tasks/s' | head -1)
    t1=$(date +%s.%N)
    c1=$(cpu_us)
    echo "$r, coordinator $(echo "scale=2; ($c1 - $c0) / $TASKS" | bc) us CPU/task over $(echo "$t1 - $t0" | bc) s"
}

for sync in normal full; do
    start "$sync"
    echo "== --job-sync $sync"
    w2 >/dev/null # warm-up
    for batch in 1 32; do
        c0=$(cpu_us)
        out=$("$BUILD/bench/bench_durable" --coordinator "$addr" --seconds "$SECS" --batch "$batch")
        drain
        c1=$(cpu_us)
        n=$(echo "$out" | grep -Eo 'durable_jobs_acked=[0-9]+' | cut -d= -f2)
        echo "durable alone, batch $batch: $out coordinator_us_cpu_per_job=$(echo "scale=2; ($c1 - $c0) / $n" | bc)"
    done
    for rep in 1 2 3; do
        echo "W2 alone: $(w2)"
        "$BUILD/bench/bench_durable" --coordinator "$addr" --seconds 600 --batch 32 --rate "$RATE" --no-live \
            >"$dir/beside.out" 2>&1 &
        bd=$!
        sleep 1
        echo "W2 beside $RATE durable jobs/s: $(w2)"
        kill "$bd" 2>/dev/null || true
        wait "$bd" 2>/dev/null || true
        drain
    done
    stop
done

if command -v nats-server >/dev/null && [ -f /usr/include/nats/nats.h ]; then
    cc -std=c17 -O2 -o "$dir/bench_jetstream" "$(dirname "$0")/competitors/bench_jetstream.c" -lnats -lpthread
    nats-server -js -sd "$dir/nats" -a 127.0.0.1 -p -1 >"$dir/nats.log" 2>&1 &
    nats=$!
    port=
    for _ in $(seq 200); do
        port=$(grep -Eo 'client connections on [0-9.]+:[0-9]+' "$dir/nats.log" | grep -Eo '[0-9]+$' || true)
        [ -n "$port" ] && break
        sleep 0.05
    done
    echo "== NATS JetStream $(nats-server --version 2>&1 | head -1) (file storage, its default sync)"
    for batch in 1 32; do
        echo "JetStream, batch $batch: $("$dir/bench_jetstream" --url "nats://127.0.0.1:$port" --seconds "$SECS" --batch "$batch")"
    done
    kill "$nats"
    wait "$nats" 2>/dev/null || true
else
    echo "== NATS JetStream: not installed (bash scripts/deps.sh --bench), skipped"
fi

# Redis with an append-only file: RPUSH of a 64-byte job by one client, one at
# a time (-P 1) and pipelined 32 deep (-P 32); a reply means the write is in
# the AOF (handed to the kernel before the reply: a process crash keeps it),
# fsynced once a second (everysec, as --job-sync normal) or before the reply
# (always, as --job-sync full).
if command -v redis-server >/dev/null && command -v redis-benchmark >/dev/null; then
    echo "== Redis $(redis-server --version | grep -Eo 'v=[0-9.]+') with appendonly (RPUSH, 64 B, 1 client)"
    for fsync in everysec always; do
        port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
        mkdir -p "$dir/redis-$fsync"
        redis-server --bind 127.0.0.1 --port "$port" --dir "$dir/redis-$fsync" --save '' --appendonly yes \
            --appendfsync "$fsync" --daemonize no >"$dir/redis.log" 2>&1 &
        redis=$!
        for _ in $(seq 200); do
            redis-cli -p "$port" ping 2>/dev/null | grep -q PONG && break
            sleep 0.05
        done
        for batch in 1 32; do
            n=$((batch == 1 ? 20000 : 400000))
            [ "$fsync" = always ] && [ "$batch" = 1 ] && n=5000
            echo "Redis appendfsync $fsync, pipeline $batch: $(redis-benchmark -h 127.0.0.1 -p "$port" -c 1 -n "$n" \
                -t rpush -d 64 -P "$batch" --csv 2>/dev/null | tail -1)"
        done
        kill "$redis"
        wait "$redis" 2>/dev/null || true
    done
    echo "(csv: test, requests/s, latency avg, min, p50, p95, p99, max in ms)"
else
    echo "== Redis: not installed (bash scripts/deps.sh --bench), skipped"
fi
