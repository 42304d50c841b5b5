#!/usr/bin/env bash
# Installs the Debian packages p2c2r needs to build, test and benchmark.
# Idempotent: installs only what is missing.  Usage: scripts/deps.sh [--bench]
# emscripten + nodejs: the WebAssembly build of the executors (scripts/wasm.sh,
# which fetches the Debian sources of its libraries at build time) and its
# byte-identity test under node; chromium: the contribute page's test in a
# real browser (headless, driven over the DevTools protocol).
set -euo pipefail

pkgs=(build-essential cmake ninja-build pkg-config clang libclang-rt-14-dev
      libuv1-dev libssl-dev openssl libsodium-dev libzstd-dev libxxhash-dev libsqlite3-dev
      libpng-dev libjpeg62-turbo-dev libjansson-dev python3 python3-pil python3-numpy
      python3-venv python3-pytest python3-mypy
      emscripten nodejs chromium libjs-chart.js)
if [ "${1:-}" = "--bench" ]; then
    pkgs+=(gearman-job-server libgearman-dev nats-server libnats-dev redis-server)
fi

missing=()
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "deps: installing ${missing[*]}" >&2
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
