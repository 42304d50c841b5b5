"""Tasks and results: the Python side of struct p2c2r_task and p2c2r_result,
shared by the blocking client and the asyncio one."""
from __future__ import annotations

import ctypes
import enum
from dataclasses import dataclass
from typing import Iterable, Mapping, NewType, Optional, Sequence, Tuple, Union

from . import _ffi
from .errors import P2C2RError, error

#: A task's handle, unique within its client (``p2c2r_ticket.id``).
Ticket = NewType("Ticket", int)

#: What a task's params may be given as: a mapping (each item becomes a
#: ``key=value`` line; values are converted with ``str``), the lines as text,
#: or None for none.
Params = Union[Mapping[str, object], str, bytes, None]

#: Bytes-like input of a task or a blob.
Data = Union[bytes, bytearray, memoryview]

TYPE_MAX = 32
BLOBS_MAX = 4


class Priority(enum.IntEnum):
    """Priority classes (``enum p2c2r_priority``): the scheduler serves
    realtime before interactive before background, with aging."""
    REALTIME = 0
    INTERACTIVE = 1
    BACKGROUND = 2


PriorityLike = Union[Priority, int, str]


def _priority(p: PriorityLike) -> int:
    if isinstance(p, str):
        try:
            return int(Priority[p.upper()])
        except KeyError:
            raise error(-1, f"priority must be realtime, interactive or background, not {p!r}") from None
    p = int(p)
    if not 0 <= p <= 255:
        raise error(-1, f"priority must be 0..255, not {p}")
    return p


def encode_params(params: Params) -> bytes:
    """The ``key=value\\n`` lines the executors read (docs/TASKS.md)."""
    if params is None:
        return b""
    if isinstance(params, bytes):
        return params
    if isinstance(params, str):
        return params.encode()
    lines = []
    for k, v in params.items():
        k, v = str(k), str(v)
        if not k or "=" in k or "\n" in k or "\n" in v:
            raise error(-1, f"param {k!r}={v!r}: a key is non-empty without '=' or newline, "
                            "a value has no newline")
        lines.append(f"{k}={v}\n")
    return "".join(lines).encode()


def _bytes(data: Optional[Data], what: str) -> bytes:
    if data is None:
        return b""
    if isinstance(data, bytes):
        return data
    if isinstance(data, (bytearray, memoryview)):
        return bytes(data)
    raise error(-1, f"{what} must be bytes-like, not {type(data).__name__}")


@dataclass
class Task:
    """One task, for :meth:`Client.submit_batch` (and the fields every
    ``submit`` takes as keyword arguments).

    Attributes:
        type: task type, e.g. ``"echo"``, ``"raytrace"`` (1..32 bytes).
        data: the input bytes.
        params: ``key=value`` parameters (see :data:`Params`).
        priority: a :class:`Priority` (or its name); interactive by default,
            as the CLI's.
        deadline_ms: 0 = the coordinator's default; with a deadline the
            coordinator may refuse the task at once (``EDEADLINE``).
        min_version: lowest executor version accepted; 0 = any.
        blobs: hashes (32 bytes each, from ``put_blob``) of uploaded blobs
            the task uses; at most 4.
        nocache: never answer from, merge into or fill the result cache.
        need_gpu, min_cores, min_mem_bytes: requirements on the peer.
        user: your own 64-bit value, returned in :attr:`Result.user`.
    """
    type: str
    data: Data = b""
    params: Params = None
    priority: PriorityLike = Priority.INTERACTIVE
    deadline_ms: int = 0
    min_version: int = 0
    blobs: Sequence[bytes] = ()
    nocache: bool = False
    need_gpu: bool = False
    min_cores: int = 0
    min_mem_bytes: int = 0
    user: int = 0

    def _fill(self, t: _ffi.Task) -> None:
        """Fills a sized C task; the bytes it points at stay referenced by
        the ctypes struct (ctypes keeps assigned bytes objects alive)."""
        if not isinstance(self.type, str):
            raise error(-1, f"task type must be a str, not {type(self.type).__name__}")
        tb = self.type.encode()
        if not 1 <= len(tb) <= TYPE_MAX or b"\0" in tb:
            raise error(-1, f"task type {self.type!r} must be 1..{TYPE_MAX} bytes without NUL")
        data = _bytes(self.data, "task data")
        params = encode_params(self.params)
        if len(self.blobs) > BLOBS_MAX:
            raise error(-1, f"{len(self.blobs)} blobs: a task names at most {BLOBS_MAX}")
        hashes = b""
        for h in self.blobs:
            hb = _bytes(h, "a blob hash")
            if len(hb) != 32:
                raise error(-1, f"a blob hash is 32 bytes (put_blob's result), not {len(hb)}")
            hashes += hb
        for name in ("deadline_ms", "min_version"):
            v = getattr(self, name)
            if not 0 <= v <= 0xFFFFFFFF:
                raise error(-1, f"{name} must be 0..2^32-1, not {v}")
        if not 0 <= self.min_cores <= 0xFFFF:
            raise error(-1, f"min_cores must be 0..65535, not {self.min_cores}")
        t.type = tb
        t.min_version = self.min_version
        t.deadline_ms = self.deadline_ms
        t.priority = _priority(self.priority)
        t.params = params or None
        t.params_len = len(params)
        t.input = data or None
        t.input_len = len(data)
        t.blobs = hashes or None
        t.nblobs = len(self.blobs)
        t.flags = _ffi.TASK_NOCACHE if self.nocache else 0
        t.need_gpu = 1 if self.need_gpu else 0
        t.min_cores = self.min_cores
        t.min_mem_bytes = self.min_mem_bytes
        t.user = self.user & 0xFFFFFFFFFFFFFFFF


def c_tasks(tasks: Iterable[Task]) -> "ctypes.Array[_ffi.Task]":
    """A C array of sized tasks (stride sizeof(struct p2c2r_task))."""
    tl = list(tasks)
    if not tl:
        raise error(-1, "a batch needs at least one task")
    arr = (_ffi.Task * len(tl))()
    for i, spec in enumerate(tl):
        arr[i].size = ctypes.sizeof(_ffi.Task)
        spec._fill(arr[i])
    return arr


@dataclass
class Result:
    """One task's outcome.

    Attributes:
        ticket: the task's ticket.
        status: 0 for success, else a negative p2c2r error code.
        output: the output bytes on success; on failure the error text as
            bytes (see :attr:`error`).
        exec_us: executor time on the peer, microseconds.
        peer_id: the peer that ran it (0 = none).
        attempts: assignments it took (0 = refused, or answered from the
            cache).
        cached, hedged, verified, local: ``P2C2R_RESULT_*`` flags (local: run
            in this process by the local fallback: the coordinator was
            unreachable or refused the task).
        user: the task's :attr:`Task.user`.
    """
    ticket: Ticket
    status: int
    output: bytes
    exec_us: int = 0
    peer_id: int = 0
    attempts: int = 0
    cached: bool = False
    hedged: bool = False
    verified: bool = False
    user: int = 0
    local: bool = False

    @property
    def ok(self) -> bool:
        """True when the task succeeded."""
        return self.status == 0

    @property
    def error(self) -> Optional[P2C2RError]:
        """The failure as an exception (not raised), or None on success."""
        if self.status == 0:
            return None
        return error(self.status, self.output.decode("utf-8", "replace"), ticket=int(self.ticket),
                     peer_id=self.peer_id)

    def value(self) -> bytes:
        """The output on success; raises the task's :class:`P2C2RError`
        (e.g. ``ETASK`` with the executor's reason) on failure."""
        if self.status != 0:
            e = self.error
            assert e is not None
            raise e
        return self.output


def take_result(r: _ffi.Result) -> Result:
    """Copies a filled C result into a :class:`Result` and releases it."""
    try:
        out = ctypes.string_at(r.output, r.output_len) if r.output_len else b""
        return Result(ticket=Ticket(r.ticket.id), status=r.status, output=out, exec_us=r.exec_us,
                      peer_id=r.peer_id, attempts=r.attempts,
                      cached=bool(r.flags & _ffi.RESULT_CACHED),
                      hedged=bool(r.flags & _ffi.RESULT_HEDGED),
                      verified=bool(r.flags & _ffi.RESULT_VERIFIED), user=r.user,
                      local=bool(r.flags & _ffi.RESULT_LOCAL))
    finally:
        _ffi.lib().p2c2r_result_release(ctypes.byref(r))


def c_results(n: int) -> "ctypes.Array[_ffi.Result]":
    """An array of n results for p2c2r_client_poll (out[0].size set)."""
    arr = (_ffi.Result * n)()
    arr[0].size = ctypes.sizeof(_ffi.Result)
    return arr


@dataclass
class Pressure:
    """Backpressure figures (``struct p2c2r_pressure``): see "Backpressure"
    in include/p2c2r/client.h.  ``*_ms_ago`` are None when it never
    happened."""
    inflight: int
    max_inflight: int
    rejected_queue_full: int
    rejected_deadline: int
    last_reject_ms_ago: Optional[int]
    reject_ratio: float
    unsent_bytes: int
    timed_out: int
    late: int
    last_miss_ms_ago: Optional[int]
    miss_ratio: float

    @classmethod
    def _from_c(cls, p: _ffi.Pressure) -> "Pressure":
        never = 0xFFFFFFFFFFFFFFFF
        return cls(p.inflight, p.max_inflight, p.rejected_queue_full, p.rejected_deadline,
                   None if p.last_reject_ms_ago == never else p.last_reject_ms_ago, p.reject_ratio,
                   p.unsent_bytes, p.timed_out, p.late,
                   None if p.last_miss_ms_ago == never else p.last_miss_ms_ago, p.miss_ratio)


def options(token: Optional[str], name: Optional[str], connect_timeout: Optional[float],
            max_result_bytes: int, reconnect: Optional[Tuple[float, float]],
            local_fallback: Optional[Tuple[float, float]] = None,
            tls_ca: Optional[str] = None, tls_name: Optional[str] = None) -> _ffi.ClientOptions:
    """A sized struct p2c2r_client_options from the keyword arguments of the
    clients' constructors."""
    o = _ffi.sized(_ffi.ClientOptions)
    o.token = token.encode() if token is not None else None
    o.name = name.encode() if name is not None else None
    o.connect_timeout_ms = _ms(connect_timeout) if connect_timeout is not None else 0
    if max_result_bytes < 0:
        raise error(-1, "max_result_bytes must not be negative")
    o.max_result_bytes = max_result_bytes
    if reconnect is not None:
        first, most = reconnect
        o.reconnect_ms = max(1, _ms(first))
        o.reconnect_max_ms = _ms(most)
    if local_fallback is not None:
        budget, frame = local_fallback
        us, frame_us = int(round(budget * 1e6)), int(round(frame * 1e6))
        if not 0 < us <= 1000000 or not 0 <= frame_us <= 0x7FFFFFFF:
            raise error(-1, "local_fallback is (budget, frame) in seconds, budget in (0, 1]")
        o.local_fallback_us = us
        o.local_frame_us = frame_us
    if tls_name is not None and tls_ca is None:
        raise error(-1, "tls_name needs tls_ca (the CA file the coordinator's certificate chains to)")
    o.tls_ca_file = tls_ca.encode() if tls_ca is not None else None
    o.tls_server_name = tls_name.encode() if tls_name is not None else None
    return o


def _ms(seconds: float) -> int:
    ms = int(round(seconds * 1000))
    if not 0 <= ms <= 0x7FFFFFFF:
        raise error(-1, f"a time of {seconds} s is out of range")
    return ms


def timeout_ms(timeout: Optional[float]) -> int:
    """A timeout in seconds (None = forever) as the library's int ms (-1 =
    forever)."""
    return -1 if timeout is None else _ms(max(0.0, timeout))


def blob_hex(hash: bytes) -> str:
    """The 64 lowercase hex digits of a blob hash, as executors' params name
    a blob (``p2c2r_blob_hex``)."""
    if len(hash) != 32:
        raise error(-1, f"a blob hash is 32 bytes, not {len(hash)}")
    return bytes(hash).hex()


__all__ = ["Ticket", "Task", "Result", "Priority", "Pressure", "Params", "Data", "blob_hex"]
