#!/usr/bin/env bash
# test_raytrace_cli.sh - `p2c2r render` end to end.
#
# Usage: test_raytrace_cli.sh RENDER_CLI P2C2RD SOURCE_DIR
#   RENDER_CLI  a program running cmd_render (rt_render_cli, or "p2c2r render")
#   P2C2RD      the coordinator
#
# Renders a small version of the demo scene in-process with one thread and
# with three, then on a real p2c2rd (port 0, two local peers) as one batch
# of 7 tiles split by cost and as 5 split by rows, and a scene with mesh
# blobs both ways, and checks that every PNG is byte-identical, that the JSON report names a peer and a time for
# every tile, and that a malformed scene and bad usage fail cleanly.
set -u
cli=$1
daemon=$2
src=$3
work=$(mktemp -d "${TMPDIR:-/tmp}/rt-cli.XXXXXX")
pid=
fails=0
cleanup() {
    if [ -n "$pid" ]; then kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; fi
    rm -rf "$work"
}
trap cleanup EXIT
fail() {
    echo "FAIL: $*"
    fails=$((fails + 1))
}

scene=$src/examples/scenes/demo.json
common=(--width 64 --height 36 --spp 2)

"$cli" "$scene" -o "$work/local1.png" "${common[@]}" --local --threads 1 --tiles 3 >"$work/local1.txt" ||
    fail "local render (1 thread)"
"$cli" "$scene" -o "$work/local3.png" "${common[@]}" --local --threads 3 --tiles 9 --json >"$work/local3.json" ||
    fail "local render (3 threads)"
cmp -s "$work/local1.png" "$work/local3.png" || fail "local renders with 1 and 3 threads differ"
head -c 8 "$work/local1.png" | od -An -c | grep -q 'P   N   G' || fail "output is not a PNG"
grep -q '"mode":"local"' "$work/local3.json" || fail "local JSON report: $(cat "$work/local3.json")"

"$daemon" --listen 127.0.0.1:0 --ready-file "$work/ready" --local-peers 2 --log-level warn \
    >"$work/daemon.log" 2>&1 &
pid=$!
for _ in $(seq 1 100); do [ -s "$work/ready" ] && break; sleep 0.1; done
if [ ! -s "$work/ready" ]; then
    fail "p2c2rd did not become ready"
    cat "$work/daemon.log"
    exit 1
fi
addr=$(cat "$work/ready")

"$cli" "$scene" -o "$work/fabric.png" "${common[@]}" --tiles 7 --coordinator "$addr" --json \
    >"$work/fabric.json" 2>"$work/fabric.err" || fail "fabric render: $(cat "$work/fabric.err")"
cmp -s "$work/local1.png" "$work/fabric.png" || fail "fabric and local renders differ"
grep -q '"status":"ok"' "$work/fabric.json" || fail "fabric JSON report: $(cat "$work/fabric.json")"
grep -q '"ntiles":7' "$work/fabric.json" || fail "fabric JSON report has not 7 tiles"
tiles=$(grep -o '"peer":[1-9][0-9]*,"exec_us":[0-9]*' "$work/fabric.json" | wc -l)
# Every one of the 7 tiles names the peer that ran it and its time.
[ "$tiles" -eq 7 ] || fail "not every tile names its peer: $(cat "$work/fabric.json")"

"$cli" "$scene" -o "$work/rows.png" "${common[@]}" --tiles 5 --split rows --coordinator "$addr" \
    >"$work/rows.txt" 2>&1 || fail "fabric render by rows: $(cat "$work/rows.txt")"
cmp -s "$work/local1.png" "$work/rows.png" || fail "render split by rows differs"
grep -q 'rendered on the fabric' "$work/rows.txt" || fail "text report: $(cat "$work/rows.txt")"

# Mesh blobs: uploaded once with p2c2r_client_put_blob and named in every
# task; the peers resolve them by hash.
torus=$src/examples/scenes/torus.json
mesh=$src/examples/scenes/torus.mesh
tsize=(--width 48 --height 27 --spp 1)
"$cli" "$torus" --blob "$mesh" -o "$work/torus_local.png" "${tsize[@]}" --local --threads 1 >/dev/null ||
    fail "local render with a mesh blob"
"$cli" "$torus" --blob "$mesh" -o "$work/torus_fabric.png" "${tsize[@]}" --tiles 3 --coordinator "$addr" \
    >/dev/null 2>"$work/torus.err" || fail "fabric render with a mesh blob: $(cat "$work/torus.err")"
cmp -s "$work/torus_local.png" "$work/torus_fabric.png" || fail "blob scene: fabric and local renders differ"
if "$cli" "$torus" -o "$work/torus_none.png" "${tsize[@]}" --local 2>"$work/noblob.err"; then
    fail "a scene naming a blob rendered without it"
fi
grep -q 'not sent' "$work/noblob.err" || fail "no reason for the missing blob: $(cat "$work/noblob.err")"

# A malformed scene is refused before anything is sent, with the reason.
echo '{"width":4,"height":4,"camera":{"position":[0,0,1],"look_at":[0,0,0],"fov":"wide"}}' >"$work/bad.json"
if "$cli" "$work/bad.json" -o "$work/bad.png" --coordinator "$addr" 2>"$work/bad.err"; then
    fail "a malformed scene was accepted"
fi
grep -q 'camera.fov' "$work/bad.err" || fail "no reason for the malformed scene: $(cat "$work/bad.err")"
[ ! -e "$work/bad.png" ] || fail "an image was written for a malformed scene"
"$cli" "$scene" >/dev/null 2>&1
[ $? -eq 2 ] || fail "missing -o is not a usage error"
"$cli" "$scene" -o "$work/x.png" --split zigzag >/dev/null 2>&1
[ $? -eq 2 ] || fail "bad --split is not a usage error"

if [ $fails -ne 0 ]; then
    echo "--- daemon log"
    cat "$work/daemon.log"
    echo "test_raytrace_cli: $fails checks FAILED"
    exit 1
fi
echo "test_raytrace_cli: all checks passed"
