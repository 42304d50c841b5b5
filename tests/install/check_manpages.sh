#!/usr/bin/env bash
# check_manpages.sh BINDIR MANDIR VERSION
#
# The man pages in man/ are written by hand from each program's --help; this
# keeps them from drifting: every long option that a program (or a p2c2r
# command) lists in --help must appear in its page, and each page's header
# must name the project's version.
set -euo pipefail
[ $# -eq 3 ] || { echo "usage: $0 BINDIR MANDIR VERSION" >&2; exit 2; }
bin=$1 man=$2 version=$3
fail=0

# check PAGE HELP-COMMAND...
check() {
    local page=$man/$1
    shift
    local text opts
    # Roff to plain text, near enough: \- is a dash, font escapes go.
    text=$(sed -e 's/\\-/-/g' -e 's/\\f[BIRP]//g' "$page")
    opts=$("$@" --help | grep -oE '^[[:space:]]+(-[A-Za-z0-9], )?--[a-z0-9-]+' |
           grep -oE -- '--[a-z0-9-]+' | sort -u)
    [ -n "$opts" ] || { echo "FAIL: '$* --help' lists no options"; fail=1; return; }
    for o in $opts; do
        if ! grep -qE -- "(^|[^a-z0-9-])$o([^a-z0-9-]|\$)" <<<"$text"; then
            echo "FAIL: $(basename "$page") does not describe $o (from '$(basename "$1") ${*:2} --help')"
            fail=1
        fi
    done
    if ! grep -q "^\.TH .*\"p2c2r $version\"" "$page"; then
        echo "FAIL: $(basename "$page"): .TH does not say \"p2c2r $version\""
        fail=1
    fi
}

check p2c2rd.8 "$bin/p2c2rd"
check p2c2r-peer.1 "$bin/p2c2r-peer"
for cmd in submit bench stats path physics render upscale job ledger backup; do
    check p2c2r.1 "$bin/p2c2r" "$cmd"
done
if ! grep -q '^\.TH .*"p2c2r '"$version"'"' "$man/libp2c2r.3"; then
    echo "FAIL: libp2c2r.3: .TH does not say \"p2c2r $version\""
    fail=1
fi
[ $fail -eq 0 ] || exit 1
echo "install.manpages: every --help option is in its man page"
