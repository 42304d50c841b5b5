"""The asyncio client: the library's descriptor driven by the event loop."""
from __future__ import annotations

import asyncio
import hashlib
import os
import time
from typing import Dict, List

import pytest

import p2c2r
from p2c2r import errors
from conftest import DEMO_SCENE, Network, slow_raytrace


def arun(coro):  # type: ignore[no-untyped-def]
    """Runs a coroutine on a fresh loop, bounded as a hang guard."""
    async def bounded():  # type: ignore[no-untyped-def]
        return await asyncio.wait_for(coro, 120)
    return asyncio.run(bounded())


def test_gather_many_beyond_max_inflight(net: Network) -> None:
    # A small in-flight limit, so most runs wait in the client's queue.
    addr = net.start_coord("--max-inflight", "16")

    async def main() -> None:
        async with await p2c2r.AsyncClient.connect(addr, name="py-async") as c:
            assert c.max_inflight == 16
            n = 600
            outs = await asyncio.gather(*(c.run("echo", b"async %d" % i) for i in range(n)))
            assert outs == [b"async %d" % i for i in range(n)]
            # Futures per task, with their metadata.
            futs = [c.submit("sha256", b"%d" % i, params={"format": "hex"}, user=i) for i in range(50)]
            res = await asyncio.gather(*futs)
            for i, r in enumerate(res):
                assert r.user == i and r.value() == hashlib.sha256(b"%d" % i).hexdigest().encode()
            assert c.pending == 0
    arun(main())


def test_one_bad_task_in_a_turns_batch(net: Network) -> None:
    """Tasks submitted in one turn go out as one batch, which is all or
    nothing in the library: a task over the coordinator's frame limit gets
    its own ETOOBIG and the others still run."""
    addr = net.start_coord("--max-frame", "65536")

    async def main() -> None:
        async with await p2c2r.AsyncClient.connect(addr) as c:
            sizes = [10, 20, 100000, 30, 100000, 40]
            futs = [c.submit("echo", bytes(n)) for n in sizes]
            res = await asyncio.gather(*futs, return_exceptions=True)
            for n, r in zip(sizes, res):
                if n == 100000:
                    assert isinstance(r, errors.ETOOBIG), r
                else:
                    assert isinstance(r, p2c2r.Result) and r.value() == bytes(n)
    arun(main())


def test_interleaved_with_other_coroutines(coord: str) -> None:
    ticks: List[float] = []

    async def ticker(stop: asyncio.Event) -> None:
        while not stop.is_set():
            ticks.append(time.monotonic())
            await asyncio.sleep(0.001)

    async def main() -> None:
        stop = asyncio.Event()
        t = asyncio.create_task(ticker(stop))
        async with await p2c2r.AsyncClient.connect(coord) as c:
            for round_ in range(20):
                outs = await asyncio.gather(*(c.run("echo", bytes([round_]) * k) for k in range(1, 40)))
                assert outs == [bytes([round_]) * k for k in range(1, 40)]
        stop.set()
        await t
    arun(main())
    assert len(ticks) > 1  # the loop kept running other coroutines meanwhile


def test_errors_through_futures(coord: str) -> None:
    async def main() -> None:
        async with await p2c2r.AsyncClient.connect(coord) as c:
            with pytest.raises(errors.EUNSUPPORTED) as e:
                await c.run("no-such-type", b"x")
            assert e.value.name == "EUNSUPPORTED"
            r = await c.submit("sha256", b"x", params={"format": "nope"})
            assert not r.ok and r.error is not None and r.error.name == "EINVAL"
            with pytest.raises(errors.EINVAL):
                c.submit("echo", b"", params={"bad\nkey": 1})
            assert await c.run("echo", b"fine") == b"fine"
    arun(main())


@pytest.mark.parametrize("which", ["closed", "silent", "bad"])
def test_connect_failures(which: str, closed_port: str, silent_listener: str) -> None:
    addr = {"closed": closed_port, "silent": silent_listener, "bad": "nowhere"}[which]
    want = {"closed": "EIO", "silent": "ETIMEDOUT", "bad": "EADDR"}[which]

    async def main() -> None:
        with pytest.raises(p2c2r.P2C2RError) as e:
            await p2c2r.AsyncClient.connect(addr, connect_timeout=0.3)
        assert e.value.name == want
    arun(main())


def test_failed_connects_leak_nothing(closed_port: str) -> None:
    async def main() -> None:
        before = len(os.listdir("/proc/self/fd"))
        for addr in ["nowhere", closed_port] * 25:
            with pytest.raises(p2c2r.P2C2RError):
                await p2c2r.AsyncClient.connect(addr)
        assert len(os.listdir("/proc/self/fd")) == before
    arun(main())


def test_cancel_and_timeout(coord: str) -> None:
    scene, params = slow_raytrace(DEMO_SCENE)

    async def main() -> None:
        async with await p2c2r.AsyncClient.connect(coord) as c:
            # wait_for cancels the future, which cancels the task.
            cancelled = (await c.stats())["counters"]["cancelled"]
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(c.run("raytrace", scene, params=params, nocache=True), 0.1)
            end = time.monotonic() + 30
            while (await c.stats())["counters"]["cancelled"] == cancelled and time.monotonic() < end:
                await asyncio.sleep(0.02)
            assert (await c.stats())["counters"]["cancelled"] == cancelled + 1
            # cancel() keeps the future and resolves it with ECANCELLED.
            f = c.submit("raytrace", scene, params=params, nocache=True)
            await asyncio.sleep(0.05)
            c.cancel(f)
            r = await f
            assert r.error is not None and r.error.name == "ECANCELLED"
            # The abandoned task's result arrives and is dropped.
            end = time.monotonic() + 30
            while c.pending and time.monotonic() < end:
                await asyncio.sleep(0.02)
            assert c.pending == 0
            assert await c.run("echo", b"still fine") == b"still fine"
    arun(main())


def test_blob_and_stats(coord: str) -> None:
    async def main() -> None:
        async with await p2c2r.AsyncClient.connect(coord) as c:
            h = await c.put_blob(b"blob bytes")
            assert h == hashlib.sha256(b"blob bytes").digest()
            assert await c.run("echo", b"b", blobs=[h]) == b"b"
            st = await c.stats()
            assert st["peers_connected"] == 2
    arun(main())


def test_coordinator_killed_then_back(net: Network) -> None:
    """Tasks in flight when the coordinator dies fail (no hang); with
    reconnect the client comes back when a coordinator listens again on the
    same port, which needs the descriptor's registration renewed."""
    addr = net.start_coord()
    scene, params = slow_raytrace(DEMO_SCENE)

    async def main() -> None:
        c = await p2c2r.AsyncClient.connect(addr, reconnect=(0.05, 0.2))
        try:
            futs = [c.submit("raytrace", scene, params=params, nocache=True) for _ in range(3)]
            await asyncio.sleep(0.2)
            assert net.coord is not None
            net.coord.signal(9)
            net.coord.p.wait(10)
            res = await asyncio.gather(*futs)
            assert all(r.error is not None and r.error.name in ("ECLOSED", "EIO") for r in res)
            net.start_coord(listen=addr)
            outs: Dict[int, bytes] = {}
            end = time.monotonic() + 30
            while time.monotonic() < end and not outs:
                try:
                    outs[0] = await c.run("echo", b"back")
                except p2c2r.P2C2RError as e:
                    assert e.name in ("EAGAIN", "ECLOSED", "EIO", "EUNSUPPORTED"), e
                    await asyncio.sleep(0.05)
            assert outs == {0: b"back"}
        finally:
            c.close()
    arun(main())


def test_close_fails_pending(coord: str) -> None:
    scene, params = slow_raytrace(DEMO_SCENE)

    async def main() -> None:
        c = await p2c2r.AsyncClient.connect(coord)
        f = c.submit("raytrace", scene, params=params, nocache=True)
        c.close()
        with pytest.raises(errors.ECLOSED):
            await f
        with pytest.raises(errors.ESTATE):
            c.submit("echo", b"")
    arun(main())
