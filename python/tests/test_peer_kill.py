"""A peer killed mid-run: its tasks are retried on the others and every task
gets exactly one outcome, correct, through both clients.

Three p2c2r-peer processes serve a coordinator without local peers.  When a
third of the results are in, one peer is frozen (SIGSTOP) until the
coordinator shows tasks assigned to it, then killed (SIGKILL): those tasks
were on it when it died, so they can only finish if the coordinator retries
them elsewhere (hedging is off, so no copy started while it was frozen
wins first)."""
from __future__ import annotations

import asyncio
import hashlib
import random
import signal
import threading
import time
from typing import Dict, List

import p2c2r
from conftest import Network

N_TASKS = 300
WINDOW = 32


def inputs() -> List[bytes]:
    rng = random.Random(14)
    return [rng.randbytes(rng.randrange(1, 256 << 10)) for _ in range(N_TASKS)]


def start(net: Network) -> None:
    # No hedging: the frozen peer keeps what it holds until it is killed
    # (else a copy hedged to another peer may win first, and its own copy
    # is dropped), so the kill is what sends its tasks elsewhere.
    net.start_coord("--no-hedge", local_peers=0)
    for i in range(3):
        net.start_peer(f"peer-{i + 1}", 2)
    net.wait_peers(3)


def kill_with_tasks(net: Network, name: str) -> int:
    """Freezes peer name until the coordinator shows tasks on it, then kills
    it; returns how many it held."""
    victim = next(p for p in net.procs if p.name == name)
    victim.signal(signal.SIGSTOP)
    held = 0
    end = time.monotonic() + 20
    while time.monotonic() < end:
        st = net.peer(name)
        held = int(st.get("inflight", 0)) if st else 0
        if held > 0:
            break
        time.sleep(0.01)
    victim.signal(signal.SIGKILL)
    victim.p.wait(10)
    return held


def check(net: Network, data: List[bytes], outcomes: Dict[int, p2c2r.Result], held: int) -> None:
    assert held > 0, "the frozen peer never held a task"
    assert sorted(outcomes) == list(range(N_TASKS)), "a task without an outcome"
    bad = [(i, r.error) for i, r in outcomes.items() if not r.ok]
    assert not bad, f"failed tasks: {bad[:5]}"
    for i, r in outcomes.items():
        assert r.output == hashlib.sha256(data[i]).digest(), f"task {i}: wrong digest"
    st = net.stats()
    c = st["counters"]
    # The tasks the frozen peer held ran again elsewhere when it died.
    assert c["requeued"] + c["retries"] >= 1, repr(c)
    assert c["lost"] == 0 and st["peers_connected"] == 2


def test_peer_killed_blocking(net: Network) -> None:
    start(net)
    data = inputs()
    with p2c2r.Client(net.addr) as cl:
        outcomes: Dict[int, p2c2r.Result] = {}
        sent = 0
        held: List[int] = []
        killer = threading.Thread(target=lambda: held.append(kill_with_tasks(net, "peer-2")))
        end = time.monotonic() + 120
        while len(outcomes) < N_TASKS and time.monotonic() < end:
            # A window of tasks in flight, so work remains when the peer dies.
            n = min(WINDOW - cl.pending, N_TASKS - sent)
            if n > 0:
                cl.submit_batch([p2c2r.Task("sha256", data[i], user=i) for i in range(sent, sent + n)])
                sent += n
            for r in cl.poll(64, 1.0):
                assert r.user not in outcomes, f"a second outcome for task {r.user}"
                outcomes[r.user] = r
            if not killer.is_alive() and not held and len(outcomes) >= N_TASKS // 3:
                # Freezing and killing take a while: in a thread, while this
                # one keeps the window full (so tasks reach the frozen peer).
                killer.start()
        assert killer.ident is not None, f"only {len(outcomes)} outcomes: the kill never started"
        killer.join()
        assert held, "the killer thread failed"
        assert cl.poll(64, 0.3) == []  # and nothing more arrives
        assert cl.pending == 0
    check(net, data, outcomes, held[0])


def test_peer_killed_asyncio(net: Network) -> None:
    start(net)
    data = inputs()

    async def main() -> None:
        async with await p2c2r.AsyncClient.connect(net.addr) as cl:
            outcomes: Dict[int, p2c2r.Result] = {}
            window = asyncio.Semaphore(WINDOW)

            async def one(i: int) -> None:
                async with window:
                    r = await cl.submit("sha256", data[i], user=i)
                assert i not in outcomes
                outcomes[i] = r

            tasks = [asyncio.ensure_future(one(i)) for i in range(N_TASKS)]
            while len(outcomes) < N_TASKS // 3:
                await asyncio.sleep(0.005)
            # Freezing and killing take a while: off the loop, which keeps collecting.
            held = await asyncio.get_running_loop().run_in_executor(None, kill_with_tasks, net, "peer-3")
            await asyncio.gather(*tasks)
            assert cl.pending == 0
            check(net, data, outcomes, held)

    asyncio.run(asyncio.wait_for(main(), 150))
