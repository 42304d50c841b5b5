"""gwclient: a small WebSocket client (RFC 6455) for p2c2rd's gateway, on the
Python standard library only, for the gateway tests (docs/GATEWAY.md).

    ws = WS(host, port)            # handshake; ws.challenge is the first message
    ws = WS(host, port, path, challenge=False)   # any other WebSocket server
    ws = WS(host, port, tls=ssl_context)          # wss
    ws.send_json({...}); ws.recv_json()
    ws.send_binary(b"..."); op, payload = ws.recv()
"""
import base64
import hashlib
import json
import os
import signal
import socket
import struct
import time

OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 1, 2, 8, 9, 10
GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


class Closed(Exception):
    """The server closed the connection (status, reason)."""

    def __init__(self, status, reason):
        super().__init__("closed %s %r" % (status, reason))
        self.status, self.reason = status, reason


class WS:
    def __init__(self, host, port, path="/ws", timeout=10.0, handshake=True, challenge=True, tls=None):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        if tls is not None:  # wss: tls is an ssl.SSLContext trusting the server's CA
            self.sock = tls.wrap_socket(self.sock, server_hostname=host)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""
        self.challenge = None
        self.pongs = []
        if handshake:
            key = base64.b64encode(os.urandom(16)).decode()
            req = ("GET %s HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                   "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n" % (path, host, port, key))
            self.sock.sendall(req.encode())
            head = self._read_until(b"\r\n\r\n")
            status = head.split(b"\r\n", 1)[0]
            if b" 101 " not in status + b" ":
                raise RuntimeError("no upgrade: %r" % head)
            want = base64.b64encode(hashlib.sha1(key.encode() + GUID).digest())
            if b"Sec-WebSocket-Accept: " + want not in head:
                raise RuntimeError("bad Sec-WebSocket-Accept: %r" % head)
            if challenge:  # p2c2rd speaks first; another server (DevTools) may not
                self.challenge = self.recv_json()

    def _read_until(self, mark):
        while mark not in self.buf:
            d = self.sock.recv(65536)
            if not d:
                raise Closed(None, "eof")
            self.buf += d
        i = self.buf.index(mark) + len(mark)
        head, self.buf = self.buf[:i], self.buf[i:]
        return head

    def _need(self, n):
        while len(self.buf) < n:
            d = self.sock.recv(1 << 20)
            if not d:
                raise Closed(None, "eof")
            self.buf += d

    @staticmethod
    def frame(op, payload, fin=True, mask=True, rsv=0):
        b0 = (0x80 if fin else 0) | rsv | op
        n = len(payload)
        mbit = 0x80 if mask else 0
        if n < 126:
            h = struct.pack("!BB", b0, mbit | n)
        elif n < 65536:
            h = struct.pack("!BBH", b0, mbit | 126, n)
        else:
            h = struct.pack("!BBQ", b0, mbit | 127, n)
        if not mask:
            return h + payload
        key = os.urandom(4)
        # XOR in bulk: int arithmetic over the whole payload.
        k = (key * (n // 4 + 1))[:n]
        x = (int.from_bytes(payload, "little") ^ int.from_bytes(k, "little")).to_bytes(n, "little") if n else b""
        return h + key + x

    def send_raw(self, data):
        self.sock.sendall(data)

    def send(self, op, payload, fin=True):
        self.sock.sendall(self.frame(op, payload, fin))

    def send_json(self, obj):
        self.send(OP_TEXT, json.dumps(obj).encode())

    def send_text(self, text):
        self.send(OP_TEXT, text if isinstance(text, bytes) else text.encode())

    def send_binary(self, data):
        self.send(OP_BINARY, data)

    def recv_frame(self):
        self._need(2)
        b0, b1 = self.buf[0], self.buf[1]
        if b1 & 0x80:
            raise RuntimeError("server frame is masked")
        n, i = b1 & 0x7F, 2
        if n == 126:
            self._need(4)
            n, i = struct.unpack("!H", self.buf[2:4])[0], 4
        elif n == 127:
            self._need(10)
            n, i = struct.unpack("!Q", self.buf[2:10])[0], 10
        self._need(i + n)
        payload, self.buf = self.buf[i:i + n], self.buf[i + n:]
        return b0 & 0x80, b0 & 0x0F, payload

    def recv(self):
        """The next message (op, payload); answers pings, records pongs,
        raises Closed at a close frame."""
        parts, mop = [], None
        while True:
            fin, op, payload = self.recv_frame()
            if op == OP_PING:
                self.send(OP_PONG, payload)
                continue
            if op == OP_PONG:
                self.pongs.append(payload)
                continue
            if op == OP_CLOSE:
                status = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None
                raise Closed(status, payload[2:].decode("utf-8", "replace"))
            if op != 0:
                mop = op
            parts.append(payload)
            if fin:
                return mop, b"".join(parts)

    def recv_json(self):
        op, payload = self.recv()
        if op != OP_TEXT:
            raise RuntimeError("expected a text message, got op %d" % op)
        return json.loads(payload)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def b64(b):
    return base64.b64encode(b).decode()


def unb64(s):
    return base64.b64decode(s.encode(), validate=True)


def wait_started(d, ready, log_path, who, timeout=30):
    """Waits for a p2c2rd started with --ready-file ready and its log at
    log_path (--http and --log-level info): returns (addr, http host, http port)."""
    end = time.time() + timeout
    while not os.path.exists(ready) and time.time() < end and d.poll() is None:
        time.sleep(0.05)
    if not os.path.exists(ready):
        raise SystemExit("%s: p2c2rd did not become ready:\n%s" % (who, open(log_path, errors="replace").read()))
    addr = open(ready).read().strip()
    http = None
    while http is None and time.time() < end:
        for line in open(log_path, errors="replace"):
            if "event=http_listening addr=" in line:
                http = line.split("event=http_listening addr=")[1].split()[0]
        time.sleep(0.05)
    host, port = http.rsplit(":", 1)
    return addr, host, int(port)


def stop_started(d, *others):
    """SIGTERM to p2c2rd d and the processes others; returns d's exit status."""
    for p in (d,) + others:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    rc = d.wait(30)
    for p in others:
        p.wait(30)
    return rc
