#!/usr/bin/env python3
"""test_gateway: conformance of p2c2rd's JSON/WebSocket gateway with
docs/GATEWAY.md, every message and every error, and mixed networks.

Starts p2c2rd (--http, a tokens file) and one native p2c2r-peer (echo,
sha256) in a fresh temporary directory, then, each as its own check:
  - the handshake and the challenge;
  - a WebSocket renter served by the native peer, byte-exact (base64 data,
    data_frame input, binary_results output), task_rejected, stats;
  - WebSocket peers (Ed25519 through libsodium by ctypes) serving a native
    renter (the p2c2r CLI), byte-exact, with a blob, a failed result,
    task_timeout, task_cancel to renter and peer, heartbeat credit, pings,
    and a quorum2 type verified by two WebSocket peers;
  - every refusal the document lists: the error message, its code, the close
    status, counted in STATS (gateway_refused, auth_failures, limit_cuts),
    while a good renter keeps being served.

Usage: test_gateway.py P2C2RD P2C2R-PEER P2C2R
"""
import base64
import ctypes
import ctypes.util
import hashlib
import json
import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gwclient import WS, Closed, b64, unb64, wait_started, stop_started, OP_TEXT, OP_BINARY, OP_PING, OP_PONG, OP_CLOSE  # noqa: E402

FAILS = []
CHECKS = [0]


def check(cond, what):
    CHECKS[0] += 1
    if not cond:
        FAILS.append(what)
        print("test_gateway: FAIL:", what, flush=True)
    return cond


# ---- Ed25519 through libsodium (a dependency of p2c2r already) -------------
_sodium = ctypes.CDLL(ctypes.util.find_library("sodium") or "libsodium.so.23")
if _sodium.sodium_init() < 0:
    raise SystemExit("test_gateway: libsodium does not initialise")


class Key:
    def __init__(self, seed=None):
        seed = seed or os.urandom(32)
        self.pk = ctypes.create_string_buffer(32)
        self.sk = ctypes.create_string_buffer(64)
        _sodium.crypto_sign_seed_keypair(self.pk, self.sk, seed)

    def sign(self, msg):
        sig = ctypes.create_string_buffer(64)
        _sodium.crypto_sign_detached(sig, None, msg, ctypes.c_ulonglong(len(msg)), self.sk)
        return sig.raw

    def register(self, challenge, **fields):
        """A peer_register for this key, signing the challenge."""
        msg = (b"p2c2r-peer-auth-v1" + unb64(challenge["nonce"]) + struct.pack("<Q", challenge["conn_id"])
               + hashlib.sha256(b"").digest())
        m = {"msg_type": "peer_register", "key": b64(self.pk.raw), "signature": b64(self.sign(msg))}
        m.update(fields)
        return m


class Coord:
    """A p2c2rd in tmp/name (--listen and --http on port 0) with extra args."""
    def __init__(self, p2c2rd, tmp, name, args):
        self.ready = os.path.join(tmp, name + ".ready")
        self.log_path = os.path.join(tmp, name + ".log")
        self.log = open(self.log_path, "wb")
        self.d = subprocess.Popen(
            [p2c2rd, "--listen", "127.0.0.1:0", "--http", "127.0.0.1:0", "--ready-file", self.ready, *args],
            stdout=self.log, stderr=subprocess.STDOUT)
        self.addr, self.host, self.port = wait_started(self.d, self.ready, self.log_path, "test_gateway")
        self.http = "%s:%d" % (self.host, self.port)


class Env:
    def __init__(self, p2c2rd, peer_bin, cli):
        self.tmp = tempfile.mkdtemp(prefix="p2c2r-gw-")
        self.p2c2rd = p2c2rd
        self.cli = cli
        tokens = os.path.join(self.tmp, "tokens")
        with open(tokens, "w") as f:
            f.write("renter:rtok\npeer:ptok\noperator:otok\n")
        co = Coord(p2c2rd, self.tmp, "p2c2rd",
                   ["--tokens", tokens, "--hello-timeout", "1500", "--max-output", "262144", "--ping-interval",
                    "300", "--verify", "wsq=quorum2,*=none", "--log-level", "info"])
        self.d, self.log, self.log_path = co.d, co.log, co.log_path
        self.addr, self.http, self.host, self.port = co.addr, co.http, co.host, co.port
        self.peer = subprocess.Popen(
            [peer_bin, "--coordinator", self.addr, "--types", "echo,sha256,pathfind", "--slots", "4",
             "--token", "ptok",
             "--key", os.path.join(self.tmp, "peer.key"), "--log-level", "warn"],
            stdout=self.log, stderr=subprocess.STDOUT)

    def ws(self, **kw):
        return WS(self.host, self.port, **kw)

    def renter(self, name="r", binary_results=False):
        w = self.ws()
        w.send_json({"msg_type": "gamer_register", "client_id": name, "token": "rtok",
                     "binary_results": binary_results})
        ack = w.recv_json()
        check(ack == {"msg_type": "registration_ack", "status": "ok", "client_id": name,
                      "conn_id": w.challenge["conn_id"], "max_inflight": ack.get("max_inflight"),
                      "max_message": w.challenge["max_message"]}, "registration_ack %r" % ack)
        return w

    def stats(self):
        w = self.renter("stats")
        w.send_json({"msg_type": "stats_request"})
        m = w.recv_json()
        w.close()
        return m["stats"]

    def stop(self):
        return stop_started(self.d, self.peer)


def expect_refusal(w, code, status, what):
    """The next messages are error {code} and a close with status."""
    try:
        m = w.recv_json()
        if m.get("msg_type") in ("registration_ack", "peer_register_response"):
            m = w.recv_json()
        check(m.get("msg_type") == "error" and m.get("code") == code and isinstance(m.get("message"), str)
              and m["message"], "%s: error %r, want code %s" % (what, m, code))
        w.recv()
        check(False, "%s: no close after the error" % what)
    except Closed as e:
        check(e.status == status, "%s: close status %s, want %s" % (what, e.status, status))
    except (OSError, ValueError) as e:
        check(False, "%s: %r" % (what, e))
    w.close()


def wait_peers(env, n, timeout=10):
    end = time.time() + timeout
    while time.time() < end:
        if env.stats()["peers_connected"] >= n:
            return True
        time.sleep(0.05)
    return False


# ---- the checks --------------------------------------------------------------

def t_handshake(env):
    w = env.ws()
    c = w.challenge
    check(c["msg_type"] == "challenge" and len(unb64(c["nonce"])) == 32 and isinstance(c["conn_id"], int)
          and c["max_message"] > 1 << 20, "challenge %r" % c)
    w2 = env.ws()
    check(w2.challenge["nonce"] != c["nonce"], "a fresh nonce per connection")
    w.close()
    w2.close()


def t_renter_native_peer(env):
    w = env.renter("g1")
    data = bytes(range(256)) * 40
    w.send_json({"msg_type": "task_submit", "task_id": "e-1", "task_type": "echo", "data": b64(data),
                 "params": {"k": "v"}, "priority": "realtime", "deadline_ms": 5000})
    m = w.recv_json()
    check(m["msg_type"] == "result_delivery" and m["task_id"] == "e-1" and m["success"] is True
          and unb64(m["result"]) == data and m["error"] is None and isinstance(m["peer"], int)
          and m["peer"] > 0 and isinstance(m["processing_time_ms"], (int, float))
          and isinstance(m["network_latency_ms"], (int, float)) and m["cached"] in (True, False),
          "echo result_delivery %r" % {k: v for k, v in m.items() if k != "result"})
    # data_frame: the input follows as a binary message; integer task_id.
    blob = os.urandom(100000)
    w.send_json({"msg_type": "task_submit", "task_id": 42, "task_type": "sha256", "data_frame": True})
    w.send_binary(blob)
    m = w.recv_json()
    check(m["task_id"] == 42 and unb64(m["result"]) == hashlib.sha256(blob).digest(),
          "sha256 of a data_frame input %r" % m)
    # Many in flight, each answered once with its own bytes.
    want = {}
    for i in range(200):
        d = os.urandom(i + 1)
        want["t%d" % i] = d
        w.send_json({"msg_type": "task_submit", "task_id": "t%d" % i, "task_type": "echo", "data": b64(d)})
    got = {}
    while len(got) < len(want):
        m = w.recv_json()
        got[m["task_id"]] = unb64(m["result"])
    check(got == want, "200 echoes in flight, byte-exact")
    # task_rejected
    w.send_json({"msg_type": "task_submit", "task_id": "x", "task_type": "nosuchtype", "data": ""})
    m = w.recv_json()
    check(m == {"msg_type": "task_rejected", "task_id": "x", "error": "EUNSUPPORTED", "reason": m.get("reason")}
          and "nosuchtype" in m["reason"], "task_rejected %r" % m)
    # stats_request
    w.send_json({"msg_type": "stats_request"})
    m = w.recv_json()
    check(m["msg_type"] == "stats" and m["stats"]["counters"]["gateway_upgrades"] >= 1, "stats %r" % m)
    # stats_request with every_ms: readings are pushed without asking again,
    # no faster than asked, until every_ms 0 ends the subscription.
    w.send_json({"msg_type": "stats_request", "every_ms": 200})
    t0 = time.time()
    pushed = [w.recv_json() for _ in range(4)]
    span = time.time() - t0
    check(all(p["msg_type"] == "stats" and "counters" in p["stats"] for p in pushed),
          "4 readings pushed after one stats_request: %r" % [p.get("msg_type") for p in pushed])
    check(span >= 0.55, "4 readings at every_ms 200 take at least 3 periods: %.3f s" % span)
    w.send_json({"msg_type": "stats_request", "every_ms": 0})
    m = w.recv_json()  # the last reading: the request's own answer
    check(m["msg_type"] == "stats", "every_ms 0 is answered once: %r" % m.get("msg_type"))
    w.sock.settimeout(1.0)
    try:
        extra = w.recv_json()
    except (socket.timeout, TimeoutError):
        extra = None
    w.sock.settimeout(10.0)
    check(extra is None, "no reading after the subscription ended: %r" % (extra and extra.get("msg_type")))
    w.send_json({"msg_type": "stats_request", "every_ms": 60001})
    m = w.recv_json()
    check(m["msg_type"] == "error" and "every_ms" in m.get("message", ""), "every_ms over 60000: %r" % m)
    w.close()
    # binary_results: the result follows as a binary message.
    w = env.renter("g2", binary_results=True)
    w.send_json({"msg_type": "task_submit", "task_id": "b", "task_type": "echo", "data": b64(blob)})
    m = w.recv_json()
    op, payload = w.recv()
    check(m["result_frame"] is True and "result" not in m and op == OP_BINARY and payload == blob,
          "binary_results %r" % m)
    # fragmented message (RFC 6455 5.4), a ping between its fragments
    text = json.dumps({"msg_type": "task_submit", "task_id": "f", "task_type": "echo", "data": b64(b"frag")})
    w.send(OP_TEXT, text[:10].encode(), fin=False)
    w.send(OP_PING, b"mid")
    w.send(0, text[10:30].encode(), fin=False)
    w.send(0, text[30:].encode(), fin=True)
    m = w.recv_json()
    op, payload = w.recv()
    check(payload == b"frag" and w.pongs == [b"mid"], "fragmented message, pong %r" % w.pongs)
    w.close()


def peer_loop(w, handler, stop, on_binary=None):
    """Runs a WebSocket peer until stop is set: handler(msg) and on_binary(bytes)
    -> a reply (a dict as JSON, bytes as a binary message), a list of them, or None."""
    w.sock.settimeout(0.2)
    while not stop.is_set():
        try:
            op, p = w.recv()
        except socket.timeout:
            continue
        except (Closed, OSError):
            return
        r = handler(json.loads(p)) if op == OP_TEXT else on_binary(p) if op == OP_BINARY and on_binary else None
        for x in r if isinstance(r, list) else [r] if r is not None else []:
            w.send_binary(x) if isinstance(x, bytes) else w.send_json(x)


def cli(env, *args, inp=b""):
    path = os.path.join(env.tmp, "in-%d" % time.monotonic_ns())
    with open(path, "wb") as f:
        f.write(inp)
    out = path + ".out"
    r = subprocess.run([env.cli, "submit", *args, "--coordinator", env.addr, "--token", "rtok", "-i", path,
                        "-o", out, "--timeout", "10000"], capture_output=True, timeout=60)
    res = open(out, "rb").read() if os.path.exists(out) else None
    return r.returncode, res, r.stderr.decode(errors="replace")


def t_ws_peer_native_renter(env):
    k = Key()
    w = env.ws()
    w.send_json(k.register(w.challenge, peer_id="wsp-1", token="ptok", slots=4,
                           capabilities={"cpu_cores": 2, "ram_gb": 1.5, "gpu": False, "gpu_vram_gb": 0},
                           task_types=[{"name": "wsrev", "version": 3}, {"name": "wsslow", "version": 1},
                                       {"name": "wsfail", "version": 1}]))
    m = w.recv_json()
    check(m["msg_type"] == "peer_register_response" and m["success"] is True and m["peer_id"] == "wsp-1"
          and m["peer_num"] > 0, "peer_register_response %r" % m)
    seen = {"assign": [], "cancel": [], "blob": {}}

    def handle(msg):
        t = msg["msg_type"]
        if t == "blob":
            seen["blob"][msg["hash"]] = unb64(msg["data"])
            return None
        if t == "task_cancel":
            seen["cancel"].append(msg["task_id"])
            return None
        if t != "task_assign":
            return None
        seen["assign"].append(msg)
        if msg["task_type"] == "wsslow":
            return None  # never answers: the renter's deadline or cancel ends it
        if msg["task_type"] == "wsfail":
            return {"msg_type": "task_result", "task_id": msg["task_id"], "peer_id": "wsp-1", "success": False,
                    "error": "bad input: no", "processing_time_ms": 1}
        out = unb64(msg["data"])[::-1]
        for h in msg.get("blobs", []):
            out += seen["blob"][h]
        return {"msg_type": "task_result", "task_id": msg["task_id"], "peer_id": "wsp-1", "success": True,
                "result": b64(out), "processing_time_ms": 0.5}
    stop = threading.Event()
    th = threading.Thread(target=peer_loop, args=(w, handle, stop))
    th.start()
    try:
        w.send_json({"msg_type": "heartbeat", "peer_id": "wsp-1", "timestamp": time.time(), "load": 0.1,
                     "tasks_completed": 0, "tasks_failed": 0, "slots": 6})
        data = os.urandom(3000)
        rc, out, err = cli(env, "wsrev", "-p", "a=1", "-p", "b=x y", inp=data)
        check(rc == 0 and out == data[::-1], "native renter, WebSocket peer: rc %d %s" % (rc, err))
        a = seen["assign"][-1] if seen["assign"] else {}
        check(a.get("task_type") == "wsrev" and a.get("params") == {"a": "1", "b": "x y"}
              and isinstance(a.get("task_id"), str), "task_assign %r" % a)
        blobf = os.path.join(env.tmp, "blob.bin")
        bdata = os.urandom(5000)
        open(blobf, "wb").write(bdata)
        rc, out, err = cli(env, "wsrev", "-b", "map=" + blobf, inp=b"xyz")
        check(rc == 0 and out == b"zyx" + bdata, "a blob sent to a WebSocket peer: rc %d %s" % (rc, err))
        rc, out, err = cli(env, "wsfail", inp=b"q")
        check(rc != 0 and "bad input: no" in err, "failed task_result reaches the renter: rc %d %s" % (rc, err))
        # A WebSocket renter served by the WebSocket peer: task_timeout, task_cancel.
        r = env.renter("g3")
        r.send_json({"msg_type": "task_submit", "task_id": "slow", "task_type": "wsslow", "data": "",
                     "deadline_ms": 300})
        m = r.recv_json()
        check(m["msg_type"] == "task_timeout" and m["task_id"] == "slow" and isinstance(m["error"], str),
              "task_timeout %r" % m)
        r.send_json({"msg_type": "task_submit", "task_id": "c", "task_type": "wsslow", "data": b64(b"1"),
                     "deadline_ms": 20000})
        end = time.time() + 5
        while len(seen["assign"]) < 5 and time.time() < end:
            time.sleep(0.02)
        r.send_json({"msg_type": "task_cancel", "task_id": "c"})
        m = r.recv_json()
        check(m["msg_type"] == "result_delivery" and m["task_id"] == "c" and m["success"] is False
              and m["error_code"] == "ECANCELLED", "cancelled %r" % m)
        end = time.time() + 5
        while seen["assign"][-1]["task_id"] not in seen["cancel"] and time.time() < end:
            time.sleep(0.02)
        # (the timed-out task was cancelled on the peer too)
        check(seen["assign"][-1]["task_id"] in seen["cancel"], "task_cancel reaches the peer %r" % seen["cancel"])
        r.close()
        # The coordinator pings a silent peer; the client's pong keeps it registered.
        time.sleep(1.0)
        check(env.stats()["peers_connected"] >= 2, "the WebSocket peer survives its pings")
    finally:
        stop.set()
        th.join()
        w.close()


ARENA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tasks", "pathfind", "data", "arena.map")


def t_blobs(env):
    """blob_put -> blob_ack, a task_submit naming the blob: a pathfind over an
    uploaded map, byte-exact with a native renter's (the CLI's --blob)."""
    w = env.renter("gb")
    mapb = open(ARENA, "rb").read()
    hx = hashlib.sha256(mapb).hexdigest()
    w.send_json({"msg_type": "blob_put", "request_id": "map-1", "data": b64(mapb)})
    m = w.recv_json()
    check(m == {"msg_type": "blob_ack", "request_id": "map-1", "hash": hx}, "blob_ack %r" % m)
    # data_frame: the bytes as a binary message; an integer request_id
    other = os.urandom(70000)
    w.send_json({"msg_type": "blob_put", "request_id": 9, "data_frame": True})
    w.send_binary(other)
    m = w.recv_json()
    check(m == {"msg_type": "blob_ack", "request_id": 9, "hash": hashlib.sha256(other).hexdigest()},
          "blob_ack of a data_frame blob %r" % m)
    queries = b"queries 3\n19 26 19 29\n44 30 43 28\n3 45 39 11\n"
    w.send_json({"msg_type": "task_submit", "task_id": "pf", "task_type": "pathfind", "data": b64(queries),
                 "params": {"map": hx}, "blobs": [hx], "no_cache": True})
    m = w.recv_json()
    got = unb64(m["result"]) if m.get("success") else None
    mapf = os.path.join(env.tmp, "arena.map")
    shutil.copyfile(ARENA, mapf)
    rc, want, err = cli(env, "pathfind", "-b", "map=" + mapf, inp=queries)
    check(rc == 0 and want and want.split(b"\n")[2].startswith(b"51.84062043 "), "native pathfind: rc %d %s %r"
          % (rc, err, want))
    check(m.get("msg_type") == "result_delivery" and got == want,
          "pathfind over a blob_put map, byte-exact with the native renter %r" % m)
    # a hash the store does not hold: task_rejected ENOBLOB, the connection stays
    nohx = hashlib.sha256(b"never uploaded").hexdigest()
    w.send_json({"msg_type": "task_submit", "task_id": "nb", "task_type": "pathfind", "data": b64(queries),
                 "params": {"map": nohx}, "blobs": [nohx]})
    m = w.recv_json()
    check(m.get("msg_type") == "task_rejected" and m.get("task_id") == "nb" and m.get("error") == "ENOBLOB",
          "task_submit naming an unknown blob %r" % m)
    w.send_json({"msg_type": "task_submit", "task_id": "e", "task_type": "echo", "data": b64(b"after")})
    m = w.recv_json()
    check(m.get("success") is True and unb64(m["result"]) == b"after", "served after ENOBLOB %r" % m)
    w.close()
    # An account's blob quota: blob_rejected ELIMIT, the connection stays open.
    acct = os.path.join(env.tmp, "accounts")
    hl = subprocess.run([env.p2c2rd, "--hash-token"], input=b"quota-renter-token-0123456789",
                        capture_output=True, timeout=30).stdout.decode().strip()
    with open(acct, "w") as f:
        f.write("[tier small]\nbase = unlimited\nblob_bytes = 4k\n\n[account small]\nrole = renter\n%s\n"
                "tier = small\n" % hl)
    co = Coord(env.p2c2rd, env.tmp, "quota", ["--accounts", acct, "--log-level", "info"])
    try:
        q = WS(co.host, co.port)
        q.send_json({"msg_type": "gamer_register", "client_id": "q", "token": "quota-renter-token-0123456789"})
        m = q.recv_json()
        check(m.get("status") == "ok", "quota renter registered %r" % m)
        small = os.urandom(1000)
        q.send_json({"msg_type": "blob_put", "request_id": "s", "data": b64(small)})
        m = q.recv_json()
        check(m == {"msg_type": "blob_ack", "request_id": "s", "hash": hashlib.sha256(small).hexdigest()},
              "blob_ack within the quota %r" % m)
        q.send_json({"msg_type": "blob_put", "request_id": "big", "data": b64(os.urandom(8000))})
        m = q.recv_json()
        check(m.get("msg_type") == "blob_rejected" and m.get("request_id") == "big" and m.get("error") == "ELIMIT"
              and "blob_bytes" in m.get("reason", ""), "blob over the account's quota %r" % m)
        q.send_json({"msg_type": "blob_put", "request_id": "s2", "data": b64(small)})
        m = q.recv_json()
        check(m.get("msg_type") == "blob_ack" and m.get("request_id") == "s2", "served after blob_rejected %r" % m)
        q.close()
    finally:
        check(stop_started(co.d) == 0, "quota p2c2rd exit status")
        co.log.close()
        log = open(co.log_path, errors="replace").read()
        check("ERROR: AddressSanitizer" not in log and "runtime error:" not in log, "sanitizer report (quota)")


def t_binary_inputs(env):
    """A peer registered with binary_inputs gets each task_assign's input as the
    next binary message (no 'data'); a blob stays a text message before it."""
    w = env.ws()
    w.send_json(Key().register(w.challenge, peer_id="wsbin", token="ptok", slots=2, binary_inputs=True,
                               task_types=[{"name": "wsbin", "version": 1}]))
    m = w.recv_json()
    check(m.get("success") is True, "binary_inputs peer registered %r" % m)
    seen = []
    blobs = {}
    pending = []

    def handle(msg):
        if msg["msg_type"] == "blob":
            blobs[msg["hash"]] = unb64(msg["data"])
        elif msg["msg_type"] == "task_assign":
            pending.append(msg)

    def on_binary(p):
        a = pending.pop() if pending else None
        seen.append((a, p))
        if a is None:
            return None
        out = p[::-1] + b"".join(blobs[h] for h in a.get("blobs", []))
        return [{"msg_type": "task_result", "task_id": a["task_id"], "success": True, "result_frame": True}, out]
    stop = threading.Event()
    th = threading.Thread(target=peer_loop, args=(w, handle, stop, on_binary))
    th.start()
    try:
        data = os.urandom(200000)
        rc, out, err = cli(env, "wsbin", inp=data)
        check(rc == 0 and out == data[::-1], "binary_inputs: native renter served byte-exact: rc %d %s" % (rc, err))
        a = seen[-1][0] if seen else {}
        check(a.get("data_frame") is True and "data" not in a and a.get("task_type") == "wsbin",
              "task_assign with data_frame %r" % a)
        blobf = os.path.join(env.tmp, "binblob.bin")
        bdata = os.urandom(3000)
        open(blobf, "wb").write(bdata)
        rc, out, err = cli(env, "wsbin", "-b", "k=" + blobf, inp=b"abc")
        check(rc == 0 and out == b"cba" + bdata, "binary_inputs with a blob: rc %d %s" % (rc, err))
        # A WebSocket renter, an empty input: still one binary message.
        r = env.renter("gbin")
        r.send_json({"msg_type": "task_submit", "task_id": "z", "task_type": "wsbin", "data": ""})
        m = r.recv_json()
        check(m.get("success") is True and unb64(m["result"]) == b"" and seen and seen[-1][1] == b"",
              "binary_inputs with an empty input %r" % m)
        r.close()
    finally:
        stop.set()
        th.join()
        w.close()


def t_quorum(env):
    """Two WebSocket peers of a quorum2 type: both run each task, results compared."""
    ws, stops, ths = [], [], []
    for i in range(2):
        w = env.ws()
        w.send_json(Key().register(w.challenge, peer_id="q%d" % i, token="ptok", slots=2,
                                   task_types=[{"name": "wsq", "version": 1}]))
        m = w.recv_json()
        check(m.get("success") is True, "quorum peer %d %r" % (i, m))

        def handle(msg):
            if msg["msg_type"] != "task_assign":
                return None
            return {"msg_type": "task_result", "task_id": msg["task_id"], "success": True,
                    "result": b64(hashlib.sha256(unb64(msg["data"])).digest()), "processing_time_ms": 1}
        stop = threading.Event()
        th = threading.Thread(target=peer_loop, args=(w, handle, stop))
        th.start()
        ws.append(w), stops.append(stop), ths.append(th)
    try:
        r = env.renter("gq")
        r.send_json({"msg_type": "task_submit", "task_id": 1, "task_type": "wsq", "data": b64(b"abc")})
        m = r.recv_json()
        check(m.get("success") is True and m.get("verified") is True
              and unb64(m["result"]) == hashlib.sha256(b"abc").digest(), "quorum2 verified %r" % m)
        r.close()
    finally:
        for s in stops:
            s.set()
        for t in ths:
            t.join()
        for w in ws:
            w.close()


def t_refusals(env):
    before = env.stats()["counters"]
    refused = [0]

    def renter_bad(payload, code, status, what, op=OP_TEXT):
        w = env.renter("bad")
        w.send(op, payload)
        expect_refusal(w, code, status, what)
        refused[0] += 1

    renter_bad(b"{not json", "EPROTO", 1002, "not JSON")
    renter_bad(b"[1,2]", "EPROTO", 1002, "an array")
    renter_bad(b'{"task_id":1}', "EPROTO", 1002, "no msg_type")
    renter_bad(b'{"msg_type":"fly"}', "EPROTO", 1002, "unknown msg_type")
    renter_bad(b'{"msg_type":"task_submit","task_id":1,"task_type":5,"data":""}', "EINVAL", 1008,
               "task_type of the wrong type")
    renter_bad(b'{"msg_type":"task_submit","task_id":1.5,"task_type":"echo","data":""}', "EINVAL", 1008,
               "task_id a real")
    renter_bad(b'{"msg_type":"task_submit","task_id":1,"task_type":"echo"}', "EINVAL", 1008, "no data")
    renter_bad(b'{"msg_type":"task_submit","task_id":1,"task_type":"echo","data":"!!!!"}', "EINVAL", 1008,
               "data not base64")
    renter_bad(b'{"msg_type":"task_submit","task_id":1,"task_type":"echo","data":"","priority":7}', "EINVAL",
               1008, "priority out of range")
    renter_bad(b'{"msg_type":"task_submit","task_id":1,"task_type":"echo","data":"","params":{"a":[1]}}',
               "EINVAL", 1008, "params value an array")
    renter_bad(b'{"msg_type":"task_submit","task_id":1,"task_type":"echo","data":"","verify":false}', "EINVAL",
               1008, "verify false")
    renter_bad(b'{"msg_type":"task_result","task_id":"1","success":true,"result":""}', "EPROTO", 1002,
               "a peer message from a renter")
    renter_bad(b'{"msg_type":"gamer_register"}', "EPROTO", 1002, "registering twice")
    renter_bad(b"\x00\x01", "EPROTO", 1002, "binary without data_frame", op=OP_BINARY)
    five = ",".join(['"%s"' % ("0" * 64)] * 5)
    for payload, what in ((b'{"msg_type":"blob_put","request_id":"b"}', "blob_put without data"),
                          (b'{"msg_type":"blob_put","data":""}', "blob_put without request_id"),
                          (b'{"msg_type":"blob_put","request_id":"b","data":"!!!!"}', "blob_put data not base64"),
                          (b'{"msg_type":"blob_put","request_id":"b","data":"","data_frame":true}',
                           "blob_put with data and data_frame"),
                          (b'{"msg_type":"task_submit","task_id":1,"task_type":"echo","data":"","blobs":["zz"]}',
                           "blobs entry not a hash"),
                          (b'{"msg_type":"task_submit","task_id":1,"task_type":"echo","data":"","blobs":"ab"}',
                           "blobs not an array"),
                          (('{"msg_type":"task_submit","task_id":1,"task_type":"echo","data":"","blobs":[%s]}'
                            % five).encode(), "five blobs")):
        renter_bad(payload, "EINVAL", 1008, what)
    renter_bad(b'{"msg_type":"task_submit","task_id":1,"task_type":"echo","data":"","x":1,"x":2}', "EPROTO", 1002,
               "duplicate keys")
    renter_bad(b'{"msg_type":"task_submit","task_id":"a\\u0001","task_type":"echo","data":""}', "EINVAL", 1008,
               "control character in task_id")
    # text where the data_frame's binary message was due
    w = env.renter("bad")
    w.send_json({"msg_type": "task_submit", "task_id": 1, "task_type": "echo", "data_frame": True})
    w.send_json({"msg_type": "stats_request"})
    expect_refusal(w, "EPROTO", 1002, "text instead of the announced binary message")
    refused[0] += 1
    # before registering
    w = env.ws()
    w.send_json({"msg_type": "task_submit", "task_id": 1, "task_type": "echo", "data": ""})
    expect_refusal(w, "EPROTO", 1002, "task_submit before gamer_register")
    refused[0] += 1
    # framing: unmasked client frame, reserved bits, continuation without a start, oversized
    w = env.ws()
    w.send_raw(WS.frame(OP_TEXT, b"{}", mask=False))
    expect_refusal(w, "EPROTO", 1002, "unmasked frame")
    w = env.ws()
    w.send_raw(WS.frame(OP_TEXT, b"{}", rsv=0x40))
    expect_refusal(w, "EPROTO", 1002, "reserved bit")
    w = env.ws()
    w.send(0, b"{}", fin=True)
    expect_refusal(w, "EPROTO", 1002, "continuation without a message")
    w = env.ws()
    w.send_raw(WS.frame(OP_TEXT, b"x" * 200, mask=True)[:2] + b"")  # a header only, then the big one
    w.close()
    w = env.ws()
    maxm = w.challenge["max_message"]
    hdr = struct.pack("!BBQ", 0x81, 0x80 | 127, maxm + 1) + b"\0\0\0\0"
    w.send_raw(hdr)
    expect_refusal(w, "ETOOBIG", 1009, "message over max_message (header alone)")
    w = env.ws()
    w.send(OP_TEXT, b" " * 1000, fin=False)
    w.send_raw(struct.pack("!BBQ", 0x00, 0x80 | 127, maxm) + b"\0\0\0\0")
    expect_refusal(w, "ETOOBIG", 1009, "fragments over max_message")
    refused[0] += 5
    # credentials
    w = env.ws()
    w.send_json({"msg_type": "gamer_register", "client_id": "x", "token": "wrong"})
    m = w.recv_json()
    check(m.get("msg_type") == "registration_ack" and m.get("status") == "error" and m.get("error") == "EAUTH",
          "registration_ack with a bad token %r" % m)
    expect_refusal(w, "EAUTH", 1008, "bad renter token")
    w = env.ws()
    msg = Key().register(w.challenge, peer_id="liar", token="ptok", task_types=["echo"])
    msg["key"] = b64(Key().pk.raw)  # signed by another key
    w.send_json(msg)
    m = w.recv_json()
    check(m.get("msg_type") == "peer_register_response" and m.get("success") is False and m.get("error") == "EAUTH",
          "peer_register_response to a bad signature %r" % m)
    expect_refusal(w, "EAUTH", 1008, "bad signature")
    w = env.ws()
    other = env.ws()
    w.send_json(Key().register(other.challenge, peer_id="replay", token="ptok", task_types=["echo"]))
    expect_refusal(w, "EAUTH", 1008, "a signature of another connection's challenge")
    other.close()
    w = env.ws()
    w.send_json({"msg_type": "peer_register", "peer_id": "nokey", "token": "ptok", "task_types": ["echo"]})
    expect_refusal(w, "EINVAL", 1008, "peer_register without a key")
    refused[0] += 1
    w = env.ws()
    w.send_json(Key().register(w.challenge, peer_id="badtok", token="rtok", task_types=["echo"]))
    expect_refusal(w, "EAUTH", 1008, "peer token")
    # silence: no registration within --hello-timeout
    w = env.ws()
    w.sock.settimeout(10)
    expect_refusal(w, "ETIMEDOUT", 1008, "no registration within the hello timeout")
    # close and ping from the client
    w = env.renter("c")
    w.send(OP_PING, b"hello?")
    w.send(OP_CLOSE, struct.pack("!H", 1000) + b"bye")
    try:
        w.recv()
        check(False, "no close echoed")
    except Closed as e:
        check(e.status == 1000 and w.pongs == [b"hello?"], "close %s, pongs %r" % (e.status, w.pongs))
    w.close()
    # a slow reader: results it does not read are over --max-output, it is cut
    w = env.renter("slow")
    w.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    big = b64(os.urandom(60000))
    cut = False
    try:
        for i in range(400):
            w.send_json({"msg_type": "task_submit", "task_id": i, "task_type": "echo", "data": big})
    except OSError:
        cut = True
    time.sleep(1.0)
    st = env.stats()
    check(st["counters"]["limit_cuts"] > before["limit_cuts"], "the slow reader was cut (limit_cuts %d -> %d)"
          % (before["limit_cuts"], st["counters"]["limit_cuts"]))
    w.close()
    # The others were unaffected: a good renter is served.
    g = env.renter("good")
    g.send_json({"msg_type": "task_submit", "task_id": "ok", "task_type": "echo", "data": b64(b"still here")})
    m = g.recv_json()
    check(unb64(m["result"]) == b"still here", "a good renter after the refusals %r" % m)
    g.close()
    after = env.stats()["counters"]
    check(after["gateway_refused"] - before["gateway_refused"] == refused[0],
          "gateway_refused counted %d, want %d" % (after["gateway_refused"] - before["gateway_refused"], refused[0]))
    check(after["auth_failures"] - before["auth_failures"] == 4,
          "auth_failures counted %d, want 4" % (after["auth_failures"] - before["auth_failures"]))
    check(after["protocol_errors"] > before["protocol_errors"], "protocol_errors counted")
    # ... and the counters are the Prometheus ones too (one table)
    with socket.create_connection((env.host, env.port), timeout=10) as s:
        # with credentials /metrics is an operator's (docs/ACCOUNTS.md, "Who may read /metrics")
        s.sendall(b"GET /metrics HTTP/1.0\r\nAuthorization: Bearer otok\r\n\r\n")
        body = b""
        while True:
            d = s.recv(65536)
            if not d:
                break
            body += d
    check(b"p2c2r_gateway_refused_total %d" % after["gateway_refused"] in body, "Prometheus gateway_refused")


def main():
    env = Env(*sys.argv[1:4])
    rc = 1
    try:
        if not check(wait_peers(env, 1), "the native peer registered"):
            return 1
        for t in (t_handshake, t_renter_native_peer, t_blobs, t_ws_peer_native_renter, t_binary_inputs, t_quorum,
                  t_refusals):
            print("test_gateway:", t.__name__, flush=True)
            try:
                t(env)
            except Exception as e:  # a protocol surprise fails the test, it does not end it
                import traceback
                traceback.print_exc()
                check(False, "%s raised %r" % (t.__name__, e))
        rc = env.stop()
        check(rc == 0, "p2c2rd exit status %s" % rc)
        log = open(env.log_path, errors="replace").read()
        check("ERROR: AddressSanitizer" not in log and "runtime error:" not in log, "sanitizer report in the log")
    finally:
        if env.d.poll() is None:
            env.d.kill()
        if env.peer.poll() is None:
            env.peer.kill()
        if FAILS or os.environ.get("P2C2R_TEST_VERBOSE"):
            sys.stdout.write(open(env.log_path, errors="replace").read()[-20000:])
        if not FAILS and not os.environ.get("P2C2R_TEST_KEEP"):
            shutil.rmtree(env.tmp, ignore_errors=True)
    print("test_gateway: %d checks, %d failed" % (CHECKS[0], len(FAILS)))
    return 1 if FAILS else 0


if __name__ == "__main__":
    sys.exit(main())
