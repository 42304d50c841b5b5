"""The asyncio client: the library's descriptor driven by the event loop.

    async with await p2c2r.AsyncClient.connect("127.0.0.1:8765") as c:
        outs = await asyncio.gather(*(c.run("echo", b"%d" % i) for i in range(1000)))

How it works: libp2c2r's non-blocking face (``p2c2r_client_connect_start``,
``p2c2r_client_fd``, ``p2c2r_client_want_write``, ``p2c2r_client_process``,
``p2c2r_client_poll``, ``p2c2r_client_timeout_ms``) is driven from the loop:
the client's descriptor is watched through ``loop.add_reader`` for reading
(and for writing while the library has output queued or a connect in
progress), and a ``loop.call_later`` timer fires when the library needs a
call although the descriptor stays quiet (a connect timing out, a reconnect
due).  Every readiness runs ``process`` and then collects every finished
result with ``poll(..., 0)``, resolving each task's future.  No thread is
started; the library is only called from the loop's thread.

Tasks submitted in one turn of the loop go out at its end, together, as one
``p2c2r_client_submit_batch`` (one frame, one write).  Tasks beyond the
coordinator's in-flight limit (``max_inflight``) wait in this client, in
submission order, and go out as results free their places, so any number of
``run`` calls may be pending at once.

The loop does not watch the library's descriptor itself but an epoll
descriptor of this client's that holds it.  When the library replaces the
socket under its descriptor number (a lost connection parks an eventfd there;
a reconnect puts a new socket there), epoll, which keys its interest list by
the open file and not by the number, silently stops reporting it; asyncio's
selector cannot drop a registration whose file is gone, so the client renews
the inner registration itself on every change of state, and the loop's
registration (of the inner epoll) stays valid.
"""
from __future__ import annotations

import asyncio
import collections
import ctypes
import itertools
import select
from typing import Any, Callable, Deque, Dict, Iterable, List, Optional, Tuple, Union

from . import _ffi
from ._task import (Data, Params, Priority, PriorityLike, Result, Task, Ticket, c_results, options,
                    take_result, _bytes)
from .client import _Handle, _task
from .errors import P2C2RError, error

_POLL_BATCH = 64

#: A queued start: returns the ticket, or raises EAGAIN to stay queued.
_Start = Callable[[], Ticket]
#: What waits in the backlog: a task (its filled C struct) or an upload.
_Item = Union[_ffi.Task, _Start]
_BATCH_MAX = 1024


class AsyncClient(_Handle):
    """An asyncio connection to a coordinator.  Create it with
    ``await AsyncClient.connect(addr, ...)`` (same keyword arguments as
    :class:`p2c2r.Client`); use it from the loop it was connected on.

    It is an async context manager; :meth:`close` it otherwise (pending
    futures then fail with ``ECLOSED``)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__()
        self._loop = loop
        self._fd = -1
        self._state = 0
        # The loop watches an epoll descriptor of our own, which holds the
        # library's descriptor: its open file never changes, so the loop's
        # registration stays valid whatever the library puts under its
        # number (see the module's docstring).
        self._ep = select.epoll()
        self._mask = 0
        self._loop.add_reader(self._ep.fileno(), self._on_io)
        self._timer: Optional[asyncio.TimerHandle] = None
        self._futs: Dict[int, "asyncio.Future[Result]"] = {}
        self._backlog: Deque[Tuple[_Item, "asyncio.Future[Result]"]] = collections.deque()
        self._pump_due = False
        self._ready: Optional["asyncio.Future[None]"] = None
        self._results = c_results(_POLL_BATCH)
        self._error = 0  # the connection's error once FAILED

    @classmethod
    async def connect(cls, addr: str, *, token: Optional[str] = None, name: Optional[str] = None,
                      connect_timeout: Optional[float] = None, max_result_bytes: int = 0,
                      reconnect: Optional[Tuple[float, float]] = None,
                      local_fallback: Optional[Tuple[float, float]] = None,
                      tls_ca: Optional[str] = None, tls_name: Optional[str] = None) -> "AsyncClient":
        """Connects without blocking the loop and returns once the HELLO
        exchange is done.  Raises as :class:`p2c2r.Client` does (``EIO``
        when refused, ``ETIMEDOUT`` after connect_timeout, ``EAUTH``, ...)."""
        self = cls(asyncio.get_running_loop())
        try:
            self._open(self._lib.p2c2r_client_connect_start, addr,
                       options(token, name, connect_timeout, max_result_bytes, reconnect,
                           local_fallback, tls_ca, tls_name))
        except BaseException:
            self.close()
            raise
        self._fd = self._lib.p2c2r_client_fd(self._c)
        self._ready = self._loop.create_future()
        self._rearm(force=True)
        self._on_io()
        try:
            await self._ready
        except BaseException:
            self.close()
            raise
        return self

    async def __aenter__(self) -> "AsyncClient":
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()

    # ---- driving ----------------------------------------------------------------------

    def _rearm(self, force: bool = False) -> None:
        """Watches the descriptor for reading (and writing while the library
        wants to write), renewing the registration when forced, and sets the
        timer to the library's next deadline."""
        if self._c is None or self._fd < 0:
            return
        want = bool(self._lib.p2c2r_client_want_write(self._c))
        mask = select.EPOLLIN | (select.EPOLLOUT if want else 0)
        if force or mask != self._mask:
            self._watch(mask, force)
        ms = self._lib.p2c2r_client_timeout_ms(self._c)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if ms >= 0:
            self._timer = self._loop.call_later(ms / 1000.0, self._on_io)

    def _watch(self, mask: int, renew: bool) -> None:
        """Sets the events the inner epoll watches on the library's
        descriptor.  Renewing drops the old registration first: after the
        library put another open file under the number, the old one is
        gone from the interest list (or refers to the old file)."""
        if renew:
            try:
                self._ep.unregister(self._fd)
            except OSError:
                pass
            self._ep.register(self._fd, mask)
        else:
            try:
                self._ep.modify(self._fd, mask)
            except FileNotFoundError:
                self._ep.register(self._fd, mask)
        self._mask = mask

    def _on_io(self) -> None:
        """The descriptor is ready or the timer fired: move the connection
        on, collect results, send what waits."""
        if self._c is None:
            return
        before = self._state
        try:
            self._ep.poll(0)  # empties the inner ready list; process finds out what is ready
        except OSError:
            pass
        rc = self._lib.p2c2r_client_process(self._c)
        self._state = self._lib.p2c2r_client_state(self._c)
        self._drain()
        if rc < 0 and self._ready is not None and not self._ready.done():
            self._ready.set_exception(error(rc, self._last_error() or f"connecting to {self.addr}"))
        if self._state == _ffi.STATE_READY:
            if self._ready is not None and not self._ready.done():
                self._ready.set_result(None)
            self._pump()
        elif self._state == _ffi.STATE_FAILED:
            self._error = rc if rc < 0 else (self._error or -4)
            self._fail_backlog(error(self._error, self._last_error()))
        self._rearm(force=rc < 0 or self._state != before)

    def _drain(self) -> None:
        """Collects every finished result and resolves its future."""
        c = self._c
        while c is not None:
            n = self._lib.p2c2r_client_poll(c, self._results, _POLL_BATCH, 0)
            for i in range(max(n, 0)):
                r = take_result(self._results[i])
                fut = self._futs.pop(int(r.ticket), None)
                if fut is not None and not fut.done():
                    fut.set_result(r)
            if n < _POLL_BATCH:
                break

    def _pump(self) -> None:
        """Starts queued tasks and uploads, in order, while the library takes
        them.  Consecutive tasks go out as one p2c2r_client_submit_batch (one
        frame, one write) up to the room the in-flight limit leaves."""
        while self._backlog and self._c is not None:
            item, fut = self._backlog[0]
            if fut.done():  # cancelled while it waited
                self._backlog.popleft()
                continue
            if not isinstance(item, _ffi.Task):
                if not self._start_one(item, fut):
                    return
                continue
            run = []
            room = self._room()
            for it, f in itertools.islice(self._backlog, 0, min(room, _BATCH_MAX)):
                if not isinstance(it, _ffi.Task):
                    break
                run.append((it, f))
            if not run:
                return  # the in-flight limit is reached: results will make room
            arr = (_ffi.Task * len(run))()
            for i, (it, _) in enumerate(run):
                arr[i] = it
            tks = (_ffi.Ticket * len(run))()
            rc = self._lib.p2c2r_client_submit_batch(self._c, arr, len(run), tks)
            if rc < 0:
                # A batch is all or nothing: the first task alone says
                # whether it can go (EAGAIN: wait) or why it fails.
                if not self._start_one(self._submit_one(item), fut):
                    return
                continue
            for i, (_, f) in enumerate(run):
                self._backlog.popleft()
                self._track(Ticket(tks[i].id), f)

    def _room(self) -> int:
        """Tasks the in-flight limit still admits."""
        p = _ffi.sized(_ffi.Pressure)
        if self._lib.p2c2r_client_pressure(self._c, ctypes.byref(p)) < 0:
            return 1
        return max(0, int(p.max_inflight) - int(p.inflight))

    def _submit_one(self, t: _ffi.Task) -> _Start:
        def start() -> Ticket:
            tk = _ffi.Ticket()
            self._check(self._lib.p2c2r_client_submit(self._ptr(), ctypes.byref(t), ctypes.byref(tk)))
            return Ticket(tk.id)
        return start

    def _start_one(self, start: _Start, fut: "asyncio.Future[Result]") -> bool:
        """Starts the backlog's first entry alone; False when the library
        cannot take it yet (EAGAIN)."""
        try:
            t = start()
        except P2C2RError as e:
            if e.name == "EAGAIN":
                return False
            self._backlog.popleft()
            fut.set_exception(e)
            return True
        self._backlog.popleft()
        self._track(t, fut)
        return True

    def _track(self, t: Ticket, fut: "asyncio.Future[Result]") -> None:
        self._futs[int(t)] = fut
        fut.add_done_callback(self._make_canceller(t))

    def _pump_soon(self) -> None:
        self._pump_due = False
        if self._c is not None and self._state == _ffi.STATE_READY:
            self._pump()
            self._rearm()

    def _fail_backlog(self, e: P2C2RError) -> None:
        while self._backlog:
            _, fut = self._backlog.popleft()
            if not fut.done():
                fut.set_exception(error(e.code, e.detail))

    def _make_canceller(self, t: Ticket) -> Callable[["asyncio.Future[Result]"], None]:
        def on_done(fut: "asyncio.Future[Result]") -> None:
            # A future cancelled by its awaiter: cancel the task too; its
            # result is dropped when it comes.
            if fut.cancelled() and self._c is not None and self._futs.get(int(t)) is fut:
                self._lib.p2c2r_client_cancel(self._c, _ffi.Ticket(int(t)))
                self._rearm()
        return on_done

    def _start(self, item: "_Item") -> "asyncio.Future[Result]":
        """Queues one task (a filled C struct) or upload (a start function)
        and returns its future.  The queue goes out at the end of this turn
        of the loop, so the tasks submitted in one turn share a frame."""
        self._ptr()
        fut: "asyncio.Future[Result]" = self._loop.create_future()
        if self._error:
            fut.set_exception(error(self._error, self._last_error()))
            return fut
        self._backlog.append((item, fut))
        if not self._pump_due and self._state == _ffi.STATE_READY:
            self._pump_due = True
            self._loop.call_soon(self._pump_soon)
        return fut

    # ---- tasks -------------------------------------------------------------------------

    def submit(self, type: str, data: Optional[Data] = b"", *, params: Params = None,
               priority: PriorityLike = Priority.INTERACTIVE, deadline_ms: int = 0,
               **kw: Any) -> "asyncio.Future[Result]":
        """Submits a task and returns a future of its :class:`p2c2r.Result`
        (a failed task is a result with its status; :meth:`Result.value`
        raises it).  Arguments as :meth:`p2c2r.Client.submit`; a bad argument
        raises ``EINVAL`` here.  Cancelling the future cancels the task.
        Tasks beyond the in-flight limit, or submitted while the client
        waits to reconnect (``reconnect=``), wait in the client until they
        can go out: bound them with ``asyncio.wait_for``."""
        return self.submit_task(_task(type, data, params, priority, deadline_ms, kw))

    def submit_task(self, task: Task) -> "asyncio.Future[Result]":
        """:meth:`submit` for a :class:`p2c2r.Task`."""
        t = _ffi.sized(_ffi.Task)
        task._fill(t)  # argument errors are raised now, not through the future
        return self._start(t)

    def submit_batch(self, tasks: Iterable[Task]) -> List["asyncio.Future[Result]"]:
        """Submits many tasks and returns their futures in order."""
        return [self.submit_task(t) for t in tasks]

    async def run(self, type: str, data: Optional[Data] = b"", *, params: Params = None,
                  priority: PriorityLike = Priority.INTERACTIVE, deadline_ms: int = 0,
                  **kw: Any) -> bytes:
        """Runs a task and returns its output; raises its error (see
        :meth:`p2c2r.Client.run`).  Bound it with ``asyncio.wait_for``: a
        timed-out or cancelled run cancels its task."""
        r = await self.submit(type, data, params=params, priority=priority, deadline_ms=deadline_ms, **kw)
        return r.value()

    def cancel(self, fut: "asyncio.Future[Result]") -> None:
        """Asks the coordinator to cancel a submitted task; its future still
        resolves, with an ``ECANCELLED`` result or the real one if it
        finished first.  A task still waiting in this client is resolved as
        ``ECANCELLED`` at once."""
        for i, (_, f) in enumerate(self._backlog):
            if f is fut:
                del self._backlog[i]
                fut.set_result(Result(ticket=Ticket(0), status=-12, output=b"cancelled before it was sent"))
                return
        for t, f in self._futs.items():
            if f is fut:
                self._check(self._lib.p2c2r_client_cancel(self._ptr(), _ffi.Ticket(t)))
                self._rearm()
                return

    async def put_blob(self, data: Data) -> bytes:
        """Uploads a blob and returns its 32-byte SHA-256 (see
        :meth:`p2c2r.Client.put_blob`)."""
        b = _bytes(data, "blob data")

        def start() -> Ticket:
            tk = _ffi.Ticket()
            self._check(self._lib.p2c2r_client_put_blob_start(self._ptr(), b, len(b), 0, ctypes.byref(tk)))
            return Ticket(tk.id)
        r = await self._start(start)
        h = r.value()
        if len(h) != 32:
            raise error(-7, f"the upload's result is {len(h)} bytes, not a 32-byte hash")
        return h

    async def stats(self, timeout: Optional[float] = 5.0) -> Dict[str, Any]:
        """The coordinator's statistics as a dict.  The library has no
        non-blocking form of this request, so it blocks the loop for one
        round trip to the coordinator (results that arrive meanwhile are
        kept and delivered right after)."""
        try:
            return self._stats(timeout)
        finally:
            self._drain()
            self._rearm()

    def close(self) -> None:
        """Closes the connection; pending futures fail with ``ECLOSED``.
        Idempotent."""
        if self._ep.closed:
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._loop.remove_reader(self._ep.fileno())
        self._ep.close()
        super().close()
        self._fd = -1
        e = error(-4, "the client was closed")
        self._fail_backlog(e)
        futs, self._futs = self._futs, {}
        for fut in futs.values():
            if not fut.done():
                fut.set_exception(error(-4, "the client was closed"))
        if self._ready is not None and not self._ready.done():
            self._ready.set_exception(e)


__all__ = ["AsyncClient"]
