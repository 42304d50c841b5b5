#!/usr/bin/env bash
# Counts the instructions one daemon executes for a W2-like load, with
# valgrind's callgrind: repeatable on a noisy machine, unlike seconds, so it
# is how two builds of the coordinator or the peer are compared.
#
# Usage: bench/instructions.sh BUILD_DIR coord|peer [TASKS]
#   Runs p2c2rd and one p2c2r-peer (2 connections x 128 slots) from
#   BUILD_DIR on 127.0.0.1 port 0, the chosen one under callgrind, then
#   `p2c2r bench --tasks TASKS --inflight 256` (64-byte echo, NOCACHE), and
#   prints the instructions the daemon executed in all (start-up included),
#   and per task.  TASKS defaults to 50000.
set -euo pipefail
B=${1:?usage: bench/instructions.sh BUILD_DIR coord|peer [TASKS]}
WHO=${2:?usage: bench/instructions.sh BUILD_DIR coord|peer [TASKS]}
N=${3:-50000}
command -v valgrind >/dev/null || { echo "instructions.sh: valgrind is not installed (apt-get install valgrind)" >&2; exit 1; }
D=$(mktemp -d "${TMPDIR:-/tmp}/p2c2r-ir.XXXXXX")
trap 'kill $CP $PP 2>/dev/null || true; rm -rf "$D"' EXIT
CP=; PP=
vg() { exec valgrind --tool=callgrind --callgrind-out-file="$D/cg.out" "$@" 2>"$D/vg.log" >/dev/null; }
wait_ready() {
    for _ in $(seq 300); do [ -s "$D/ready" ] && return 0; sleep 0.1; done
    echo "instructions.sh: p2c2rd did not start" >&2; exit 1
}
if [ "$WHO" = coord ]; then
    vg "$B/p2c2rd" --listen 127.0.0.1:0 --ready-file "$D/ready" --local-peers 0 --log-level warn &
    CP=$!; wait_ready; A=$(cat "$D/ready")
    "$B/p2c2r-peer" --coordinator "$A" --connections 2 --slots 128 --log-level warn 2>/dev/null &
    PP=$!
elif [ "$WHO" = peer ]; then
    "$B/p2c2rd" --listen 127.0.0.1:0 --ready-file "$D/ready" --local-peers 0 --log-level warn >/dev/null 2>&1 &
    CP=$!; wait_ready; A=$(cat "$D/ready")
    vg "$B/p2c2r-peer" --coordinator "$A" --connections 2 --slots 128 --log-level warn &
    PP=$!
else
    echo "instructions.sh: the second argument is coord or peer, not '$WHO'" >&2; exit 2
fi
sleep 3 # both connected (the daemon under valgrind starts slowly)
"$B/p2c2r" bench --coordinator "$A" --tasks "$N" --inflight 256 --json >"$D/bench.json"
kill -TERM "$PP"; sleep 1; kill -TERM "$CP"; wait "$CP" "$PP" 2>/dev/null || true
CP=; PP=
ir=$(awk '/^summary:/ {print $2}' "$D/cg.out")
echo "$WHO instructions: $ir in all, $(( ir / N )) per task ($N tasks)"
