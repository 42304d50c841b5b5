"""The package installs offline into a virtual environment with pip, and its
type hints check.

`pip install ./python` builds the wheel with the in-tree backend
(python/_build/p2c2r_build.py), which needs nothing from a package index:
--no-index proves it (PyPI is unreachable in CI anyway)."""
from __future__ import annotations

import os
import subprocess
import sys
import tarfile
import zipfile

import pytest

from conftest import PYDIR

try:
    import tomllib
except ImportError:  # Python < 3.11
    tomllib = None  # type: ignore[assignment]

PIP = ["--disable-pip-version-check", "--no-index", "--no-input", "--no-cache-dir", "-q"]


def run(argv: "list[str]", **kw: object) -> "subprocess.CompletedProcess[str]":
    p = subprocess.run(argv, capture_output=True, text=True, timeout=300, **kw)  # type: ignore[call-overload]
    assert p.returncode == 0, f"{argv}: {p.stdout}{p.stderr}"
    return p  # type: ignore[no-any-return]


def test_pip_install_into_a_venv(coord: str, tmp_path: "os.PathLike[str]") -> None:
    venv = os.path.join(str(tmp_path), "venv")
    run([sys.executable, "-m", "venv", venv])
    py = os.path.join(venv, "bin", "python")
    run([py, "-m", "pip", "install", *PIP, PYDIR])
    # From another directory, so the source tree is not what gets imported.
    code = ("import p2c2r, os\n"
            "assert 'site-packages' in p2c2r.__file__, p2c2r.__file__\n"
            "assert os.path.exists(os.path.join(os.path.dirname(p2c2r.__file__), 'py.typed'))\n"
            "with p2c2r.Client(%r) as c:\n"
            "    print(c.run('echo', b'from a venv').decode())\n" % coord)
    # Found the way an installed library is: by its soname, through the loader.
    env = dict(os.environ, LD_LIBRARY_PATH=os.path.dirname(os.environ["P2C2R_LIB"]))
    del env["P2C2R_LIB"]
    p = run([py, "-c", code], cwd=str(tmp_path), env=env)
    assert p.stdout.strip() == "from a venv"
    run([py, "-m", "pip", "uninstall", "-y", "-q", "p2c2r"])
    # Editable (PEP 660): the venv imports the source tree.
    run([py, "-m", "pip", "install", *PIP, "-e", PYDIR])
    p = run([py, "-c", "import p2c2r; print(p2c2r.__file__)"], cwd=str(tmp_path))
    assert p.stdout.strip() == os.path.join(PYDIR, "src", "p2c2r", "__init__.py")


def test_sdist_and_wheel_contents(tmp_path: "os.PathLike[str]") -> None:
    sys.path.insert(0, os.path.join(PYDIR, "_build"))
    try:
        import p2c2r_build
    finally:
        sys.path.pop(0)
    out = str(tmp_path)
    whl = p2c2r_build.build_wheel(out)
    with zipfile.ZipFile(os.path.join(out, whl)) as z:
        names = set(z.namelist())
        record = z.read("p2c2r-0.2.0.dist-info/RECORD").decode()
        meta = z.read("p2c2r-0.2.0.dist-info/METADATA").decode()
    for f in ("p2c2r/__init__.py", "p2c2r/aio.py", "p2c2r/client.py", "p2c2r/py.typed",
              "p2c2r-0.2.0.dist-info/WHEEL"):
        assert f in names
    assert not any("__pycache__" in n for n in names)
    assert all(n in record for n in names)
    assert "Name: p2c2r" in meta and "Version: 0.2.0" in meta
    sdist = p2c2r_build.build_sdist(out)
    with tarfile.open(os.path.join(out, sdist)) as t:
        members = set(t.getnames())
    assert {"p2c2r-0.2.0/pyproject.toml", "p2c2r-0.2.0/_build/p2c2r_build.py", "p2c2r-0.2.0/PKG-INFO",
            "p2c2r-0.2.0/src/p2c2r/aio.py"} <= members
    # The same wheel twice: reproducible.
    again = os.path.join(out, "again")
    os.mkdir(again)
    p2c2r_build.build_wheel(again)
    with open(os.path.join(out, whl), "rb") as a, open(os.path.join(again, whl), "rb") as b:
        assert a.read() == b.read()


def test_pyproject_version_is_the_package_version() -> None:
    if tomllib is None:
        pytest.skip("tomllib needs Python 3.11")
    import p2c2r
    with open(os.path.join(PYDIR, "pyproject.toml"), "rb") as f:
        assert tomllib.load(f)["project"]["version"] == p2c2r.__version__


def test_backend_reads_pyproject_without_tomllib() -> None:
    """Pythons before 3.11 build with the backend's own TOML subset reader:
    it must read pyproject.toml exactly as tomllib does."""
    if tomllib is None:
        pytest.skip("tomllib needs Python 3.11")
    sys.path.insert(0, os.path.join(PYDIR, "_build"))
    try:
        import p2c2r_build
    finally:
        sys.path.pop(0)
    with open(os.path.join(PYDIR, "pyproject.toml"), "rb") as f:
        data = f.read()
    assert p2c2r_build._mini_toml(data.decode()) == tomllib.loads(data.decode())


def test_types_check_strict() -> None:
    pytest.importorskip("mypy", reason="mypy is not installed (Debian python3-mypy, scripts/deps.sh)")
    p = subprocess.run([sys.executable, "-m", "mypy", "--strict", "--cache-dir=/dev/null",
                        os.path.join(PYDIR, "src", "p2c2r")], capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stdout + p.stderr
