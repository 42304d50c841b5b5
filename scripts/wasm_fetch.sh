#!/usr/bin/env bash
# Fetches and unpacks (with Debian's patches) the Debian source packages the
# WebAssembly executors are built from, into DIR (default build/wasm/src).
# Debian's own source of the versions the native build links, through apt's
# ordinary client with a private source list and state directory, so the
# system's apt configuration is left alone.  Cached: a package whose tree is
# already unpacked is not fetched again.  Usage: scripts/wasm_fetch.sh [DIR]
set -euo pipefail

dir=$(realpath -m "${1:-build/wasm/src}")
# source package:binary package whose installed version the native build links
pkgs=(zlib:zlib1g libpng1.6:libpng16-16 libjpeg-turbo:libjpeg62-turbo jansson:libjansson4
      libsodium:libsodium23)
mkdir -p "$dir"
cd "$dir"

need=()
for pb in "${pkgs[@]}"; do
    [ -f "${pb%%:*}.unpacked" ] || need+=("$pb")
done
[ ${#need[@]} -eq 0 ] && exit 0

apt_opts=(-o Dir::Etc::SourceParts="$dir/apt/sources" -o Dir::Etc::SourceList=/dev/null
          -o Dir::State::Lists="$dir/apt/lists" -o Dir::Cache="$dir/apt/cache"
          -o APT::Sandbox::User=root)
mkdir -p apt/sources apt/lists/partial apt/cache/archives/partial
src=/etc/apt/sources.list.d/debian.sources
if [ ! -f "$src" ]; then
    echo "wasm_fetch: $src not found: this script needs Debian 12's deb822 source list" >&2
    exit 1
fi
sed 's/^Types: deb$/Types: deb-src/' "$src" > apt/sources/src.sources
if [ -z "$(ls apt/lists 2>/dev/null | grep Sources)" ]; then
    echo "wasm_fetch: updating the source package lists" >&2
    apt-get "${apt_opts[@]}" update >/dev/null
fi
for pb in "${need[@]}"; do
    p=${pb%%:*}
    # The version the native build links when its source is still served,
    # else the newest the archive has (Debian's security updates of the same
    # upstream version).
    vers=$(dpkg-query -W -f='${source:Version}' "${pb#*:}" 2>/dev/null || true)
    vers="$vers $(apt-cache "${apt_opts[@]}" showsrc "$p" 2>/dev/null |
                  sed -n 's/^Version: //p' | sort -Vr | tr '\n' ' ')"
    rm -rf "$p.tree"
    mkdir "$p.tree"
    got=""
    for v in $vers; do
        echo "wasm_fetch: fetching the Debian source of $p $v" >&2
        if (cd "$p.tree" && apt-get "${apt_opts[@]}" source "$p=$v" >log 2>&1); then
            got=$v
            break
        fi
    done
    if [ -z "$got" ]; then
        echo "wasm_fetch: apt-get source $p failed (is the Debian mirror reachable? configure with" \
             "-DP2C2R_WASM=OFF to build without the WebAssembly executors):" >&2
        tail -5 "$p.tree/log" >&2
        exit 1
    fi
    echo "$got" > "$p.unpacked"
done
