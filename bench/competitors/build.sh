#!/usr/bin/env bash
# Builds the competitor benchmarks (gearman_bench, nats_bench).
# Usage: bench/competitors/build.sh [BUILD_DIR]   (default: build/bench-competitors)
# Needs libgearman-dev and libnats-dev: scripts/deps.sh --bench installs them.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
out=${1:-$root/build/bench-competitors}
mkdir -p "$out"

CC=${CC:-cc}
CFLAGS=${CFLAGS:-"-std=c17 -O2 -Wall -Wextra"}

missing=()
[ -f /usr/include/libgearman/gearman.h ] || missing+=(libgearman-dev)
[ -f /usr/include/nats/nats.h ] || missing+=(libnats-dev)
if [ ${#missing[@]} -gt 0 ]; then
    echo "build.sh: missing ${missing[*]} (run: bash scripts/deps.sh --bench)" >&2
    exit 1
fi

# shellcheck disable=SC2086  # CFLAGS is a list of flags
$CC $CFLAGS -o "$out/gearman_bench" "$here/gearman_bench.c" -lgearman -lpthread
# shellcheck disable=SC2086
$CC $CFLAGS -o "$out/nats_bench" "$here/nats_bench.c" -lnats -lpthread
# shellcheck disable=SC2086
$CC $CFLAGS -o "$out/bench_jetstream" "$here/bench_jetstream.c" -lnats -lpthread
echo "$out"
