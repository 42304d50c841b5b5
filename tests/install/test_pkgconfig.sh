#!/usr/bin/env bash
# test_pkgconfig.sh BUILD_DIR SOURCE_DIR PREFIX LIBDIR CC
#
# Does what a user of the installed library does, in a fresh temporary
# directory (removed at the end, kept with P2C2R_TEST_KEEP=1):
#   1. cmake --install BUILD_DIR into a staging root (DESTDIR), and checks
#      the tree: programs, soname, headers, .pc, CMake package, man pages,
#      systemd units naming the installed programs;
#   2. builds tests/install/prog.c three ways: against libp2c2r.so with
#      `pkg-config --cflags --libs p2c2r`, against libp2c2r.a with
#      `pkg-config --static`, and as a CMake project with find_package(p2c2r)
#      (both imported targets);
#   3. starts the installed p2c2rd on 127.0.0.1 port 0 with one local peer and
#      runs every program against it.
# Needs no network beyond loopback.
set -euo pipefail
[ $# -eq 5 ] || { echo "usage: $0 BUILD_DIR SOURCE_DIR PREFIX LIBDIR CC" >&2; exit 2; }
build=$1 src=$2 prefix=$3 libdir=$4 cc=$5

tmp=$(mktemp -d "${TMPDIR:-/tmp}/p2c2r-install.XXXXXX")
coord_pid=
cleanup() {
    local rc=$?
    if [ -n "$coord_pid" ]; then
        kill "$coord_pid" 2>/dev/null || true
        wait "$coord_pid" 2>/dev/null || true
    fi
    if [ $rc -ne 0 ] && [ -f "$tmp/p2c2rd.log" ]; then
        echo "--- p2c2rd log"
        tail -n 50 "$tmp/p2c2rd.log"
    fi
    if [ "${P2C2R_TEST_KEEP:-0}" = 1 ]; then
        echo "kept $tmp"
    else
        rm -rf "$tmp"
    fi
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; exit 1; }
step() { echo "--- $*"; }

# 1. Install into the stage.
step "cmake --install into $tmp/stage"
DESTDIR=$tmp/stage cmake --install "$build" >"$tmp/install.log" || {
    cat "$tmp/install.log"; fail "cmake --install"; }
root=$tmp/stage$prefix
case $libdir in /*) lib=$tmp/stage$libdir ;; *) lib=$root/$libdir ;; esac

for f in bin/p2c2rd bin/p2c2r-peer bin/p2c2r include/p2c2r/client.h include/p2c2r/error.h \
         include/p2c2r/executor.h include/p2c2r/version.h \
         share/man/man1/p2c2r.1 share/man/man1/p2c2r-peer.1 share/man/man3/libp2c2r.3 \
         share/man/man8/p2c2rd.8; do
    [ -e "$root/$f" ] || fail "$f was not installed"
done
for f in libp2c2r.so libp2c2r.so.1 libp2c2r.a pkgconfig/p2c2r.pc cmake/p2c2r/p2c2rConfig.cmake \
         cmake/p2c2r/p2c2rConfigVersion.cmake cmake/p2c2r/p2c2rTargets.cmake; do
    [ -e "$lib/$f" ] || fail "$lib/$f was not installed"
done
soname=$(readelf -d "$lib/libp2c2r.so" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
[ "$soname" = libp2c2r.so.1 ] || fail "soname is '$soname', expected libp2c2r.so.1"
units=$(find "$tmp/stage" -name 'p2c2r*.service' | sort)
[ "$(echo "$units" | wc -w)" = 2 ] || fail "expected 2 systemd units, found: $units"
for u in $units; do
    exe=$(sed -n 's/^ExecStart=\([^ ]*\).*/\1/p' "$u")
    [ "$exe" = "$prefix/bin/$(basename "$u" .service)" ] || fail "$u: ExecStart=$exe"
    [ -x "$tmp/stage$exe" ] || fail "$u: $exe is not the installed program"
done
# Every header compiles on its own from the installed tree.
for h in "$root"/include/p2c2r/*.h; do
    echo "#include <p2c2r/$(basename "$h")>" >"$tmp/h.c"
    "$cc" -std=c17 -Wall -Wextra -Werror -fsyntax-only -I"$root/include" "$tmp/h.c" ||
        fail "installed header $(basename "$h") does not compile on its own"
done

# 2. Build the test program three ways.
export PKG_CONFIG_PATH=$lib/pkgconfig
unset PKG_CONFIG_LIBDIR PKG_CONFIG_SYSROOT_DIR
step "pkg-config: $(pkg-config --cflags --libs p2c2r)"
[ "$(pkg-config --modversion p2c2r)" = "$(sed -n 's/#define P2C2R_VERSION_STRING "\(.*\)"/\1/p' \
    "$root/include/p2c2r/version.h")" ] || fail "pkg-config --modversion disagrees with version.h"
case "$(pkg-config --cflags --libs p2c2r)" in
    *"$tmp/stage"*) ;;
    *) fail "pkg-config does not point into the stage" ;;
esac
cd "$tmp"
# shellcheck disable=SC2046
"$cc" -std=c17 -Wall -Wextra -Werror -o prog_dyn "$src/tests/install/prog.c" \
    $(pkg-config --cflags --libs p2c2r)
# -Bstatic makes the linker take libp2c2r.a although libp2c2r.so sits beside it.
# shellcheck disable=SC2046
"$cc" -std=c17 -Wall -Wextra -Werror -o prog_static "$src/tests/install/prog.c" \
    $(pkg-config --static --cflags p2c2r) -Wl,-Bstatic $(pkg-config --static --libs p2c2r) \
    -Wl,-Bdynamic
if readelf -d prog_static | grep libp2c2r >/dev/null; then
    fail "prog_static needs libp2c2r.so"
fi

step "find_package(p2c2r)"
gen=()
command -v ninja >/dev/null && gen=(-G Ninja)
cmake -S "$src/tests/install/consumer" -B consumer "${gen[@]}" -DCMAKE_C_COMPILER="$cc" \
      -DCMAKE_PREFIX_PATH="$root" -DP2C2R_PROG="$src/tests/install/prog.c" \
      >consumer.log 2>&1 || { cat consumer.log; fail "configuring the find_package project"; }
cmake --build consumer -j 1 >>consumer.log 2>&1 || { cat consumer.log; fail "building it"; }
if readelf -d consumer/prog_cmake_static | grep libp2c2r >/dev/null; then
    fail "prog_cmake_static (p2c2r::p2c2r_static) needs libp2c2r.so"
fi

# 3. Run them against the installed coordinator.
step "p2c2rd on 127.0.0.1:0"
"$root/bin/p2c2rd" --listen 127.0.0.1:0 --local-peers 1 --ready-file "$tmp/ready" \
    --log-level warn >"$tmp/p2c2rd.log" 2>&1 &
coord_pid=$!
for _ in $(seq 1 500); do
    [ -s "$tmp/ready" ] && break
    kill -0 "$coord_pid" 2>/dev/null || fail "p2c2rd exited"
    sleep 0.02
done
[ -s "$tmp/ready" ] || fail "p2c2rd wrote no ready file in 10 s"
addr=$(head -n 1 "$tmp/ready")

export LD_LIBRARY_PATH=$lib
ldd prog_dyn | grep "libp2c2r.so.1 => $lib/" >/dev/null || fail "prog_dyn does not load the staged libp2c2r.so.1"
for p in prog_dyn prog_static consumer/prog_cmake consumer/prog_cmake_static; do
    step "$p $addr"
    "./$p" "$addr" || fail "$p"
done
echo "install.pkgconfig: passed"
