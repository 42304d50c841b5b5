#!/usr/bin/env bash
# check_exports.sh LIB.so LIB.a HEADER_DIR...
#
# The public ABI is what the headers mark P2C2R_API.  This test holds the
# library to it in both directions:
#   - the shared library exports exactly those functions (nothing missing,
#     so `cc game.c -lp2c2r` links; nothing extra, so internal code stays
#     private), each unversioned (an anonymous node in libp2c2r.map), so
#     `nm -D` shows exactly the declared names;
#   - the static archive defines every one of them and no other global
#     symbol (its internal helpers are local, so they cannot clash with a
#     game's own buf_init or util_*).
# Prints the differences and exits 1 when the sets differ.
set -euo pipefail
[ $# -ge 3 ] || { echo "usage: $0 LIB.so LIB.a HEADER_DIR..." >&2; exit 2; }
so=$1 ar=$2
shift 2

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# Every declaration reads "P2C2R_API <type> name(" on one line; the #define
# of the macro itself has no parenthesis after a name and is skipped.
for d in "$@"; do
    cat "$d"/*.h
done | grep -E '^[[:space:]]*P2C2R_API[[:space:]]' |
    sed -E 's/^([^(]*[^A-Za-z0-9_(])([A-Za-z_][A-Za-z0-9_]*)[[:space:]]*\(.*/\2/' |
    sort -u >"$tmp/api"
if [ ! -s "$tmp/api" ]; then
    echo "FAIL: no P2C2R_API declaration found in $*"
    exit 1
fi

# Dynamic symbols: "name T addr" ("name@@NODE" if a symbol version crept in;
# binutils >= 2.37 prints it); a version node itself is an absolute symbol (A).
nm -D --defined-only --format=posix "$so" | awk '$2 != "A" { print $1 " " $2 }' >"$tmp/dyn"
awk '$2 == "T" { sub(/@.*/, "", $1); print $1 }' "$tmp/dyn" | sort -u >"$tmp/so_funcs"
awk '$2 != "T" { print $1 " (" $2 ")" }' "$tmp/dyn" >"$tmp/so_other"

# Global symbols the archive defines.
nm -g --defined-only --format=posix "$ar" 2>/dev/null | awk 'NF >= 2 && $1 !~ /:$/ { print $1 " " $2 }' >"$tmp/ar_all"
awk '$2 == "T" { print $1 }' "$tmp/ar_all" | sort -u >"$tmp/ar_funcs"
awk '$2 != "T" { print $1 " (" $2 ")" }' "$tmp/ar_all" >"$tmp/ar_other"

fail=0
report() { # title file
    if [ -s "$2" ]; then
        echo "FAIL: $1:"
        sed 's/^/    /' "$2"
        fail=1
    fi
}
comm -23 "$tmp/api" "$tmp/so_funcs" >"$tmp/d1"
comm -13 "$tmp/api" "$tmp/so_funcs" >"$tmp/d2"
comm -23 "$tmp/api" "$tmp/ar_funcs" >"$tmp/d3"
comm -13 "$tmp/api" "$tmp/ar_funcs" >"$tmp/d4"
report "declared P2C2R_API but not exported by $(basename "$so")" "$tmp/d1"
report "exported by $(basename "$so") but not declared P2C2R_API" "$tmp/d2"
report "exported data symbols in $(basename "$so")" "$tmp/so_other"
report "declared P2C2R_API but not defined in $(basename "$ar")" "$tmp/d3"
report "global functions in $(basename "$ar") that are not P2C2R_API" "$tmp/d4"
report "global data symbols in $(basename "$ar")" "$tmp/ar_other"

# No symbol versions: every export is the bare name the header declares.
grep '@' "$tmp/dyn" | sed 's/ .*//' >"$tmp/versioned" || true
report "exports with a symbol version (libp2c2r.map must stay an anonymous node)" "$tmp/versioned"

n=$(wc -l <"$tmp/api")
if [ $fail -ne 0 ]; then
    echo "install.exports: FAILED ($n P2C2R_API functions in the headers)"
    exit 1
fi
echo "install.exports: $n P2C2R_API functions, all exported by $(basename "$so") and defined in $(basename "$ar"), nothing else"
