"""The blocking Client against a real coordinator with 2 local peers."""
from __future__ import annotations

import hashlib
import os
import random
import signal
import time

import pytest

import p2c2r
from p2c2r import errors
from conftest import DEMO_SCENE, Network, slow_raytrace


def test_run_returns_exact_bytes(coord: str) -> None:
    with p2c2r.Client(coord, name="py-test") as c:
        for n in (0, 1, 4095, 4096, 70000, 1 << 20):
            data = random.Random(n).randbytes(n)
            assert c.run("echo", data) == data
            assert c.run("sha256", data, nocache=True) == hashlib.sha256(data).digest()
        assert c.run("sha256", b"abc", params={"format": "hex"}) == \
            b"ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        # bytearray and memoryview inputs, str params
        assert c.run("echo", bytearray(b"\0\1\2")) == b"\0\1\2"
        assert c.run("echo", memoryview(b"xyz")[1:]) == b"yz"
        assert c.run("sha256", b"abc", params="format=hex\n").startswith(b"ba78")
        assert c.pending == 0


def test_many_in_flight_each_one_outcome(coord: str) -> None:
    with p2c2r.Client(coord) as c:
        inputs = {c.submit("echo", b"task %d" % i, user=i): i for i in range(500)}
        assert c.pending == 500
        seen = {}
        # Collect half by ticket, in reverse order, the rest by poll.
        tickets = list(inputs)
        for t in reversed(tickets[250:]):
            r = c.wait(t, 30)
            assert r.ok and r.output == b"task %d" % inputs[t] and r.user == inputs[t]
            seen[t] = r
        end = time.monotonic() + 30
        while len(seen) < 500 and time.monotonic() < end:
            for r in c.poll(64, 1.0):
                assert r.ticket not in seen, "a second outcome for one ticket"
                assert r.output == b"task %d" % inputs[r.ticket] and r.user == inputs[r.ticket]
                seen[r.ticket] = r
        assert len(seen) == 500
        assert c.poll(64, 0.2) == []
        assert c.pending == 0
        with pytest.raises(errors.ENOTFOUND):
            c.wait(tickets[0], 0)


def test_batch_in_order(coord: str) -> None:
    with p2c2r.Client(coord) as c:
        tasks = [p2c2r.Task("sha256", b"%d" % i, params={"format": "hex"}, user=i) for i in range(100)]
        tasks.append(p2c2r.Task("no-such-type", b""))
        res = c.run_batch(tasks, timeout=60)
        assert len(res) == 101
        for i, r in enumerate(res[:100]):
            assert r.user == i and r.value() == hashlib.sha256(b"%d" % i).hexdigest().encode()
        assert not res[100].ok and res[100].error is not None and res[100].error.name == "EUNSUPPORTED"
        with pytest.raises(errors.EINVAL):
            c.submit_batch([])


def test_run_batch_leaves_other_tasks_alone(coord: str) -> None:
    scene, params = slow_raytrace(DEMO_SCENE)
    with p2c2r.Client(coord) as c:
        other = c.submit("echo", b"not part of the batch")
        res = c.run_batch([p2c2r.Task("echo", b"%d" % i) for i in range(50)], timeout=60)
        assert [r.value() for r in res] == [b"%d" % i for i in range(50)]
        assert c.wait(other, 30).value() == b"not part of the batch"
        # A batch that times out cancels what is left and leaves nothing pending.
        other = c.submit("echo", b"still mine")
        with pytest.raises(errors.ETIMEDOUT):
            c.run_batch([p2c2r.Task("raytrace", scene, params=params, nocache=True, user=i)
                         for i in range(3)], timeout=0.2)
        assert c.wait(other, 30).value() == b"still mine"
        assert c.pending == 0


def test_task_errors_carry_the_name(coord: str) -> None:
    with p2c2r.Client(coord) as c:
        with pytest.raises(errors.EUNSUPPORTED) as e:
            c.run("no-such-type", b"x")
        assert e.value.name == "EUNSUPPORTED" and e.value.code == -10
        assert "no-such-type" in e.value.detail and isinstance(e.value, p2c2r.P2C2RError)
        assert "EUNSUPPORTED" in str(e.value)
        # The executor refuses its params: sha256 knows only raw and hex.
        with pytest.raises(errors.EINVAL) as e2:
            c.run("sha256", b"x", params={"format": "base64"})
        assert "format" in e2.value.detail
        # A raytrace of a scene that is not JSON: the executor's reason.
        with pytest.raises(p2c2r.P2C2RError) as e3:
            c.run("raytrace", b"{not json")
        assert e3.value.name == "EINVAL" and e3.value.ticket is not None
        # A blob that was never uploaded.
        with pytest.raises(p2c2r.P2C2RError) as e4:
            c.run("echo", b"x", blobs=[bytes(32)])
        assert e4.value.name in ("ENOBLOB", "EINVAL"), e4.value
        # The client still works after all of that.
        assert c.run("echo", b"ok") == b"ok"


def test_bad_arguments_raise_einval_before_sending(coord: str) -> None:
    with p2c2r.Client(coord) as c:
        for bad in [dict(params={"a\nb": 1}), dict(params={"k": "v\n"}), dict(priority="urgent"),
                    dict(blobs=[b"short"]), dict(blobs=[bytes(32)] * 5), dict(min_cores=70000),
                    dict(deadline_ms=-1), dict(bogus=1)]:
            with pytest.raises(errors.EINVAL):
                c.submit("echo", b"", **bad)  # type: ignore[arg-type]
        with pytest.raises(ValueError):  # EINVAL is a ValueError too
            c.submit("x" * 33, b"")
        with pytest.raises(errors.EINVAL):
            c.submit("echo", "text is not bytes")  # type: ignore[arg-type]
        assert c.pending == 0


@pytest.mark.parametrize("addr,name", [("no-port", "EADDR"), ("127.0.0.1:99999", "EADDR"),
                                       ("", "EADDR")])
def test_bad_address(addr: str, name: str) -> None:
    with pytest.raises(p2c2r.P2C2RError) as e:
        p2c2r.Client(addr)
    assert e.value.name == name


def test_refused_and_silent(closed_port: str, silent_listener: str) -> None:
    with pytest.raises(errors.EIO):
        p2c2r.Client(closed_port, connect_timeout=5)
    t0 = time.monotonic()
    with pytest.raises(errors.ETIMEDOUT):
        p2c2r.Client(silent_listener, connect_timeout=0.3)
    assert time.monotonic() - t0 < 10  # a hang guard, not a speed assertion


def test_timeouts_and_cancel(coord: str) -> None:
    scene, params = slow_raytrace(DEMO_SCENE)
    with p2c2r.Client(coord) as c:
        t = c.submit("raytrace", scene, params=params, nocache=True)
        with pytest.raises(errors.ETIMEDOUT):
            c.wait(t, 0.05)  # the wait timed out; the task is still in flight
        assert c.pending == 1
        c.cancel(t)
        r = c.wait(t, 30)
        assert r.status == -12 and r.error is not None and r.error.name == "ECANCELLED"
        # run() with a timeout cancels its task and leaves nothing pending.
        with pytest.raises(errors.ETIMEDOUT):
            c.run("raytrace", scene, params=params, nocache=True, timeout=0.1)
        assert c.pending == 0
        # A deadline the coordinator enforces: refused at admission or timed out.
        with pytest.raises(p2c2r.P2C2RError) as e:
            c.run("raytrace", scene, params=params, nocache=True, deadline_ms=20, timeout=60)
        assert e.value.name in ("EDEADLINE", "ETIMEDOUT")
        with pytest.raises(errors.ENOTFOUND):
            c.cancel(p2c2r.Ticket(123456789))
        assert c.run("echo", b"after") == b"after"


class Interrupted(Exception):
    pass


def test_long_waits_let_signal_handlers_run(coord: str) -> None:
    """A wait without a timeout still lets Python run its signal handlers,
    so Ctrl-C interrupts it (here SIGALRM's handler raises)."""
    scene, params = slow_raytrace(DEMO_SCENE)

    def on_alarm(signum: int, frame: object) -> None:
        raise Interrupted()

    old = signal.signal(signal.SIGALRM, on_alarm)
    try:
        with p2c2r.Client(coord) as c:
            for collect in (lambda t: c.wait(t), lambda t: c.poll(8, None)):
                t = c.submit("raytrace", scene, params=params, nocache=True)
                signal.setitimer(signal.ITIMER_REAL, 0.3)
                with pytest.raises(Interrupted):
                    collect(t)
                # Interrupted while the task ran (seconds of work), not once
                # its result had been taken (and lost with the exception).
                assert c.pending == 1
                c.cancel(t)
                assert c.wait(t, 30).status in (0, -12)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def test_blobs_stats_pressure(coord: str) -> None:
    with p2c2r.Client(coord, name="py-stats") as c:
        data = os.urandom(100000)
        h = c.put_blob(data, timeout=30)
        assert h == hashlib.sha256(data).digest()
        assert p2c2r.blob_hex(h) == hashlib.sha256(data).hexdigest()
        assert c.put_blob(data) == h  # again: answered from the store
        # A task naming the uploaded blob is accepted.
        assert c.run("echo", b"with blob", blobs=[h]) == b"with blob"
        st = c.stats()
        assert st["peers_connected"] == 2 and st["counters"]["completed"] >= 1
        p = c.pressure()
        assert p.max_inflight == c.max_inflight > 0 and p.inflight == 0
        assert c.pressure("echo").inflight == 0
        assert c.state == 2


def test_closed_client_raises_estate(coord: str) -> None:
    c = p2c2r.Client(coord)
    c.close()
    c.close()  # idempotent
    with pytest.raises(errors.ESTATE):
        c.submit("echo", b"x")
    assert c.state == 0 and c.pending == 0


def test_token_refused(net: Network, tmp_path: "os.PathLike[str]") -> None:
    tokens = os.path.join(str(tmp_path), "tokens")
    with open(tokens, "w") as f:
        f.write("renter:good-token\npeer:peer-token\n")
    addr = net.start_coord("--tokens", tokens, "--local-token", "peer-token")
    with pytest.raises(errors.EAUTH):
        p2c2r.Client(addr, token="bad-token")
    with pytest.raises(errors.EAUTH):
        p2c2r.Client(addr)
    with p2c2r.Client(addr, token="good-token") as c:
        assert c.run("echo", b"in") == b"in"


def test_coordinator_gone_fails_every_task(net: Network) -> None:
    addr = net.start_coord()
    scene, params = slow_raytrace(DEMO_SCENE)
    c = p2c2r.Client(addr)
    tickets = [c.submit("raytrace", scene, params=params, nocache=True, user=i) for i in range(4)]
    c.flush(10)
    assert net.coord is not None
    net.coord.signal(9)
    got = {}
    end = time.monotonic() + 30
    while len(got) < 4 and time.monotonic() < end:
        for r in c.poll(8, 1.0):
            got[r.ticket] = r
    assert sorted(got) == sorted(tickets)
    assert all(r.error is not None and r.error.name in ("ECLOSED", "EIO") for r in got.values())
    with pytest.raises(p2c2r.P2C2RError) as e:
        c.submit("echo", b"x")
    assert e.value.name in ("ECLOSED", "EIO")
    c.close()


def test_local_fallback_runs_in_process_with_the_peers_bytes(net: Network) -> None:
    addr = net.start_coord()
    data = os.urandom(4096)
    with p2c2r.Client(addr, local_fallback=(0.05, 0.0)) as c:
        remote = c.run("sha256", data, nocache=True, timeout=20)
        assert net.coord is not None
        net.coord.signal(9)
        net.coord.stop()
        # The next task finds the coordinator gone and runs here instead.
        end = time.monotonic() + 20
        while True:
            t = c.submit("sha256", data, nocache=True)
            r = c.wait(t, 10)
            if r.local or time.monotonic() > end:
                break
        assert r.local and r.ok, r
        assert r.output == remote == hashlib.sha256(data).digest()
        assert r.peer_id == 0
