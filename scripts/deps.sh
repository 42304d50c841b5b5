#!/usr/bin/env bash
# Installs the Debian packages p2c2r needs to build, test and benchmark.
# Idempotent: installs only what is missing.  Usage: scripts/deps.sh [--bench]
set -euo pipefail

pkgs=(build-essential cmake ninja-build pkg-config clang libclang-rt-14-dev
      libuv1-dev libssl-dev libsodium-dev libzstd-dev libxxhash-dev libsqlite3-dev
      libpng-dev libjpeg62-turbo-dev libjansson-dev python3 python3-pil python3-numpy
      python3-venv python3-pytest python3-mypy)
# libjs-chart.js: the dashboard's plots (p2c2rd serves it from
# /usr/share/javascript/chart.js as /static/chart.js); chromium: the pages'
# test in a headless browser (tests/browser).
pkgs+=(libjs-chart.js chromium)
if [ "${1:-}" = "--bench" ]; then
    pkgs+=(gearman-job-server libgearman-dev nats-server libnats-dev)
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
