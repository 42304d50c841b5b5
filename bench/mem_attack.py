#!/usr/bin/env python3
"""mem_attack.py - two of issue 12's memory attacks at their own sizes, against a p2c2rd
started here with its default options (docs/PERFORMANCE.md, "Memory under attack").

  python3 bench/mem_attack.py build/p2c2rd hello 24    # 24 connections announce a 16 MiB HELLO
  python3 bench/mem_attack.py build/p2c2rd submit 16   # 16 renters leave a SUBMIT 1 byte short

Each connection sends its header and the body but one byte (each send bounded by 2 s: a
coordinator that refused the header closes the connection); then the coordinator's VmRSS is
printed, and whether a new renter still gets HELLO_OK."""
import os
import socket
import struct
import subprocess
import sys
import tempfile
import time

SIZE = 16 << 20


def hdr(msg_type, req_id, body_len):
    return b"P2CR" + bytes([1, msg_type]) + struct.pack("<HQI", 0, req_id, body_len)


def hello(role=1):
    body = struct.pack("<HHBBH", 1, 1, role, 0, 0) + bytes([1]) + b"x"
    return hdr(0x01, 1, len(body)) + body


def main():
    binary, mode, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    ready = os.path.join(tempfile.mkdtemp(), "ready")
    p = subprocess.Popen([binary, "--listen", "127.0.0.1:0", "--ready-file", ready, "--log-level", "error"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while not os.path.exists(ready):
            time.sleep(0.05)
        host, port = open(ready).read().strip().rsplit(":", 1)
        socks, junk = [], b"\0" * (SIZE - 1)
        for _ in range(n):
            s = socket.create_connection((host, int(port)))
            s.settimeout(2)
            try:
                if mode == "submit":
                    s.sendall(hello())
                    s.recv(64)
                    s.sendall(hdr(0x20, 2, SIZE))
                else:
                    s.sendall(hdr(0x01, 1, SIZE))
                s.sendall(junk)
            except OSError:
                pass
            socks.append(s)
        time.sleep(0.5)
        rss = [int(l.split()[1]) for l in open("/proc/%d/status" % p.pid) if l.startswith("VmRSS")][0]
        t = socket.create_connection((host, int(port)))
        t.settimeout(5)
        t.sendall(hello())
        ok = len(t.recv(64)) >= 20
        print("%s %s x%d: VmRSS %.1f MiB, new renter HELLO_OK: %s" % (binary, mode, n, rss / 1024, ok))
    finally:
        p.terminate()
        p.wait()


if __name__ == "__main__":
    main()
