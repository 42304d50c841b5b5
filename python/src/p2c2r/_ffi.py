"""ctypes declarations of libp2c2r (include/p2c2r/client.h and error.h).

This module is the only place that knows the C layout.  Every struct the
library reads or fills begins with ``uint32_t size``; the classes below mirror
the header's current layouts field by field (natural alignment, as the C
compiler lays them out), and :func:`sized` sets ``size`` to the mirrored
``sizeof``, so the library reads and fills exactly the fields declared here
(the ABI policy of docs/ARCHITECTURE.md: a newer library stays compatible).
tests/python checks these layouts against the C compiler's offsetof.

The library is found, in order, at:

1. ``$P2C2R_LIB`` (a path to the shared object);
2. ``libp2c2r.so.1`` through the dynamic loader (``LD_LIBRARY_PATH``, the
   ld.so cache: an installed library);
3. whatever :func:`ctypes.util.find_library` finds for ``p2c2r``;
4. a CMake build tree beside this source tree (``../../build``, for running
   from a checkout).
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os
from ctypes import (POINTER, Structure, c_char_p, c_double, c_int, c_int32, c_size_t, c_uint8,
                    c_uint16, c_uint32, c_uint64, c_void_p)
from typing import Optional, Type, TypeVar

SONAME = "libp2c2r.so.1"
STRUCT_SIZE_MAX = 4096

# enum p2c2r_state
STATE_CONNECTING = 1
STATE_READY = 2
STATE_BACKOFF = 3
STATE_FAILED = 4

# p2c2r_task.flags / p2c2r_result.flags
TASK_NOCACHE = 0x1
RESULT_CACHED = 0x1
RESULT_HEDGED = 0x2
RESULT_VERIFIED = 0x4
RESULT_LOCAL = 0x8


class Ticket(Structure):
    """p2c2r_ticket: passed by value, layout fixed for good."""
    _fields_ = [("id", c_uint64)]


class ClientOptions(Structure):
    """struct p2c2r_client_options."""
    _fields_ = [
        ("size", c_uint32),
        ("token", c_char_p),
        ("name", c_char_p),
        ("connect_timeout_ms", c_int),
        ("max_result_bytes", c_size_t),
        ("spin_us", c_uint32),
        ("reserved_", c_uint32),
        ("reconnect_ms", c_uint32),
        ("reconnect_max_ms", c_uint32),
        ("local_fallback_us", c_uint32),
        ("local_frame_us", c_uint32),
        ("tls_ca_file", c_char_p),
        ("tls_server_name", c_char_p),
    ]


class Task(Structure):
    """struct p2c2r_task.  ``input`` is declared ``char *`` so a ``bytes``
    object can be assigned without a copy (ctypes keeps it alive with the
    struct); the library reads ``input_len`` bytes, NULs included."""
    _fields_ = [
        ("size", c_uint32),
        ("type", c_char_p),
        ("min_version", c_uint32),
        ("deadline_ms", c_uint32),
        ("priority", c_uint8),
        ("params", c_char_p),
        ("params_len", c_size_t),
        ("input", c_char_p),
        ("input_len", c_size_t),
        ("blobs", c_char_p),  # const uint8_t (*)[32]: nblobs hashes back to back
        ("nblobs", c_size_t),
        ("flags", c_uint32),
        ("need_gpu", c_uint8),
        ("min_cores", c_uint16),
        ("min_mem_bytes", c_uint64),
        ("user", c_uint64),
    ]


class Result(Structure):
    """struct p2c2r_result."""
    _fields_ = [
        ("size", c_uint32),
        ("ticket", Ticket),
        ("status", c_int),
        ("output", c_void_p),
        ("output_len", c_size_t),
        ("exec_us", c_uint32),
        ("peer_id", c_uint32),
        ("attempts", c_uint16),
        ("flags", c_uint32),
        ("user", c_uint64),
    ]


class Pressure(Structure):
    """struct p2c2r_pressure."""
    _fields_ = [
        ("size", c_uint32),
        ("inflight", c_uint32),
        ("max_inflight", c_uint32),
        ("rejected_queue_full", c_uint64),
        ("rejected_deadline", c_uint64),
        ("last_reject_ms_ago", c_uint64),
        ("reject_ratio", c_double),
        ("unsent_bytes", c_size_t),
        ("timed_out", c_uint64),
        ("late", c_uint64),
        ("last_miss_ms_ago", c_uint64),
        ("miss_ratio", c_double),
    ]


class FrameAdvice(Structure):
    """struct p2c2r_frame_advice."""
    _fields_ = [
        ("size", c_uint32),
        ("fit", c_uint32),
        ("quality", c_int32),
        ("rtt_p90_us", c_uint32),
        ("inflight", c_uint32),
        ("miss_ratio", c_double),
    ]


S = TypeVar("S", bound=Structure)


def sized(cls: Type[S]) -> S:
    """A zeroed instance of a sized struct with ``size`` set (the C
    ``P2C2R_*_INIT``)."""
    s = cls()
    s.size = ctypes.sizeof(cls)
    return s


#: The sized structs, for the layout test: name in C -> mirror.
STRUCTS = {
    "p2c2r_client_options": ClientOptions,
    "p2c2r_task": Task,
    "p2c2r_result": Result,
    "p2c2r_pressure": Pressure,
    "p2c2r_frame_advice": FrameAdvice,
}

Client_p = c_void_p  # p2c2r_client *, opaque


def _declare(lib: ctypes.CDLL) -> None:
    def fn(name: str, restype: object, *argtypes: object) -> None:
        f = getattr(lib, name)
        f.restype = restype
        f.argtypes = list(argtypes)

    fn("p2c2r_version", c_char_p)
    fn("p2c2r_strerror", c_char_p, c_int)
    fn("p2c2r_errname", c_char_p, c_int)
    fn("p2c2r_client_connect", c_int, c_char_p, POINTER(ClientOptions), POINTER(Client_p))
    fn("p2c2r_client_connect_start", c_int, c_char_p, POINTER(ClientOptions), POINTER(Client_p))
    fn("p2c2r_client_state", c_int, Client_p)
    fn("p2c2r_client_timeout_ms", c_int, Client_p)
    fn("p2c2r_client_close", None, Client_p)
    fn("p2c2r_client_submit", c_int, Client_p, POINTER(Task), POINTER(Ticket))
    fn("p2c2r_client_submit_batch", c_int, Client_p, POINTER(Task), c_size_t, POINTER(Ticket))
    fn("p2c2r_client_cancel", c_int, Client_p, Ticket)
    fn("p2c2r_result_release", None, POINTER(Result))
    fn("p2c2r_client_wait", c_int, Client_p, Ticket, c_int, POINTER(Result))
    fn("p2c2r_client_poll", c_int, Client_p, POINTER(Result), c_size_t, c_int)
    fn("p2c2r_client_fd", c_int, Client_p)
    fn("p2c2r_client_want_write", c_int, Client_p)
    fn("p2c2r_client_process", c_int, Client_p)
    fn("p2c2r_client_flush", c_int, Client_p, c_int)
    fn("p2c2r_client_pending", c_size_t, Client_p)
    fn("p2c2r_client_max_inflight", c_uint32, Client_p)
    fn("p2c2r_client_pressure", c_int, Client_p, POINTER(Pressure))
    fn("p2c2r_client_type_pressure", c_int, Client_p, c_char_p, POINTER(Pressure))
    fn("p2c2r_client_frame_advice", c_int, Client_p, c_char_p, c_uint64, c_uint32, POINTER(FrameAdvice))
    fn("p2c2r_client_trace_start", c_int, Client_p, c_char_p)
    fn("p2c2r_client_trace_stop", c_int, Client_p)
    fn("p2c2r_client_stats", c_int, Client_p, c_int, POINTER(c_void_p))
    fn("p2c2r_stats_free", None, c_void_p)
    fn("p2c2r_client_put_blob", c_int, Client_p, c_char_p, c_size_t, c_int, POINTER(c_uint8 * 32))
    fn("p2c2r_client_put_blob_start", c_int, Client_p, c_char_p, c_size_t, c_uint64, POINTER(Ticket))
    fn("p2c2r_client_last_error", c_char_p, Client_p)


def _candidates() -> "list[str]":
    out = []
    env = os.environ.get("P2C2R_LIB")
    if env:
        return [env]  # an explicit choice is not second-guessed
    out.append(SONAME)
    found = ctypes.util.find_library("p2c2r")
    if found:
        out.append(found)
    here = os.path.dirname(os.path.abspath(__file__))
    tree = os.path.normpath(os.path.join(here, "..", "..", "..", "build", SONAME))
    if os.path.exists(tree):
        out.append(tree)
    return out


_lib: Optional[ctypes.CDLL] = None


def lib() -> ctypes.CDLL:
    """The loaded libp2c2r, loaded and declared on first use.

    Raises :class:`OSError` naming every place tried and how to point at
    the library when none loads."""
    global _lib
    if _lib is not None:
        return _lib
    tried = []
    for path in _candidates():
        try:
            cand = ctypes.CDLL(path)
            _declare(cand)
        except (OSError, AttributeError) as e:
            tried.append(f"{path}: {e}")
            continue
        _lib = cand
        return cand
    raise OSError("libp2c2r not found (tried " + "; ".join(tried) + "): install it "
                  "(make install, then ldconfig) or set P2C2R_LIB to the path of libp2c2r.so.1")


def text(p: Optional[bytes]) -> str:
    """A C string from the library as str (invalid UTF-8 replaced)."""
    return p.decode("utf-8", "replace") if p else ""
