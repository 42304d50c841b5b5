"""The ctypes mirrors match the C structs, and the error tables match the
library."""
from __future__ import annotations

import ctypes
import os
import re
import subprocess

import pytest

import p2c2r
from p2c2r import _ffi, errors
from conftest import program_env

LAYOUT = os.environ.get("P2C2R_PY_LAYOUT", "")


@pytest.fixture(scope="module")
def c_layout() -> "dict[str, dict[str, tuple[int, int]]]":
    if not LAYOUT:
        pytest.skip("P2C2R_PY_LAYOUT (the py_layout program) not set: run through ctest")
    out = subprocess.run([LAYOUT], capture_output=True, text=True, check=True, env=program_env()).stdout
    lay: "dict[str, dict[str, tuple[int, int]]]" = {}
    for line in out.splitlines():
        s, f, off, size = line.split()
        lay.setdefault(s, {})[f] = (int(off), int(size))
    return lay


def test_struct_layouts_match_c(c_layout: "dict[str, dict[str, tuple[int, int]]]") -> None:
    assert set(c_layout) == set(_ffi.STRUCTS)
    for name, cls in _ffi.STRUCTS.items():
        c = c_layout[name]
        assert ctypes.sizeof(cls) == c["-"][0], f"sizeof(struct {name})"
        mirrored = {f for f, _ in cls._fields_}
        assert mirrored == set(c) - {"-"}, f"struct {name}: fields differ"
        for f, _ in cls._fields_:
            desc = getattr(cls, f)
            assert (desc.offset, desc.size) == c[f], f"struct {name}.{f}"


def test_sized_sets_size() -> None:
    for cls in _ffi.STRUCTS.values():
        s = _ffi.sized(cls)
        assert s.size == ctypes.sizeof(cls)  # type: ignore[attr-defined]


def test_error_names_match_the_library() -> None:
    lib = _ffi.lib()
    hdr = os.path.join(os.path.dirname(__file__), "..", "..", "include", "p2c2r", "error.h")
    with open(hdr) as f:
        declared = {int(c): n for n, c in re.findall(r"P2C2R_(E[A-Z]+) = (-\d+)", f.read())}
    assert errors.CODES == declared
    for code, name in declared.items():
        assert _ffi.text(lib.p2c2r_errname(code)) == name
        e = errors.error(code, "why")
        assert type(e).__name__ == name and e.name == name and e.code == code
        assert isinstance(e, p2c2r.P2C2RError) and "why" in str(e)
        assert e.description == _ffi.text(lib.p2c2r_strerror(code))
    unknown = errors.error(-999)
    assert type(unknown) is p2c2r.P2C2RError and unknown.name == "EUNKNOWN"
    assert errors.error(5).name == "ETIMEDOUT"  # the wire form (positive) reads as its negative


def test_versions_agree() -> None:
    cmake = os.path.join(os.path.dirname(__file__), "..", "..", "CMakeLists.txt")
    with open(cmake) as f:
        m = re.search(r"project\(p2c2r VERSION (\S+)", f.read())
    assert m is not None
    assert p2c2r.__version__ == p2c2r.library_version() == m.group(1)


def test_missing_library_is_a_clear_error(tmp_path: "os.PathLike[str]") -> None:
    code = ("import p2c2r\n"
            "try:\n    p2c2r.Client('127.0.0.1:1')\n"
            "except OSError as e:\n    print('OSError', e)\n")
    env = dict(os.environ, P2C2R_LIB=os.path.join(str(tmp_path), "nope.so"),
               PYTHONPATH=os.path.join(os.path.dirname(__file__), "..", "src"))
    out = subprocess.run([os.sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert "OSError libp2c2r not found" in out.stdout and "P2C2R_LIB" in out.stdout, out
