"""Exceptions carrying p2c2r error codes (include/p2c2r/error.h).

Every failure, whether a call the library refused (a bad argument, a
connection that failed) or a task whose result is an error (the executor
refused its input, it timed out, no peer runs its type), is raised as a
:class:`P2C2RError`.  Its ``name`` is the library's symbolic name of the
code (``"ETIMEDOUT"``, ``"EUNSUPPORTED"``: ``p2c2r_errname``) and ``code`` the
negative number.  Each name also has its own subclass, so either style works::

    try:
        out = client.run("raytrace", scene)
    except p2c2r.errors.ETASK as e:          # by class
        print("bad scene:", e.detail)
    except p2c2r.P2C2RError as e:
        if e.name == "EUNSUPPORTED": ...     # or by name
"""
from __future__ import annotations

from typing import Dict, Optional, Type

from . import _ffi

#: Code -> name, as include/p2c2r/error.h declares them.
CODES: Dict[int, str] = {
    -1: "EINVAL", -2: "ENOMEM", -3: "EIO", -4: "ECLOSED", -5: "ETIMEDOUT", -6: "EAGAIN",
    -7: "EPROTO", -8: "ETOOBIG", -9: "EAUTH", -10: "EUNSUPPORTED", -11: "EQUEUEFULL",
    -12: "ECANCELLED", -13: "ETASK", -14: "ENOTFOUND", -15: "EVERSION", -16: "ELOST",
    -17: "ESHUTDOWN", -18: "ELIMIT", -19: "EADDR", -20: "ESTATE", -21: "ENOBLOB",
    -22: "EDEADLINE", -23: "ETLS",
}


class P2C2RError(Exception):
    """A p2c2r failure.

    Attributes:
        code: the negative ``p2c2r_error`` code (a code this library does not
            know stays as the coordinator sent it).
        name: its symbolic name, e.g. ``"ETIMEDOUT"`` (``"EUNKNOWN"`` for an
            unknown code).
        description: the library's text for the code (``p2c2r_strerror``).
        detail: what the coordinator, the executor or this package said
            about this occurrence ("" when nothing).
        ticket: the task's ticket when the error is a task's result, else None.
        peer_id: the peer that produced a task's error result (0 = none).
    """

    code: int
    name: str
    description: str
    detail: str
    ticket: Optional[int]
    peer_id: int

    def __init__(self, code: int, detail: str = "", *, ticket: Optional[int] = None,
                 peer_id: int = 0) -> None:
        code = -abs(int(code))
        self.code = code
        self.name = errname(code)
        self.description = strerror(code)
        self.detail = detail
        self.ticket = ticket
        self.peer_id = peer_id
        msg = f"{self.name}: {self.description}"
        if detail:
            msg += f": {detail}"
        if ticket is not None:
            msg += f" (ticket {ticket})"
        super().__init__(msg)

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (error, (self.code, self.detail), {"ticket": self.ticket, "peer_id": self.peer_id})


def errname(code: int) -> str:
    """``p2c2r_errname``: the symbolic name of a code, ``"EUNKNOWN"`` if
    unknown.  Falls back to this module's table when the library cannot be
    loaded, so errors stay printable."""
    try:
        return _ffi.text(_ffi.lib().p2c2r_errname(code))
    except OSError:
        return CODES.get(-abs(code), "EUNKNOWN")


def strerror(code: int) -> str:
    """``p2c2r_strerror``: a human-readable description of a code."""
    try:
        return _ffi.text(_ffi.lib().p2c2r_strerror(code))
    except OSError:
        return CODES.get(-abs(code), "unknown error")


# One subclass per code, so `except p2c2r.errors.ETIMEDOUT` works (and type checkers see them).
class EINVAL(P2C2RError, ValueError):
    """An argument or a request field is invalid (code -1)."""


class ENOMEM(P2C2RError):
    """Out of memory (code -2)."""


class EIO(P2C2RError):
    """Socket error: the connection failed (code -3)."""


class ECLOSED(P2C2RError):
    """The connection was closed (code -4)."""


class ETIMEDOUT(P2C2RError):
    """A timeout or a deadline passed (code -5)."""


class EAGAIN(P2C2RError):
    """Would block / backpressure: try again later (code -6)."""


class EPROTO(P2C2RError):
    """Malformed frame or protocol violation (code -7)."""


class ETOOBIG(P2C2RError):
    """A frame, input or output is over its limit (code -8)."""


class EAUTH(P2C2RError):
    """Missing or invalid credential (code -9)."""


class EUNSUPPORTED(P2C2RError):
    """No connected peer supports this task type (code -10)."""


class EQUEUEFULL(P2C2RError):
    """The queue for this renter or the coordinator is full (code -11)."""


class ECANCELLED(P2C2RError):
    """The task was cancelled (code -12)."""


class ETASK(P2C2RError):
    """The executor reported an error for this input (code -13)."""


class ENOTFOUND(P2C2RError):
    """Unknown ticket, task type or resource (code -14)."""


class EVERSION(P2C2RError):
    """No protocol version in common (code -15)."""


class ELOST(P2C2RError):
    """The task was lost with its peers too many times (code -16)."""


class ESHUTDOWN(P2C2RError):
    """The coordinator is shutting down (code -17)."""


class ELIMIT(P2C2RError):
    """A per-connection limit was exceeded (code -18)."""


class EADDR(P2C2RError):
    """Cannot parse or resolve an address (code -19)."""


class ESTATE(P2C2RError):
    """Call not valid in the current state (code -20)."""


class ENOBLOB(P2C2RError):
    """A blob the task references is not present (code -21)."""


class EDEADLINE(P2C2RError):
    """Rejected at admission: the task would miss its deadline (code -22)."""


class ETLS(P2C2RError):
    """TLS failed: handshake, certificate, or TLS required / not offered (code -23)."""


_CLASSES: Dict[str, Type[P2C2RError]] = {n: globals()[n] for n in CODES.values()}


def error(code: int, detail: str = "", *, ticket: Optional[int] = None,
          peer_id: int = 0) -> P2C2RError:
    """The exception for a code: an instance of its name's subclass (e.g.
    :class:`ETIMEDOUT`), or of :class:`P2C2RError` for an unknown code."""
    cls = _CLASSES.get(CODES.get(-abs(int(code)), ""), P2C2RError)
    return cls(code, detail, ticket=ticket, peer_id=peer_id)


def check(rc: int, detail: str = "") -> int:
    """Returns rc when it is not negative, else raises its error."""
    if rc < 0:
        raise error(rc, detail)
    return rc


__all__ = ["P2C2RError", "CODES", "error", "errname", "strerror", "check"] + list(CODES.values())
