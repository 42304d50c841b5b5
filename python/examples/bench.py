"""Measure what the Python bindings cost over the C library: round trips and
throughput of 64-byte echo tasks through the blocking and the asyncio
client, next to `p2c2r bench` (C) on the same coordinator.

    make run &                                        # or any coordinator
    python3 python/examples/bench.py --tasks 100000 --inflight 256
    build/p2c2r bench --tasks 100000 --inflight 256   # the same work from C

Reports, for each face: tasks per second with --inflight tasks in flight,
and the median and p99 round trip of one task at a time (--latency-tasks of
them).  Tasks are NOCACHE, so every one runs on a peer.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from typing import List

try:
    import p2c2r
except ImportError:  # not installed: the package of this checkout (and its build/ library)
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src"))
    import p2c2r

ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
ap.add_argument("--coordinator", "-c", default=os.environ.get("P2C2R_COORDINATOR", "127.0.0.1:8765"))
ap.add_argument("--tasks", type=int, default=100000, help="tasks of the throughput runs")
ap.add_argument("--inflight", type=int, default=256, help="tasks in flight in the throughput runs")
ap.add_argument("--latency-tasks", type=int, default=2000, help="tasks of the round-trip runs")
ap.add_argument("--size", type=int, default=64, help="input bytes of each echo task")
args = ap.parse_args()
payload = os.urandom(args.size)


def report(name: str, n: int, seconds: float) -> None:
    print(f"{name:<28} {n / seconds:12,.0f} tasks/s   ({n} tasks in {seconds:.3f} s)")


def report_rtt(name: str, rtts: List[float]) -> None:
    rtts.sort()
    p99 = rtts[min(len(rtts) - 1, int(len(rtts) * 0.99))]
    print(f"{name:<28} p50 {statistics.median(rtts) * 1e6:8.1f} us   p99 {p99 * 1e6:8.1f} us")


def blocking() -> None:
    with p2c2r.Client(args.coordinator, name="bench.py") as c:
        c.run("echo", payload, nocache=True)  # warm up
        rtts = []
        for _ in range(args.latency_tasks):
            t0 = time.perf_counter()
            c.run("echo", payload, nocache=True)
            rtts.append(time.perf_counter() - t0)
        report_rtt("blocking run(), 1 in flight", rtts)
        t0 = time.perf_counter()
        sent = done = 0
        while done < args.tasks:
            n = min(args.inflight - (sent - done), args.tasks - sent)
            if n > 0:
                c.submit_batch([p2c2r.Task("echo", payload, nocache=True)] * n)
                sent += n
            for r in c.poll(256, None):
                if r.status != 0:
                    raise r.error  # type: ignore[misc]
                done += 1
        report(f"blocking, {args.inflight} in flight", args.tasks, time.perf_counter() - t0)


async def aio() -> None:
    async with await p2c2r.AsyncClient.connect(args.coordinator, name="bench.py") as c:
        await c.run("echo", payload, nocache=True)
        rtts = []
        for _ in range(args.latency_tasks):
            t0 = time.perf_counter()
            await c.run("echo", payload, nocache=True)
            rtts.append(time.perf_counter() - t0)
        report_rtt("asyncio run(), 1 in flight", rtts)
        window = asyncio.Semaphore(args.inflight)

        async def one() -> None:
            async with window:
                await c.run("echo", payload, nocache=True)
        t0 = time.perf_counter()
        await asyncio.gather(*(one() for _ in range(args.tasks)))
        report(f"asyncio, {args.inflight} in flight", args.tasks, time.perf_counter() - t0)


blocking()
asyncio.run(aio())
