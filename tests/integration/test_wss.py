#!/usr/bin/env python3
"""test_wss: TLS on p2c2rd's HTTP port (https and wss) when the coordinator
has --tls-cert/--tls-key (issue 12: tokens must not cross the network in
clear; issue 14: the gateway).

Makes a certificate with scripts/tls-cert.sh, starts p2c2rd with TLS on both
ports, a native p2c2r-peer (echo, sha256) trusting the certificate, and
checks:
  - /metrics over https with the certificate as CA and the bearer token;
    without the token 401, over TLS;
  - a plaintext HTTP request gets "400 TLS required" in plaintext and the end;
  - a wss renter round trip (gamer_register, echo byte-exact, a data_frame
    sha256 input of 100 kB, 50 in flight) served by the native peer;
  - an upgrade with its first messages in the same TLS record (11 kB: more
    than the HTTP head buffer takes, so the rest is still in the session at
    the handover) gets them all served;
  - through a relay that records every byte both ways: neither the renter's
    token, nor the /metrics bearer token, nor the task's bytes (the result
    comes back unmasked), nor any HTTP or JSON is seen (and, to show the
    relay check can fail, with --http-plain they are);
  - --http-plain on a non-loopback address is refused at start (exit 2).

Usage: test_wss.py P2C2RD P2C2R-PEER SCRIPTS_DIR
"""
import hashlib
import json
import os
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gwclient import WS, OP_TEXT, b64, unb64, wait_started, stop_started  # noqa: E402

FAILS = []
CHECKS = [0]
RTOK = "rtok-3f9c2a71e4"
MTOK = "mtok-8b1d64c0a5"


def check(cond, what):
    CHECKS[0] += 1
    if not cond:
        FAILS.append(what)
        print("test_wss: FAIL:", what, flush=True)
    return cond


class Coord:
    def __init__(self, p2c2rd, peer_bin, tmp, tag, cert, key, extra=()):
        self.tmp = tmp
        tokens = os.path.join(tmp, "tokens")
        with open(tokens, "w") as f:
            f.write("renter:%s\npeer:ptok\n" % RTOK)
        self.ready = os.path.join(tmp, tag + ".ready")
        self.log_path = os.path.join(tmp, tag + ".log")
        self.log = open(self.log_path, "wb")
        self.d = subprocess.Popen(
            [p2c2rd, "--listen", "127.0.0.1:0", "--http", "127.0.0.1:0", "--ready-file", self.ready,
             "--tokens", tokens, "--metrics-token", MTOK, "--tls-cert", cert, "--tls-key", key,
             "--log-level", "info"] + list(extra),
            stdout=self.log, stderr=subprocess.STDOUT)
        self.addr, self.host, self.port = wait_started(self.d, self.ready, self.log_path, "test_wss")
        self.peer = subprocess.Popen(
            [peer_bin, "--coordinator", self.addr, "--types", "echo,sha256", "--slots", "4", "--token", "ptok",
             "--tls-ca", cert, "--key", os.path.join(tmp, tag + ".peer.key"), "--log-level", "warn"],
            stdout=self.log, stderr=subprocess.STDOUT)

    def stop(self):
        return stop_started(self.d, self.peer)


class Relay:
    """A TCP relay to (host, port) that keeps every byte it forwards."""

    def __init__(self, host, port):
        self.dst = (host, port)
        self.seen = bytearray()
        self.lock = threading.Lock()
        self.ls = socket.socket()
        self.ls.bind(("127.0.0.1", 0))
        self.ls.listen(8)
        self.port = self.ls.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                a, _ = self.ls.accept()
            except OSError:
                return
            b = socket.create_connection(self.dst)
            for src, dst in ((a, b), (b, a)):
                threading.Thread(target=self._pipe, args=(src, dst), daemon=True).start()

    def _pipe(self, src, dst):
        while True:
            try:
                d = src.recv(65536)
            except OSError:
                d = b""
            if not d:
                try:
                    dst.shutdown(socket.SHUT_WR)
                except OSError:
                    pass
                return
            with self.lock:
                self.seen += d
            try:
                dst.sendall(d)
            except OSError:
                return


def wait_peers(ws, n=1, timeout=15):
    end = time.time() + timeout
    while time.time() < end:
        ws.send_json({"msg_type": "stats_request"})
        m = ws.recv_json()
        if m.get("msg_type") == "stats" and m["stats"].get("peers_connected", 0) >= n:
            return True
        time.sleep(0.15)  # one answer per --stats-interval (100 ms)
    return False


def metrics(ctx, host, port, token):
    req = urllib.request.Request("https://%s:%d/metrics" % (host, port))
    if token:
        req.add_header("Authorization", "Bearer " + token)
    try:
        with urllib.request.urlopen(req, context=ctx, timeout=10) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def renter_round_trip(host, port, ctx, secret):
    """gamer_register, echo of secret, a data_frame sha256, 50 in flight."""
    w = WS(host, port, tls=ctx)
    w.send_json({"msg_type": "gamer_register", "client_id": "wss", "token": RTOK})
    ack = w.recv_json()
    if not check(ack.get("msg_type") == "registration_ack" and ack.get("status") == "ok",
                 "registration_ack over wss %r" % ack):
        return
    check(wait_peers(w), "the native peer registered")
    w.send_json({"msg_type": "task_submit", "task_id": "e", "task_type": "echo", "data": b64(secret)})
    m = w.recv_json()
    check(m.get("msg_type") == "result_delivery" and m.get("success") is True and unb64(m["result"]) == secret,
          "echo over wss %r" % {k: v for k, v in m.items() if k != "result"})
    blob = os.urandom(100000)
    w.send_json({"msg_type": "task_submit", "task_id": 7, "task_type": "sha256", "data_frame": True})
    w.send_binary(blob)
    m = w.recv_json()
    check(m.get("task_id") == 7 and unb64(m.get("result") or "") == hashlib.sha256(blob).digest(),
          "sha256 of a data_frame input over wss %r" % m)
    want = {}
    for i in range(50):
        d = os.urandom(1 + i * 37)
        want["t%d" % i] = d
        w.send_json({"msg_type": "task_submit", "task_id": "t%d" % i, "task_type": "echo", "data": b64(d)})
    got = 0
    for _ in range(50):
        m = w.recv_json()
        if m.get("msg_type") == "result_delivery" and want.get(m["task_id"]) == unb64(m["result"]):
            got += 1
    check(got == 50, "50 echoes in flight over wss: %d right" % got)
    w.close()


def pipelined_upgrade(host, port, ctx):
    """The upgrade request and the first messages in one TLS write: what
    the client sent after its head crosses to the gateway with the session."""
    w = WS(host, port, tls=ctx, handshake=False)
    req = ("GET /ws HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
           "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n" % (host, port))
    reg = json.dumps({"msg_type": "gamer_register", "client_id": "pipe", "token": RTOK}).encode()
    sub = json.dumps({"msg_type": "task_submit", "task_id": "p", "task_type": "echo",
                      "data": b64(b"x" * 8000)}).encode()
    w.sock.sendall(req.encode() + WS.frame(OP_TEXT, reg) + WS.frame(OP_TEXT, sub))
    head = w._read_until(b"\r\n\r\n")
    check(b" 101 " in head, "pipelined upgrade answered 101: %r" % head[:80])
    kinds = [w.recv_json().get("msg_type") for _ in range(3)]
    check(kinds == ["challenge", "registration_ack", "result_delivery"],
          "pipelined messages after the upgrade served: %r" % kinds)
    w.close()


def plaintext_refused(host, port):
    s = socket.create_connection((host, port), timeout=10)
    s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + MTOK.encode() + b"\r\n\r\n")
    got = b""
    while True:
        try:
            d = s.recv(4096)
        except OSError:
            break
        if not d:
            break
        got += d
    s.close()
    check(got.startswith(b"HTTP/1.1 400 ") and b"TLS required" in got,
          "plaintext request answered 400 TLS required: %r" % got[:200])
    # And a plaintext WebSocket upgrade likewise: no gateway without TLS.
    try:
        WS(host, port)
        check(False, "a plaintext /ws upgrade was accepted")
    except Exception as e:  # noqa: BLE001 - any refusal will do
        check("400" in str(e), "plaintext /ws upgrade refused with 400: %s" % e)


def main():
    if len(sys.argv) != 4:
        raise SystemExit("usage: test_wss.py P2C2RD P2C2R-PEER SCRIPTS_DIR")
    p2c2rd, peer_bin, scripts = sys.argv[1:]
    tmp = tempfile.mkdtemp(prefix="p2c2r-wss-")
    subprocess.run(["bash", os.path.join(scripts, "tls-cert.sh"), tmp], check=True, stdout=subprocess.DEVNULL)
    cert, key = os.path.join(tmp, "p2c2rd.pem"), os.path.join(tmp, "p2c2rd.key")
    ctx = ssl.create_default_context(cafile=cert)
    ok = False
    c = Coord(p2c2rd, peer_bin, tmp, "tls", cert, key)
    try:
        st, body = metrics(ctx, c.host, c.port, MTOK)
        check(st == 200 and b"p2c2r_" in body, "/metrics over https: %s %r" % (st, body[:80]))
        st, _ = metrics(ctx, c.host, c.port, None)
        check(st == 401, "/metrics over https without the token: %s" % st)
        # A client that does not trust the certificate fails its handshake.
        try:
            metrics(ssl.create_default_context(), c.host, c.port, MTOK)
            check(False, "a client without the CA completed a handshake")
        except (ssl.SSLError, urllib.error.URLError):
            pass
        plaintext_refused(c.host, c.port)
        secret = b"task-input-that-must-not-cross-in-clear-5d2e"
        renter_round_trip(c.host, c.port, ctx, secret)
        pipelined_upgrade(c.host, c.port, ctx)
        # The relay: everything between a wss renter and https scraper and
        # the coordinator is ciphertext.
        r = Relay(c.host, c.port)
        renter_round_trip("127.0.0.1", r.port, ctx, secret)
        st, _ = metrics(ctx, "127.0.0.1", r.port, MTOK)
        check(st == 200, "/metrics through the relay: %s" % st)
        time.sleep(0.2)
        with r.lock:
            seen = bytes(r.seen)
        check(len(seen) > 100000, "the relay carried the traffic (%d bytes)" % len(seen))
        check(RTOK.encode() not in seen, "the renter token crossed the relay in clear")
        check(MTOK.encode() not in seen, "the /metrics bearer token crossed the relay in clear")
        check(secret not in seen and b64(secret).encode() not in seen, "the task input crossed the relay in clear")
        check(b"gamer_register" not in seen and b"HTTP/1.1" not in seen, "HTTP or JSON crossed the relay in clear")
        st, body = metrics(ctx, c.host, c.port, MTOK)
        check(b"p2c2r_http_tls_plain_refused_total 2" in body and b"p2c2r_http_tls_failures_total 1" in body,
              "the refusals counted: %r" % [ln for ln in body.split(b"\n") if b"http_tls" in ln])
        check(c.stop() == 0, "p2c2rd exits 0 on SIGTERM")
        # --http-plain (loopback only): the operator's explicit opt-out; the
        # same relay check now sees the token, so the check above can fail.
        c = Coord(p2c2rd, peer_bin, tmp, "plain", cert, key, ["--http-plain"])
        r = Relay(c.host, c.port)
        w = WS("127.0.0.1", r.port)
        w.send_json({"msg_type": "gamer_register", "client_id": "plain", "token": RTOK})
        check(w.recv_json().get("status") == "ok", "a ws renter with --http-plain")
        check(wait_peers(w), "the native peer registered (--http-plain)")
        w.send_json({"msg_type": "task_submit", "task_id": "e", "task_type": "echo", "data": b64(secret)})
        m = w.recv_json()
        check(m.get("msg_type") == "result_delivery" and unb64(m["result"]) == secret, "echo over ws %r" % m)
        w.close()
        req = urllib.request.Request("http://127.0.0.1:%d/metrics" % r.port,
                                     headers={"Authorization": "Bearer " + MTOK})
        with urllib.request.urlopen(req, timeout=10) as resp:
            check(resp.status == 200, "/metrics over http with --http-plain: %s" % resp.status)
        time.sleep(0.2)
        with r.lock:
            seen = bytes(r.seen)
        check(MTOK.encode() in seen and b64(secret).encode() in seen and b"HTTP/1.1" in seen,
              "with --http-plain the relay sees the bearer token and the task's bytes (the check works)")
        check(c.stop() == 0, "p2c2rd --http-plain exits 0 on SIGTERM")
        # Not on a non-loopback address.
        p = subprocess.run([p2c2rd, "--listen", "127.0.0.1:0", "--http", "0.0.0.0:0", "--tls-cert", cert,
                            "--tls-key", key, "--http-plain"], capture_output=True, timeout=30)
        check(p.returncode == 2 and b"--http-plain" in p.stderr and b"loopback" in p.stderr,
              "--http-plain on 0.0.0.0 refused: rc=%d %r" % (p.returncode, p.stderr[-300:]))
        ok = not FAILS
    finally:
        c.stop()
        if not ok:
            for tag in ("tls", "plain"):
                path = os.path.join(tmp, tag + ".log")
                if os.path.exists(path):
                    sys.stdout.write("---- %s ----\n" % path)
                    sys.stdout.write(open(path, errors="replace").read()[-6000:])
        shutil.rmtree(tmp, ignore_errors=True)
    print("test_wss: %d checks, %d failed" % (CHECKS[0], len(FAILS)))
    sys.exit(1 if FAILS else 0)


if __name__ == "__main__":
    main()
