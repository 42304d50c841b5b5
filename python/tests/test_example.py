"""python/examples/render_frame.py runs headless and renders the same pixels
as `p2c2r render --local`."""
from __future__ import annotations

import os
import subprocess
import sys

from PIL import Image

from conftest import CLI, DEMO_SCENE, PYDIR, Network, program_env


def test_render_frame_example(net: Network, tmp_path: "os.PathLike[str]") -> None:
    addr = net.start_coord()
    out, ref = os.path.join(str(tmp_path), "frame.png"), os.path.join(str(tmp_path), "ref.png")
    size = ["--width", "160", "--height", "90", "--spp", "2"]
    env = dict(os.environ, PYTHONPATH=os.path.join(PYDIR, "src"), MPLBACKEND="Agg")
    env.pop("DISPLAY", None)
    p = subprocess.run([sys.executable, os.path.join(PYDIR, "examples", "render_frame.py"),
                        "--coordinator", addr, "--tiles", "7", "-o", out, *size],
                       capture_output=True, text=True, env=env, timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "7 bands" in p.stdout and "wrote" in p.stdout, p.stdout
    q = subprocess.run([CLI, "render", DEMO_SCENE, "--local", "-o", ref, *size], capture_output=True,
                       text=True, timeout=300, env=program_env())
    assert q.returncode == 0, q.stderr
    a, b = Image.open(out), Image.open(ref)
    assert a.size == b.size == (160, 90)
    assert a.convert("RGBA").tobytes() == b.convert("RGBA").tobytes()
    # Not a blank frame: the scene has light and colour.
    assert len(set(a.convert("RGB").getdata())) > 100


def test_render_frame_reports_a_refused_connection(tmp_path: "os.PathLike[str]", closed_port: str) -> None:
    # Without PYTHONPATH: the example falls back to the package of its checkout.
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    p = subprocess.run([sys.executable, os.path.join(PYDIR, "examples", "render_frame.py"),
                        "--coordinator", closed_port, "-o", os.path.join(str(tmp_path), "x.png")],
                       capture_output=True, text=True, env=env, timeout=60)
    assert p.returncode != 0 and "EIO" in p.stderr, p.stderr


def test_bench_example_runs(coord: str) -> None:
    env = dict(os.environ, PYTHONPATH=os.path.join(PYDIR, "src"))
    p = subprocess.run([sys.executable, os.path.join(PYDIR, "examples", "bench.py"), "-c", coord,
                        "--tasks", "300", "--inflight", "16", "--latency-tasks", "20"],
                       capture_output=True, text=True, env=env, timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr
    for line in ("blocking run(), 1 in flight", "blocking, 16 in flight", "asyncio run(), 1 in flight",
                 "asyncio, 16 in flight"):
        assert line in p.stdout, p.stdout
