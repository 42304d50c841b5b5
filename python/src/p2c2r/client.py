"""The blocking client: one connection to a coordinator, many tasks in flight.

    with p2c2r.Client("127.0.0.1:8765") as c:
        print(c.run("sha256", b"abc", params={"format": "hex"}))

A :class:`Client` is used from one thread at a time (the library's rule);
distinct clients are independent.  Calls into the library release the GIL.
"""
from __future__ import annotations

import ctypes
import json
import time
from typing import Any, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

from . import _ffi
from ._task import (Data, Params, Pressure, PriorityLike, Priority, Result, Task, Ticket, c_results,
                    c_tasks, options, take_result, timeout_ms, _bytes)
from .errors import P2C2RError, error


class _Handle:
    """Owns a ``p2c2r_client *`` and its last-error text; shared by both
    clients."""

    _c: Optional[int]

    def __init__(self) -> None:
        self._c = None
        self.addr = ""
        self._lib = _ffi.lib()

    def _open(self, connect: Any, addr: str, o: _ffi.ClientOptions) -> None:
        """Makes the client with connect (p2c2r_client_connect or
        _connect_start) or raises its error."""
        c = ctypes.c_void_p()
        rc = connect(addr.encode(), ctypes.byref(o), ctypes.byref(c))
        if rc < 0:
            raise error(rc, f"connecting to {addr}")
        self._c = c.value
        self.addr = addr

    def _ptr(self) -> int:
        if self._c is None:
            raise error(-20, "the client is closed")
        return self._c

    def _last_error(self) -> str:
        return _ffi.text(self._lib.p2c2r_client_last_error(self._c)) if self._c else ""

    def _check(self, rc: int, last_error: bool = False) -> int:
        """Returns rc unless it is negative; then raises its error, with
        p2c2r_client_last_error's text when the connection has failed (the
        code is then the connection's) or when last_error is set (a blob
        refusal's reason)."""
        if rc < 0:
            failed = self._c is not None and self._lib.p2c2r_client_state(self._c) in (
                _ffi.STATE_BACKOFF, _ffi.STATE_FAILED)
            raise error(rc, self._last_error() if failed or last_error else "")
        return rc

    def _submit(self, spec: Task) -> Ticket:
        t = _ffi.sized(_ffi.Task)
        spec._fill(t)
        tk = _ffi.Ticket()
        self._check(self._lib.p2c2r_client_submit(self._ptr(), ctypes.byref(t), ctypes.byref(tk)))
        return Ticket(tk.id)

    def _submit_batch(self, tasks: Iterable[Task]) -> List[Ticket]:
        arr = c_tasks(tasks)
        tks = (_ffi.Ticket * len(arr))()
        self._check(self._lib.p2c2r_client_submit_batch(self._ptr(), arr, len(arr), tks))
        return [Ticket(t.id) for t in tks]

    def close(self) -> None:
        """Closes the connection and frees the client; results not yet
        collected are dropped.  Idempotent."""
        if self._c is not None:
            c, self._c = self._c, None
            self._lib.p2c2r_client_close(c)

    @property
    def state(self) -> int:
        """The connection state: 1 connecting, 2 ready, 3 backoff (waiting
        to reconnect), 4 failed (``enum p2c2r_state``); 0 once closed."""
        return int(self._lib.p2c2r_client_state(self._c)) if self._c else 0

    @property
    def pending(self) -> int:
        """Tasks submitted whose results have not been collected."""
        return int(self._lib.p2c2r_client_pending(self._c)) if self._c else 0

    @property
    def max_inflight(self) -> int:
        """Most tasks this client may have in flight (the coordinator's
        limit)."""
        return int(self._lib.p2c2r_client_max_inflight(self._c)) if self._c else 0

    @property
    def last_error(self) -> str:
        """Text of the last connection-level error or blob refusal ("" when
        none)."""
        return self._last_error()

    def pressure(self, type: Optional[str] = None) -> Pressure:
        """Backpressure figures of the connection, or of one task type."""
        p = _ffi.sized(_ffi.Pressure)
        if type is None:
            self._check(self._lib.p2c2r_client_pressure(self._ptr(), ctypes.byref(p)))
        else:
            self._check(self._lib.p2c2r_client_type_pressure(self._ptr(), type.encode(), ctypes.byref(p)))
        return Pressure._from_c(p)

    def trace_start(self, path: str) -> None:
        """Writes what every task submitted from now on goes through to path,
        as Chrome trace-event JSON (Perfetto, chrome://tracing)."""
        self._check(self._lib.p2c2r_client_trace_start(self._ptr(), path.encode()))

    def trace_stop(self) -> None:
        """Ends the trace started by :meth:`trace_start`."""
        self._check(self._lib.p2c2r_client_trace_stop(self._ptr()))

    def _stats(self, timeout: Optional[float]) -> Dict[str, Any]:
        out = ctypes.c_void_p()
        self._check(self._lib.p2c2r_client_stats(self._ptr(), timeout_ms(timeout), ctypes.byref(out)))
        if not out.value:
            raise error(-2, "no statistics returned")
        try:
            text = ctypes.string_at(out.value).decode("utf-8", "replace")
        finally:
            self._lib.p2c2r_stats_free(out)
        doc: Dict[str, Any] = json.loads(text)
        return doc


def _task(type: str, data: Optional[Data], params: Params, priority: PriorityLike,
          deadline_ms: int, kw: Dict[str, Any]) -> Task:
    try:
        return Task(type, data if data is not None else b"", params, priority, deadline_ms, **kw)
    except TypeError as e:
        raise error(-1, str(e)) from None


class Client(_Handle):
    """A blocking connection to a coordinator.

    Args:
        addr: ``"HOST:PORT"`` of the coordinator.
        token: the renter's credential (``p2c2rd --tokens``), if it needs one.
        name: shown in the coordinator's stats.
        connect_timeout: seconds for TCP connect and HELLO (default 5).
        max_result_bytes: larger results fail the connection (0 = 16 MiB).
        reconnect: ``(first_delay, max_delay)`` in seconds to reconnect by
            itself when the connection is lost (tasks in flight then fail
            with the connection's error); None = a lost connection fails the
            client for good.
        local_fallback: ``(budget, frame)`` in seconds: while the
            coordinator is unreachable, or when it refuses a task it cannot
            run in time (EDEADLINE), at all (EUNSUPPORTED) or now
            (EQUEUEFULL), run tasks of the built-in types in
            this process, spending at most ``budget`` of CPU per ``frame``
            (0 = 1/60 s); their results have :attr:`Result.local` set and
            the bytes a peer would return.  None = off.
        tls_ca: a PEM file of the CAs the coordinator's certificate chains
            to: connect with TLS 1.3 (required by ``p2c2rd --tls-cert``).
        tls_name: the name the certificate must carry (default: the host
            of ``addr``).

    Raises:
        P2C2RError: ``EADDR`` (malformed or unresolvable address), ``EIO``
            (refused), ``ETIMEDOUT``, ``EAUTH`` (bad token), ``EVERSION``,
            ``ELIMIT``, ``ESHUTDOWN``, ``EINVAL``.
        OSError: libp2c2r cannot be found (see :mod:`p2c2r._ffi`).

    A client is a context manager; :meth:`close` it otherwise.
    """

    def __init__(self, addr: str, *, token: Optional[str] = None, name: Optional[str] = None,
                 connect_timeout: Optional[float] = None, max_result_bytes: int = 0,
                 reconnect: Optional[Tuple[float, float]] = None,
                 local_fallback: Optional[Tuple[float, float]] = None,
                 tls_ca: Optional[str] = None, tls_name: Optional[str] = None) -> None:
        super().__init__()
        self._open(self._lib.p2c2r_client_connect, addr,
                   options(token, name, connect_timeout, max_result_bytes, reconnect,
                           local_fallback, tls_ca, tls_name))

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass

    def submit(self, type: str, data: Optional[Data] = b"", *, params: Params = None,
               priority: PriorityLike = Priority.INTERACTIVE, deadline_ms: int = 0,
               **kw: Any) -> Ticket:
        """Queues one task without blocking and returns its ticket.

        Args:
            type: the task type (``"echo"``, ``"sha256"``, ``"raytrace"``, ...).
            data: its input bytes.
            params: ``key=value`` parameters: a dict, or the lines as text.
            priority: a :class:`Priority` or its name.
            deadline_ms: 0 = the coordinator's default.
            **kw: any other :class:`Task` field (``blobs``, ``nocache``,
                ``min_version``, ``need_gpu``, ``min_cores``,
                ``min_mem_bytes``, ``user``).

        Raises ``EAGAIN`` when the client already has as many tasks in
        flight as the coordinator allows (collect results first), ``EINVAL``
        for a bad argument, or the connection's error.
        """
        return self._submit(_task(type, data, params, priority, deadline_ms, kw))

    def submit_batch(self, tasks: Iterable[Task]) -> List[Ticket]:
        """Queues many tasks as one batch (all or nothing) and returns their
        tickets in order."""
        return self._submit_batch(tasks)

    def wait(self, ticket: Ticket, timeout: Optional[float] = None) -> Result:
        """Waits up to timeout seconds (None = forever) for a task's
        :class:`Result`.  A failed task is a result with its status (it does
        not raise: see :meth:`Result.value`).

        Raises ``ETIMEDOUT`` when the timeout passes (the task stays in
        flight: wait again or cancel it), ``ENOTFOUND`` for an unknown or
        collected ticket.

        Long waits are made of slices of at most 0.2 s, between which Python
        runs its signal handlers, so Ctrl-C (KeyboardInterrupt) interrupts
        them; a result still returns as soon as it arrives."""
        r = _ffi.sized(_ffi.Result)
        tk = _ffi.Ticket(int(ticket))
        for ms in _slices(timeout):
            rc = self._lib.p2c2r_client_wait(self._ptr(), tk, ms, ctypes.byref(r))
            if rc != -5:  # anything but ETIMEDOUT ends the wait
                self._check(rc)
                return take_result(r)
        raise error(-5, f"no result for ticket {int(ticket)} within {timeout} s")

    def poll(self, max: int = 64, timeout: Optional[float] = 0) -> List[Result]:
        """Collects up to max finished results in completion order, waiting up
        to timeout seconds (0 = don't block, None = forever) for the first.
        Also sends what was submitted.  A failed connection is not raised
        here: its outstanding tasks come back as results carrying the
        failure.  Long waits are sliced as :meth:`wait`'s."""
        if max < 1:
            raise error(-1, "poll needs max >= 1")
        arr = c_results(max)
        for ms in _slices(timeout):
            n = self._check(self._lib.p2c2r_client_poll(self._ptr(), arr, max, ms))
            if n:
                return [take_result(arr[i]) for i in range(n)]
        return []

    def cancel(self, ticket: Ticket) -> None:
        """Asks the coordinator to cancel a task.  Its result (``ECANCELLED``,
        or the real one if it finished first) still arrives.  Raises
        ``ENOTFOUND`` for an unknown or already collected ticket."""
        self._check(self._lib.p2c2r_client_cancel(self._ptr(), _ffi.Ticket(int(ticket))))

    def run(self, type: str, data: Optional[Data] = b"", *, params: Params = None,
            priority: PriorityLike = Priority.INTERACTIVE, deadline_ms: int = 0,
            timeout: Optional[float] = None, **kw: Any) -> bytes:
        """Submits a task, waits for it and returns its output.

        Raises the task's error (``ETASK`` with the executor's reason,
        ``EUNSUPPORTED`` when no peer runs the type, ``ETIMEDOUT``,
        ``EDEADLINE``, ``EQUEUEFULL``, ...), and ``ETIMEDOUT`` when timeout
        seconds pass first (the task is then cancelled)."""
        t = self.submit(type, data, params=params, priority=priority, deadline_ms=deadline_ms, **kw)
        try:
            r = self.wait(t, timeout)
        except P2C2RError as e:
            if e.name == "ETIMEDOUT":
                self._abandon([t])
            raise
        return r.value()

    def run_batch(self, tasks: Sequence[Task], timeout: Optional[float] = None) -> List[Result]:
        """Submits tasks as one batch and returns their results in the same
        order (failed tasks included: check :attr:`Result.ok` or call
        :meth:`Result.value`).  Raises ``ETIMEDOUT`` when timeout seconds
        pass before all are in (the rest are cancelled).  Collects only
        these tasks' results: other tasks in flight on the client are left
        for their own ``wait`` or ``poll``."""
        tickets = self.submit_batch(tasks)
        limit = None if timeout is None else _now() + timeout
        out: List[Result] = []
        for i, t in enumerate(tickets):
            try:
                out.append(self.wait(t, None if limit is None else max(0.0, limit - _now())))
            except P2C2RError as e:
                self._abandon(tickets[i:])
                if e.name == "ETIMEDOUT":
                    raise error(-5, f"{len(tickets) - i} of {len(tickets)} results missing after {timeout} s")
                raise
        return out

    def _abandon(self, tickets: Sequence[Ticket]) -> None:
        """Cancels tasks whose results nobody will collect and collects them
        as they come (a few seconds at most), so they do not stay
        pending."""
        for t in tickets:
            try:
                self.cancel(t)
            except P2C2RError:
                pass
        limit = _now() + 5.0
        for t in tickets:
            try:
                self.wait(t, max(0.0, limit - _now()))
            except P2C2RError:
                pass

    def flush(self, timeout: Optional[float] = None) -> None:
        """Blocks until everything queued is written (``ETIMEDOUT`` after
        timeout seconds)."""
        self._check(self._lib.p2c2r_client_flush(self._ptr(), timeout_ms(timeout)))

    def put_blob(self, data: Data, timeout: Optional[float] = None) -> bytes:
        """Uploads a blob (bytes many tasks share: a map, a mesh) and returns
        its 32-byte SHA-256, which tasks name in ``blobs=`` and executors find
        by its hex form in their params (:func:`p2c2r.blob_hex`)."""
        b = _bytes(data, "blob data")
        h = (ctypes.c_uint8 * 32)()
        self._check(self._lib.p2c2r_client_put_blob(self._ptr(), b, len(b), timeout_ms(timeout),
                                                    ctypes.byref(h)), last_error=True)
        return bytes(h)

    def stats(self, timeout: Optional[float] = 5.0) -> Dict[str, Any]:
        """The coordinator's statistics (counters, task types, peers), parsed
        from its STATS JSON."""
        return self._stats(timeout)


def _now() -> float:
    return time.monotonic()


_SLICE_MS = 200


def _slices(timeout: Optional[float]) -> Iterator[int]:
    """The library timeouts (ms) a wait of timeout seconds (None = forever)
    is made of: at most _SLICE_MS each, the first one even when timeout is
    0, so that Python can run signal handlers in between."""
    total = timeout_ms(timeout)
    if total >= 0 and total <= _SLICE_MS:
        yield total
        return
    end = None if total < 0 else _now() + total / 1000.0
    while True:
        if end is None:
            yield _SLICE_MS
            continue
        left = int((end - _now()) * 1000)
        if left <= 0:
            return
        yield min(left, _SLICE_MS)


__all__ = ["Client"]
