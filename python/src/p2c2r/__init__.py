"""p2c2r: Python bindings of libp2c2r, the renter's client of the p2c2r
compute-offload fabric.

A blocking client::

    import p2c2r
    with p2c2r.Client("127.0.0.1:8765") as c:
        digest = c.run("sha256", b"abc", params={"format": "hex"})

and an asyncio one, driving the library's descriptor from the event loop::

    async with await p2c2r.AsyncClient.connect("127.0.0.1:8765") as c:
        outs = await asyncio.gather(*(c.run("echo", b"x") for _ in range(100)))

Results are ``bytes``; failures raise :class:`P2C2RError` (one subclass per
p2c2r error name in :mod:`p2c2r.errors`).  The bindings load the installed
``libp2c2r.so.1`` through ctypes (no compile step); ``$P2C2R_LIB`` points at
another one.  See python/README.md.
"""
from ._task import Data, Params, Pressure, Priority, Result, Task, Ticket, blob_hex
from .aio import AsyncClient
from .client import Client
from .errors import P2C2RError

__version__ = "0.2.0"


def library_version() -> str:
    """The version of the libp2c2r loaded (``p2c2r_version``), e.g. "0.2.0"."""
    from . import _ffi
    return _ffi.text(_ffi.lib().p2c2r_version())


__all__ = ["AsyncClient", "Client", "Data", "P2C2RError", "Params", "Pressure", "Priority",
           "Result", "Task", "Ticket", "blob_hex", "library_version", "__version__"]
