"""Render a frame across the peers of a p2c2r network, notebook style.

Each ``# %%`` cell runs on its own in Jupyter or VS Code; as a script it runs
top to bottom:

    make run                                     # a coordinator with 2 local peers
    python3 python/examples/render_frame.py      # renders examples/scenes/demo.json
    python3 python/examples/render_frame.py --width 320 --height 180 --spp 4 -o small.png --show

The frame is cut into horizontal bands; every band is one ``raytrace`` task
(docs/tasks/raytrace.md: params x, y, w, h, spp, format=raw, the scene as
input), all submitted as one batch and collected in whatever order the peers
finish them.  A pixel does not depend on the band it was rendered in, so the
frame is byte-identical to ``p2c2r render --local`` of the same scene.
Needs the p2c2r package (``pip install ./python``), Pillow and a coordinator.
"""
# %% Parameters: edit them here in a notebook, or pass them on the command line.
from __future__ import annotations

import argparse
import json
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
DEMO = os.path.normpath(os.path.join(HERE, "..", "..", "examples", "scenes", "demo.json"))

ap = argparse.ArgumentParser(description="Render a raytrace scene across p2c2r peers.")
ap.add_argument("--coordinator", "-c", default=os.environ.get("P2C2R_COORDINATOR", "127.0.0.1:8765"))
ap.add_argument("--token", default=os.environ.get("P2C2R_TOKEN"))
ap.add_argument("--scene", default=DEMO, help="a JSON scene (default: the demo)")
ap.add_argument("--tiles", type=int, default=16, help="bands the frame is cut into")
ap.add_argument("--width", type=int, help="override the scene's width")
ap.add_argument("--height", type=int, help="override the scene's height")
ap.add_argument("--spp", type=int, help="samples per pixel (default: the scene's)")
ap.add_argument("--output", "-o", default="frame.png", help="where to save the frame (PNG)")
ap.add_argument("--show", action="store_true", help="open the frame in an image viewer too")
args, _ = ap.parse_known_args()  # known only: a notebook kernel passes its own

# %% Connect and load the scene.
try:
    import p2c2r
except ImportError:  # not installed: the package of this checkout (and its build/ library)
    sys.path.insert(0, os.path.join(HERE, "..", "src"))
    import p2c2r
from PIL import Image

client = p2c2r.Client(args.coordinator, token=args.token, name="render_frame.py")
with open(args.scene) as f:
    scene = json.load(f)
if args.width:
    scene["width"] = args.width
if args.height:
    scene["height"] = args.height
width, height = int(scene["width"]), int(scene["height"])
spp = int(args.spp or scene.get("spp", 1))
scene_bytes = json.dumps(scene).encode()  # floats print exactly (shortest round trip)
print(f"{args.scene}: {width}x{height}, {spp} spp, on {client.stats()['peers_connected']} peers")

# %% Cut the frame into bands, one raytrace task each, and submit them as one batch.
n = max(1, min(args.tiles, height, client.max_inflight))
bands = [(height * k // n, height * (k + 1) // n - height * k // n) for k in range(n)]
tasks = [p2c2r.Task("raytrace", scene_bytes, min_version=1, user=k,
                    params={"x": 0, "y": y, "w": width, "h": h, "spp": spp, "format": "raw"})
         for k, (y, h) in enumerate(bands)]
t0 = time.monotonic()
tickets = client.submit_batch(tasks)

# %% Collect the bands as they finish and paste them into the frame.
frame = bytearray(width * height * 4)
by_peer: dict = {}
left = len(tickets)
while left:
    for r in client.poll(64, timeout=1.0):
        y, h = bands[r.user]
        pixels = r.value()  # raises the band's error (p2c2r.P2C2RError) if it failed
        assert len(pixels) == width * h * 4, f"band {r.user}: {len(pixels)} bytes"
        frame[y * width * 4:(y + h) * width * 4] = pixels
        tiles, us = by_peer.get(r.peer_id, (0, 0))
        by_peer[r.peer_id] = (tiles + 1, us + r.exec_us)
        left -= 1
wall = time.monotonic() - t0
client.close()
for peer, (tiles, us) in sorted(by_peer.items()):
    label = "cache" if peer == 0 else f"peer {peer}"
    print(f"{label}: {tiles} bands, {us / 1000:.1f} ms executing")
print(f"{len(bands)} bands in {wall * 1000:.0f} ms")

# %% Show it (inline in a notebook: evaluate `image`), and save it.
image = Image.frombytes("RGBA", (width, height), bytes(frame))
image.save(args.output)
print(f"wrote {args.output}")
if args.show:
    image.show()
image  # noqa: B018 -- a notebook displays the cell's last value
