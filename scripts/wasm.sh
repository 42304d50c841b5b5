#!/usr/bin/env bash
# Builds the built-in executors (src/tasks/*.c) to WebAssembly with Debian's
# Emscripten: OUTDIR/p2c2r_exec.js (the loader, a factory p2c2rExec) and
# OUTDIR/p2c2r_exec.wasm, the module the contribute page's Web Worker runs
# (web/worker.js; the C side is wasm/p2c2r_wasm.c).
#
# The libraries the executors link natively are built here with emcc from
# Debian's source packages of the same versions (scripts/wasm_fetch.sh):
# zlib and libpng (PNG), libjpeg-turbo with SIMD off (JPEG), jansson (scene
# and world JSON), and the SHA-256 of libsodium (the sha256 executor and
# raytrace's prepared-state key; the native build uses OpenSSL's EVP, the
# same function).  The sources and the libraries are built once into
# $P2C2R_WASM_DEPS (default OUTDIR/deps; CMake passes one directory shared
# by every build tree) and kept; a lock lets two builds share it.
#
# Usage: scripts/wasm.sh [OUTDIR]      (default build/www)
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
out=$(realpath -m "${1:-$root/build/www}")
jobs=${JOBS:-2}
if ! command -v emcc >/dev/null; then
    echo "wasm: emcc not found: install Debian's emscripten (scripts/deps.sh --wasm)" >&2
    exit 1
fi
# Debian's emcc runs its JS optimiser under node and needs Debian's node
# modules (node-acorn) on the path, whichever node is installed.
export NODE_PATH=/usr/share/nodejs${NODE_PATH:+:$NODE_PATH}

deps=$(realpath -m "${P2C2R_WASM_DEPS:-$out/deps}")
mkdir -p "$deps" "$out"
exec 9>"$deps/lock"
flock 9
bash "$root/scripts/wasm_fetch.sh" "$deps/src"
src=$deps/src
pre=$deps/prefix
obj=$deps/obj
mkdir -p "$pre/lib" "$pre/include" "$obj"
# -ffp-contract=off: no fused multiply-add, as in the native build.
cflags=(-O2 -ffp-contract=off)

tree() { ls -d "$src/$1.tree/"*/ | head -1; }

# lib NAME DIR CFLAGS... -- FILES...: compiles FILES (relative to DIR) into
# prefix/lib/libNAME.a.
lib() {
    local name=$1 dir=$2; shift 2
    local flags=()
    while [ "$1" != "--" ]; do flags+=("$1"); shift; done
    shift
    local objs=() o
    rm -rf "$obj/$name"
    mkdir -p "$obj/$name"
    for f in "$@"; do
        o=$obj/$name/$(basename "${f%.c}").o
        emcc "${cflags[@]}" "${flags[@]}" -c "$dir/$f" -o "$o"
        objs+=("$o")
    done
    rm -f "$pre/lib/lib$name.a"
    emar rcs "$pre/lib/lib$name.a" "${objs[@]}"
}

if [ ! -f "$pre/lib/libz.a" ]; then
    echo "wasm: building zlib $(cat "$src/zlib.unpacked")" >&2
    d=$(tree zlib)
    lib z "$d" -DHAVE_UNISTD_H -DHAVE_STDARG_H -- adler32.c compress.c crc32.c deflate.c \
        gzclose.c gzlib.c gzread.c gzwrite.c infback.c inffast.c inflate.c inftrees.c trees.c \
        uncompr.c zutil.c
    cp "$d/zlib.h" "$d/zconf.h" "$pre/include/"
fi

if [ ! -f "$pre/lib/libpng16.a" ]; then
    echo "wasm: building libpng $(cat "$src/libpng1.6.unpacked")" >&2
    d=$(tree libpng1.6)
    cp "$d/scripts/pnglibconf.h.prebuilt" "$pre/include/pnglibconf.h"
    cp "$d/png.h" "$d/pngconf.h" "$pre/include/"
    lib png16 "$d" -I"$pre/include" -DPNG_ARM_NEON_OPT=0 -DPNG_INTEL_SSE_OPT=0 -- png.c pngerror.c \
        pngget.c pngmem.c pngpread.c pngread.c pngrio.c pngrtran.c pngrutil.c pngset.c \
        pngtrans.c pngwio.c pngwrite.c pngwtran.c pngwutil.c
fi

# cmake_lib NAME TARGET LIBFILE CMAKE-ARGS...: a CMake project built with
# emcmake, only TARGET, its LIBFILE copied to prefix/lib.
cmake_lib() {
    local name=$1 target=$2 libfile=$3; shift 3
    local b=$obj/$name
    rm -rf "$b"
    emcmake cmake -S "$(tree "$name")" -B "$b" -DCMAKE_BUILD_TYPE=Release \
        -DCMAKE_C_FLAGS="${cflags[*]}" "$@" >"$obj/$name.log" 2>&1 ||
        { tail -20 "$obj/$name.log" >&2; exit 1; }
    cmake --build "$b" --target "$target" -j "$jobs" >>"$obj/$name.log" 2>&1 ||
        { tail -20 "$obj/$name.log" >&2; exit 1; }
    cp "$(find "$b" -name "$libfile" | head -1)" "$pre/lib/"
}

if [ ! -f "$pre/lib/libjpeg.a" ]; then
    echo "wasm: building libjpeg-turbo $(cat "$src/libjpeg-turbo.unpacked") (SIMD off)" >&2
    cmake_lib libjpeg-turbo jpeg-static libjpeg.a -DWITH_SIMD=0 -DENABLE_SHARED=0 \
        -DWITH_TURBOJPEG=0 -DHAVE_SIZE_T=TRUE -DSIZE_T=4
    d=$(tree libjpeg-turbo)
    cp "$d/jpeglib.h" "$d/jmorecfg.h" "$d/jerror.h" "$obj/libjpeg-turbo/jconfig.h" "$pre/include/"
fi

if [ ! -f "$pre/lib/libjansson.a" ]; then
    echo "wasm: building jansson $(cat "$src/jansson.unpacked")" >&2
    cmake_lib jansson jansson libjansson.a -DJANSSON_BUILD_DOCS=OFF -DJANSSON_WITHOUT_TESTS=ON \
        -DJANSSON_EXAMPLES=OFF -DJANSSON_BUILD_SHARED_LIBS=OFF
    cp "$obj/jansson/include/"*.h "$pre/include/"
fi

if [ ! -f "$pre/lib/libsodium_sha256.a" ]; then
    # Only crypto_hash_sha256: the rest of libsodium (random numbers, the
    # CPU feature probes) is not needed; wasm/p2c2r_wasm.c supplies the one
    # other function it calls, sodium_memzero.
    echo "wasm: building libsodium $(cat "$src/libsodium.unpacked") (crypto_hash_sha256)" >&2
    d=$(tree libsodium)src/libsodium
    lib sodium_sha256 "$d" -DCONFIGURED=1 -DNATIVE_LITTLE_ENDIAN=1 -I"$d/include/sodium" -- \
        crypto_hash/sha256/hash_sha256.c crypto_hash/sha256/cp/hash_sha256_cp.c
    mkdir -p "$pre/include/sodium"
    cp "$d/include/sodium/crypto_hash_sha256.h" "$d/include/sodium/export.h" "$pre/include/sodium/"
fi

echo "wasm: linking p2c2r_exec.wasm" >&2
exports='_p2c2r_wasm_init,_p2c2r_wasm_types,_p2c2r_wasm_alloc,_p2c2r_wasm_free,_p2c2r_wasm_blob_add,_p2c2r_wasm_blobs_clear,_p2c2r_wasm_run,_p2c2r_wasm_output,_p2c2r_wasm_output_len,_p2c2r_wasm_error,_p2c2r_wasm_sha256'
emcc "${cflags[@]}" -std=c17 -I"$root/include" -I"$root/src" -I"$pre/include" -D_GNU_SOURCE -Wall -Wextra \
    "$root"/src/tasks/*.c "$root/wasm/p2c2r_wasm.c" \
    -L"$pre/lib" -ljansson -lpng16 -ljpeg -lz -lsodium_sha256 \
    -sMODULARIZE=1 -sEXPORT_NAME=p2c2rExec -sENVIRONMENT=web,worker,node \
    -sALLOW_MEMORY_GROWTH=1 -sFILESYSTEM=0 -sEXPORTED_FUNCTIONS="$exports" \
    -sEXPORTED_RUNTIME_METHODS=UTF8ToString -o "$out/p2c2r_exec.js"
echo "wasm: $out/p2c2r_exec.js $out/p2c2r_exec.wasm" >&2
