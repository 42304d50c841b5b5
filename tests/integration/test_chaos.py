#!/usr/bin/env python3
"""test_chaos: many misbehaving connections at once, while a good renter works.

Starts p2c2rd (port 0, 2 local peers) in a fresh temporary directory, then
for a bounded time opens batches of connections that send mutated versions of
the checked-in fuzz corpus frames (after a valid HELLO as renter or peer, or
none), read a little, and close (half of them with a reset).  Meanwhile
`p2c2r bench` runs verified echo tasks.  Passes when the bench completes
every task correctly, the coordinator is still serving (stats), no sanitizer
report is in its log, and it exits 0 on SIGTERM.

Usage: test_chaos.py P2C2RD P2C2R CORPUS_DIR [SECONDS]
"""
import glob
import os
import random
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time


def main():
    p2c2rd, cli, corpus = sys.argv[1], sys.argv[2], sys.argv[3]
    seconds = float(sys.argv[4]) if len(sys.argv) > 4 else 8.0
    frames = [open(f, "rb").read() for f in sorted(glob.glob(os.path.join(corpus, "*")))]
    if not frames:
        print("test_chaos: no corpus in", corpus)
        return 1
    hello_r = open(os.path.join(corpus, "hello_renter"), "rb").read()
    hello_p = open(os.path.join(corpus, "hello_peer"), "rb").read()
    tmp = tempfile.mkdtemp(prefix="p2c2r-chaos-")
    ready, log_path = os.path.join(tmp, "ready"), os.path.join(tmp, "p2c2rd.log")
    log = open(log_path, "wb")
    d = subprocess.Popen([p2c2rd, "--listen", "127.0.0.1:0", "--ready-file", ready,
                          "--local-peers", "2", "--log-level", "error"],
                         stdout=log, stderr=subprocess.STDOUT)
    failures = []

    def fail(msg):
        failures.append(msg)
        print("test_chaos: FAIL:", msg, flush=True)

    try:
        deadline = time.time() + 30
        while not os.path.exists(ready) and time.time() < deadline and d.poll() is None:
            time.sleep(0.05)
        if not os.path.exists(ready):
            fail("p2c2rd did not become ready")
            return 1
        addr = open(ready).read().strip()
        host, port = addr.rsplit(":", 1)
        port = int(port)

        rng = random.Random(20261124)
        stop = time.time() + seconds
        count = [0]

        def mutate(b):
            b = bytearray(b)
            for _ in range(rng.randint(0, 4)):
                if not b:
                    break
                i = rng.randrange(len(b))
                op = rng.randint(0, 3)
                if op == 0:
                    b[i] = rng.randrange(256)
                elif op == 1:
                    del b[i:i + rng.randint(1, 8)]
                elif op == 2:
                    b[i:i] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
                else:
                    b[i] ^= 1 << rng.randrange(8)
            return bytes(b)

        def chaos():
            while time.time() < stop:
                socks = []
                for _ in range(16):
                    try:
                        s = socket.create_connection((host, port), timeout=1)
                    except OSError:
                        continue
                    pre = rng.choice([hello_r, hello_p, b""])
                    data = pre + b"".join(mutate(rng.choice(frames)) for _ in range(rng.randint(1, 6)))
                    try:
                        s.sendall(data)
                    except OSError:
                        pass
                    socks.append(s)
                    count[0] += 1
                time.sleep(0.05)
                for s in socks:
                    try:
                        s.settimeout(0.02)
                        s.recv(65536)
                    except OSError:
                        pass
                    if rng.random() < 0.5:
                        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    s.close()

        t = threading.Thread(target=chaos)
        t.start()
        bench = subprocess.run([cli, "bench", "--coordinator", addr, "--tasks", "3000",
                                "--inflight", "16", "--size", "1000", "--timeout", "60000", "--json"],
                               capture_output=True, text=True, timeout=240)
        t.join()
        print("test_chaos: %d chaos connections in %.0f s" % (count[0], seconds), flush=True)
        print("test_chaos: bench:", bench.stdout.strip(), bench.stderr.strip(), flush=True)
        if bench.returncode != 0 or '"completed":3000' not in bench.stdout:
            fail("the well-behaved renter did not complete all 3000 tasks correctly")
        st = subprocess.run([cli, "stats", "--coordinator", addr, "--json"], capture_output=True,
                            text=True, timeout=30)
        if st.returncode != 0 or '"peers_connected":2' not in st.stdout:
            fail("coordinator not serving with its 2 peers after the chaos: " + st.stdout + st.stderr)
        if count[0] < 50:
            fail("too few chaos connections were made (%d)" % count[0])
    finally:
        if d.poll() is None:
            d.send_signal(signal.SIGTERM)
            try:
                rc = d.wait(timeout=30)
            except subprocess.TimeoutExpired:
                d.kill()
                rc = d.wait()
            if rc != 0:
                fail("p2c2rd exited with %d after SIGTERM" % rc)
        else:
            fail("p2c2rd died during the test with %d" % d.returncode)
        log.close()
        text = open(log_path, "rb").read().decode("utf-8", "replace")
        if "AddressSanitizer" in text or "runtime error" in text or "LeakSanitizer" in text:
            fail("sanitizer report in the coordinator's log")
        if failures:
            print("======== p2c2rd log (last 60 lines) ========")
            print("\n".join(text.splitlines()[-60:]))
    if failures:
        print("test_chaos: FAILED")
        return 1
    print("test_chaos: passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
