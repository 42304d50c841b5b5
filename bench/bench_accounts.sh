#!/usr/bin/env bash
# bench_accounts.sh - what accounts cost the fabric: W2-like runs (echo, 64 B,
# 256 in flight, 2 local peers) against a coordinator without credentials,
# with an account of tier unlimited, and with one of tier gold (every check
# but rate and max_tasks active), alternated ROUNDS times.  Prints one line
# per run: mode, tasks/s, p50, and the coordinator process's CPU time
# (local peers included) per task from /proc/PID/stat.
#
# Usage: BUILD=build bash bench/bench_accounts.sh [ROUNDS] [TASKS]
set -euo pipefail
B=${BUILD:-build}
rounds=${1:-4}
tasks=${2:-200000}
work=$(mktemp -d "${TMPDIR:-/tmp}/p2c2r-bench-accounts.XXXXXX")
trap 'rm -rf "$work"' EXIT
rt=$("$B/p2c2rd" --new-token | sed -n 's/^token = //p')
pt=$("$B/p2c2rd" --new-token | sed -n 's/^token = //p')
{
    printf '[tier gold]\nrate = 0\nmax_tasks = 0\n'
    printf '[account renter]\nrole = renter\n%s\ntier = unlimited\n' "$(printf %s "$rt" | "$B/p2c2rd" --hash-token)"
    printf '[account gold]\nrole = renter\n%s\ntier = gold\n' "$(printf %s "gold-$rt" | "$B/p2c2rd" --hash-token)"
    printf '[account peers]\nrole = peer\n%s\n' "$(printf %s "$pt" | "$B/p2c2rd" --hash-token)"
} >"$work/accounts.conf"
ticks=$(getconf CLK_TCK)
run() {
    local mode=$1 tok="" args=()
    rm -f "$work/ready"
    if [ "$mode" != none ]; then
        args=(--accounts "$work/accounts.conf" --local-token "$pt")
        tok=$rt
        [ "$mode" = gold ] && tok=gold-$rt
    fi
    "$B/p2c2rd" --listen 127.0.0.1:0 --local-peers 2 --ready-file "$work/ready" --log-level warn "${args[@]}" >/dev/null &
    local pid=$!
    for _ in $(seq 200); do [ -s "$work/ready" ] && break; sleep 0.05; done
    local out
    out=$(P2C2R_TOKEN=$tok "$B/p2c2r" bench --coordinator "$(cat "$work/ready")" --tasks "$tasks" --inflight 256 --json)
    local st
    read -r -a st <"/proc/$pid/stat"
    kill "$pid"
    wait "$pid" 2>/dev/null || true
    python3 -c 'import json,sys; d=json.loads(sys.argv[1]); t=int(sys.argv[2]); n=d["tasks"]+d.get("warmup",min(2000,d["tasks"]//20))
print("%-9s %9.0f tasks/s  p50 %5d us  cpu %.2f us/task" % (sys.argv[3], d["tasks_per_s"], d["p50_us"], t/float(sys.argv[4])*1e6/n))' \
        "$out" "$((st[13] + st[14]))" "$mode" "$ticks"
}
for _ in $(seq "$rounds"); do
    for m in none unlimited gold; do run "$m"; done
done
