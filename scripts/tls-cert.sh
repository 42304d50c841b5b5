#!/usr/bin/env bash
# Makes a self-signed certificate for p2c2rd --tls-cert, for tests and small
# deployments (a real deployment may use a certificate from its own CA).
#
# Usage: scripts/tls-cert.sh [DIR] [NAME-OR-IP...]
#   Writes DIR/p2c2rd.pem (the certificate: give it to p2c2rd --tls-cert and
#   to every client as --tls-ca) and DIR/p2c2rd.key (the private key, mode
#   0600: p2c2rd --tls-key only).  DIR defaults to build/tls.  The certificate
#   is valid for 127.0.0.1, ::1 and localhost and for each NAME-OR-IP given
#   (what clients connect to), for 825 days, with a P-256 key.
# Needs the openssl command (Debian package openssl, in scripts/deps.sh).
set -euo pipefail
dir=${1:-build/tls}
[ $# -gt 0 ] && shift
san="IP:127.0.0.1,IP:::1,DNS:localhost"
for n in "$@"; do
    if [[ "$n" =~ ^[0-9.]+$ || "$n" == *:* ]]; then san+=",IP:$n"; else san+=",DNS:$n"; fi
done
mkdir -p "$dir"
umask 077
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 825 \
    -subj "/CN=p2c2rd" -addext "subjectAltName=$san" \
    -addext "basicConstraints=critical,CA:TRUE" \
    -keyout "$dir/p2c2rd.key" -out "$dir/p2c2rd.pem" 2>/dev/null
chmod 0644 "$dir/p2c2rd.pem"
echo "certificate: $dir/p2c2rd.pem (subjectAltName $san)"
echo "key:         $dir/p2c2rd.key"
echo "run:    p2c2rd --tls-cert $dir/p2c2rd.pem --tls-key $dir/p2c2rd.key"
echo "client: p2c2r stats --tls-ca $dir/p2c2rd.pem   (or P2C2R_TLS_CA=$dir/p2c2rd.pem)"
echo "peer:   p2c2r-peer --tls-ca $dir/p2c2rd.pem"
