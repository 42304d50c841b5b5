"""Fixtures of the p2c2r Python tests: real daemons on 127.0.0.1 port 0.

The programs and the library come from the environment that ctest sets
(tests/python/CMakeLists.txt) or, when pytest is run by hand from a
checkout, from its build/ directory:

    P2C2RD, P2C2R_PEER, P2C2R_CLI   the daemons and the CLI
    P2C2R_LIB                       libp2c2r.so.1 (read by the package itself)
    P2C2R_PY_LAYOUT                 the struct layout printer (tests/python/py_layout.c)

    cd python && P2C2R_LIB=../build/libp2c2r.so.1 python3 -m pytest -q tests

Each daemon runs in a fresh temporary directory; its log is printed when a
test fails (and kept with P2C2R_TEST_KEEP=1).
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from typing import Any, Dict, Iterator, List, Optional

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
PYDIR = os.path.dirname(HERE)
REPO = os.path.dirname(PYDIR)
BUILD = os.path.join(REPO, "build")


def _prog(env: str, name: str) -> str:
    return os.environ.get(env) or os.path.join(BUILD, name)


P2C2RD = _prog("P2C2RD", "p2c2rd")
PEER = _prog("P2C2R_PEER", "p2c2r-peer")
CLI = _prog("P2C2R_CLI", "p2c2r")
os.environ["P2C2R_LIB"] = os.path.abspath(os.environ.get("P2C2R_LIB") or os.path.join(BUILD, "libp2c2r.so.1"))

# The package from this source tree (src/), unless the test runs it from an
# installed copy on purpose (test_install.py does, in a subprocess).
sys.path.insert(0, os.path.join(PYDIR, "src"))


def program_env() -> Dict[str, str]:
    """The environment of this build's C programs (daemons, CLI, py_layout).
    In a sanitizer build the interpreter runs with the ASan runtime
    preloaded and leak checks off (tests/python/CMakeLists.txt); the
    programs, ASan builds themselves, get neither."""
    env = dict(os.environ)
    if "P2C2R_DAEMON_ASAN_OPTIONS" in env:
        env.pop("LD_PRELOAD", None)
        env["ASAN_OPTIONS"] = env.pop("P2C2R_DAEMON_ASAN_OPTIONS")
    return env


class Proc:
    """A daemon started by a test, with its log file."""

    def __init__(self, name: str, argv: List[str], workdir: str) -> None:
        self.name = name
        self.argv = argv
        self.log_path = os.path.join(workdir, f"{name}.log")
        self.log = open(self.log_path, "wb")
        self.p = subprocess.Popen(argv, stdout=self.log, stderr=subprocess.STDOUT, cwd=workdir,
                                  env=program_env())

    def running(self) -> bool:
        return self.p.poll() is None

    def signal(self, sig: int) -> None:
        if self.running():
            self.p.send_signal(sig)

    def stop(self, timeout: float = 10.0) -> Optional[int]:
        if self.running():
            self.p.send_signal(signal.SIGCONT)
            self.p.terminate()
            try:
                self.p.wait(timeout)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        self.log.close()
        return self.p.returncode

    def text(self) -> str:
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")


class Network:
    """A coordinator and its peers in one temporary directory."""

    def __init__(self, workdir: str) -> None:
        self.dir = workdir
        self.procs: List[Proc] = []
        self.coord: Optional[Proc] = None
        self.addr = ""
        self.port = 0
        self.ncoords = 0

    def start_coord(self, *extra: str, local_peers: int = 2, listen: str = "127.0.0.1:0") -> str:
        """Starts p2c2rd and returns its HOST:PORT once it is ready (its
        local peers registered)."""
        self.ncoords += 1
        ready = os.path.join(self.dir, f"ready-{self.ncoords}")
        argv = [P2C2RD, "--listen", listen, "--ready-file", ready, "--local-peers", str(local_peers),
                "--log-level", "info", *extra]
        p = Proc(f"p2c2rd-{self.ncoords}", argv, self.dir)
        self.procs.append(p)
        end = time.monotonic() + 20
        while time.monotonic() < end:
            if os.path.exists(ready):
                with open(ready) as f:
                    s = f.read()
                if s.endswith("\n"):
                    break
            if not p.running():
                raise RuntimeError(f"p2c2rd exited with {p.p.returncode}:\n{p.text()}")
            time.sleep(0.02)
        else:
            raise RuntimeError("p2c2rd wrote no ready file within 20 s")
        self.coord = p
        self.addr = s.strip()
        self.port = int(self.addr.rsplit(":", 1)[1])
        return self.addr

    def start_peer(self, name: str, slots: int = 2, types: Optional[str] = None, *extra: str) -> Proc:
        argv = [PEER, "--coordinator", self.addr, "--slots", str(slots), "--name", name,
                "--key", os.path.join(self.dir, f"{name}.key"), "--log-level", "info"]
        if types:
            argv += ["--types", types]
        p = Proc(name, argv + list(extra), self.dir)
        self.procs.append(p)
        return p

    def stats(self) -> Dict[str, Any]:
        out = subprocess.run([CLI, "stats", "--json", "--coordinator", self.addr], capture_output=True,
                             timeout=20, env=program_env())
        if out.returncode != 0:
            raise RuntimeError(f"p2c2r stats failed: {out.stderr.decode(errors='replace')}")
        doc: Dict[str, Any] = json.loads(out.stdout)
        return doc

    def peer(self, name: str) -> Optional[Dict[str, Any]]:
        for p in self.stats().get("peers", []):
            if p.get("name") == name:
                return dict(p)
        return None

    def wait_peers(self, n: int, timeout: float = 20.0) -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.stats().get("peers_connected", 0) >= n:
                return
            time.sleep(0.05)
        raise AssertionError(f"fewer than {n} peers connected after {timeout} s")

    def stop_all(self) -> None:
        for p in reversed(self.procs):
            p.stop()


@pytest.fixture
def net(request: pytest.FixtureRequest) -> Iterator[Network]:
    """A fresh network per test (start what the test needs)."""
    d = tempfile.mkdtemp(prefix="p2c2r-py-")
    n = Network(d)
    yield n
    n.stop_all()
    failed = getattr(request.node, "rep_call", None) is not None and request.node.rep_call.failed
    if failed or os.environ.get("P2C2R_TEST_VERBOSE"):
        for p in n.procs:
            print(f"---- {p.name}: {' '.join(p.argv)}\n{p.text()[-6000:]}")
    if os.environ.get("P2C2R_TEST_KEEP"):
        print(f"kept {d}")
    else:
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="module")
def coord() -> Iterator[str]:
    """One coordinator with 2 local peers shared by a module's tests: its
    address."""
    d = tempfile.mkdtemp(prefix="p2c2r-py-")
    n = Network(d)
    try:
        yield n.start_coord()
    finally:
        n.stop_all()
        if n.procs and n.procs[0].p.returncode not in (0, None):
            print(n.procs[0].text()[-6000:])
        shutil.rmtree(d, ignore_errors=True)


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: Any) -> Iterator[None]:
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)


@pytest.fixture
def silent_listener() -> Iterator[str]:
    """A TCP port that accepts connections (the kernel's backlog does) and
    never answers: HELLO times out."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    s.listen(8)
    yield f"127.0.0.1:{s.getsockname()[1]}"
    s.close()


@pytest.fixture
def closed_port() -> str:
    """An address where nothing listens (connect is refused)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return f"127.0.0.1:{port}"


def slow_raytrace(scene_path: str) -> "tuple[bytes, Dict[str, str]]":
    """A raytrace task that runs for seconds on one executor thread (the demo
    scene, whole frame, 64 samples per pixel): for timeouts and cancels.
    Submit it with nocache=True so it is never merged with another."""
    with open(scene_path, "rb") as f:
        return f.read(), {"spp": "64", "format": "raw"}


DEMO_SCENE = os.path.join(REPO, "examples", "scenes", "demo.json")
