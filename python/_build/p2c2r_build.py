"""A PEP 517 build backend for the p2c2r Python package, in the tree.

Why not setuptools: pip builds a pyproject.toml package in an isolated
environment into which it first installs the backend named in
``build-system.requires`` from the package index.  Offline (CI, this
project's machines, an air-gapped game studio) that download fails, and
``--no-build-isolation`` needs setuptools *and* wheel inside the virtual
environment, which Debian's python3-venv does not put there.  The package
is pure Python (ctypes over the installed libp2c2r), so its wheel is a zip of
the sources plus metadata: this backend writes it with the standard library
alone, ``requires = []``, and ``pip install ./python`` works with no index.

Hooks: build_wheel, build_sdist, build_editable (PEP 660, a .pth file
pointing at src/), prepare_metadata_for_build_wheel and _editable, and the
get_requires_* hooks (all empty).  Metadata comes from pyproject.toml's
[project] table (name, version, description, requires-python, readme,
classifiers, urls); read with tomllib, or on Pythons older than 3.11 by
_mini_toml, which reads the subset of TOML that file uses.
"""
from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import tarfile
import time
import zipfile
from typing import Dict, List, Optional, Tuple

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SRC = os.path.join(ROOT, "src")
TAG = "py3-none-any"
# Reproducible archives: the timestamp of every member (SOURCE_DATE_EPOCH wins).
EPOCH = int(os.environ.get("SOURCE_DATE_EPOCH", "315532800"))  # 1980-01-01, zip's earliest


def _project() -> Dict[str, object]:
    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as f:
        data = f.read()
    try:
        import tomllib  # type: ignore[import-not-found]
    except ImportError:  # Python < 3.11: this file's own subset of TOML
        return _mini_toml(data.decode("utf-8"))["project"]  # type: ignore[return-value]
    return tomllib.loads(data.decode("utf-8"))["project"]  # type: ignore[no-any-return]


def _mini_toml(text: str) -> Dict[str, Dict[str, object]]:
    """The subset of TOML pyproject.toml uses, for Pythons without tomllib:
    [tables], comment lines, and keys whose values are basic strings or
    arrays of them (which read as JSON), arrays possibly over several lines.
    tests check it reads pyproject.toml as tomllib does."""
    out: Dict[str, Dict[str, object]] = {}
    table: Dict[str, object] = {}
    key, acc = "", ""
    for line in text.splitlines():
        if acc:
            acc += line.strip()
        else:
            s = line.strip()
            if not s or s.startswith("#"):
                continue
            if s.startswith("[") and "=" not in s:
                table = out.setdefault(s.strip("[] "), {})
                continue
            key, _, acc = (x.strip() for x in s.partition("="))
        if acc.count("[") == acc.count("]"):
            table[key] = json.loads(acc.replace(",]", "]"))
            acc = ""
    return out


def _names() -> Tuple[str, str, str]:
    p = _project()
    name, version = str(p["name"]), str(p["version"])
    dist = name.replace("-", "_")
    return name, version, f"{dist}-{version}"


def _metadata() -> str:
    p = _project()
    lines = ["Metadata-Version: 2.1", f"Name: {p['name']}", f"Version: {p['version']}",
             f"Summary: {p.get('description', '')}"]
    if "requires-python" in p:
        lines.append(f"Requires-Python: {p['requires-python']}")
    lic = p.get("license")
    if isinstance(lic, dict) and "text" in lic:
        lines.append(f"License: {lic['text']}")
    for label, url in dict(p.get("urls", {})).items():  # type: ignore[call-overload]
        lines.append(f"Project-URL: {label}, {url}")
    for c in list(p.get("classifiers", [])):  # type: ignore[call-overload]
        lines.append(f"Classifier: {c}")
    body = ""
    readme = p.get("readme")
    if isinstance(readme, str):
        lines.append("Description-Content-Type: text/markdown")
        with open(os.path.join(ROOT, readme), encoding="utf-8") as f:
            body = f.read()
    return "\n".join(lines) + "\n\n" + body


def _package_files() -> List[Tuple[str, str]]:
    """(archive name, path) of every file of the import package, sorted;
    caches and compiled files left out."""
    out = []
    for d, dirs, files in os.walk(SRC):
        dirs[:] = sorted(x for x in dirs if x != "__pycache__" and not x.endswith(".egg-info"))
        for f in sorted(files):
            if f.endswith((".pyc", ".pyo")):
                continue
            path = os.path.join(d, f)
            out.append((os.path.relpath(path, SRC).replace(os.sep, "/"), path))
    return out


class _Wheel:
    def __init__(self, path: str) -> None:
        self.zip = zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED)
        self.record: List[str] = []

    def add(self, name: str, data: bytes) -> None:
        info = zipfile.ZipInfo(name, time.gmtime(EPOCH)[:6])
        info.external_attr = 0o644 << 16
        info.compress_type = zipfile.ZIP_DEFLATED
        self.zip.writestr(info, data)
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        self.record.append(f"{name},sha256={digest},{len(data)}")

    def close(self, distinfo: str) -> None:
        self.record.append(f"{distinfo}/RECORD,,")
        info = zipfile.ZipInfo(f"{distinfo}/RECORD", time.gmtime(EPOCH)[:6])
        info.external_attr = 0o644 << 16
        self.zip.writestr(info, "\n".join(self.record) + "\n")
        self.zip.close()


def _distinfo_files() -> Dict[str, bytes]:
    return {
        "METADATA": _metadata().encode(),
        "WHEEL": (f"Wheel-Version: 1.0\nGenerator: p2c2r_build\nRoot-Is-Purelib: true\nTag: {TAG}\n").encode(),
        "top_level.txt": b"p2c2r\n",
    }


def _build(wheel_directory: str, editable: bool) -> str:
    _, _, base = _names()
    distinfo = f"{base}.dist-info"
    filename = f"{base}-{TAG}.whl"
    w = _Wheel(os.path.join(wheel_directory, filename))
    try:
        if editable:
            w.add("p2c2r_editable.pth", (SRC + "\n").encode())
        else:
            for name, path in _package_files():
                with open(path, "rb") as f:
                    w.add(name, f.read())
        for name, data in _distinfo_files().items():
            w.add(f"{distinfo}/{name}", data)
    finally:
        w.close(distinfo)
    return filename


def _prepare(metadata_directory: str) -> str:
    _, _, base = _names()
    distinfo = f"{base}.dist-info"
    os.makedirs(os.path.join(metadata_directory, distinfo), exist_ok=True)
    for name, data in _distinfo_files().items():
        with open(os.path.join(metadata_directory, distinfo, name), "wb") as f:
            f.write(data)
    return distinfo


# ---- PEP 517 / 660 hooks -------------------------------------------------------------

def get_requires_for_build_wheel(config_settings: Optional[dict] = None) -> List[str]:
    return []


def get_requires_for_build_sdist(config_settings: Optional[dict] = None) -> List[str]:
    return []


def get_requires_for_build_editable(config_settings: Optional[dict] = None) -> List[str]:
    return []


def prepare_metadata_for_build_wheel(metadata_directory: str, config_settings: Optional[dict] = None) -> str:
    return _prepare(metadata_directory)


def prepare_metadata_for_build_editable(metadata_directory: str,
                                        config_settings: Optional[dict] = None) -> str:
    return _prepare(metadata_directory)


def build_wheel(wheel_directory: str, config_settings: Optional[dict] = None,
                metadata_directory: Optional[str] = None) -> str:
    return _build(wheel_directory, editable=False)


def build_editable(wheel_directory: str, config_settings: Optional[dict] = None,
                   metadata_directory: Optional[str] = None) -> str:
    return _build(wheel_directory, editable=True)


def build_sdist(sdist_directory: str, config_settings: Optional[dict] = None) -> str:
    _, _, base = _names()
    filename = f"{base}.tar.gz"
    members = ["pyproject.toml", "README.md", "_build/p2c2r_build.py"]
    members += ["src/" + name for name, _ in _package_files()]
    with tarfile.open(os.path.join(sdist_directory, filename), "w:gz", format=tarfile.PAX_FORMAT) as tar:
        def add(name: str, data: bytes) -> None:
            info = tarfile.TarInfo(f"{base}/{name}")
            info.size, info.mtime, info.mode = len(data), EPOCH, 0o644
            tar.addfile(info, io.BytesIO(data))
        for m in members:
            with open(os.path.join(ROOT, m), "rb") as f:
                add(m, f.read())
        add("PKG-INFO", _metadata().encode())
    return filename
