#!/usr/bin/env python3
"""Draws examples/images/demo.png, the small picture of the README tour.

A 160x90 landscape (sky gradient, sun, two ranges of hills, a lake with a
reflection, a few sharp-edged houses) with smooth areas and hard edges, so
the four filters of `p2c2r upscale` look visibly different on it:

    p2c2r upscale examples/images/demo.png /tmp/demo-4x.png --scale 4 --filter lanczos3

Usage: make_demo.py [OUT]   (default: demo.png beside this script).
Deterministic: the same Pillow draws the same bytes.  Needs Pillow.
"""
import math
import os
import sys

from PIL import Image, ImageDraw

W, H = 160, 90


def lerp(a, b, t):
    return tuple(round(x + (y - x) * t) for x, y in zip(a, b))


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(os.path.abspath(__file__)), "demo.png")
    im = Image.new("RGB", (W, H))
    px = im.load()
    horizon = 52
    for y in range(H):
        for x in range(W):
            if y < horizon:
                px[x, y] = lerp((40, 80, 170), (250, 190, 140), y / horizon)
            else:
                px[x, y] = lerp((60, 110, 150), (20, 40, 70), (y - horizon) / (H - horizon))
    d = ImageDraw.Draw(im)
    d.ellipse((100, 14, 124, 38), fill=(255, 236, 180))
    far = [(0, horizon)] + [(x, horizon - 14 - 8 * math.sin(x / 13.0) - 4 * math.sin(x / 5.0))
                            for x in range(0, W + 1, 4)] + [(W, horizon)]
    d.polygon(far, fill=(90, 100, 140))
    near = [(0, horizon)] + [(x, horizon - 5 - 6 * math.sin(x / 9.0 + 1.0)) for x in range(0, W + 1, 4)] + [(W, horizon)]
    d.polygon(near, fill=(50, 90, 60))
    for i, x in enumerate((18, 34, 47)):
        h = 9 + 3 * (i % 2)
        d.rectangle((x, horizon - h, x + 9, horizon - 1), fill=(230, 225, 210))
        d.polygon([(x - 1, horizon - h), (x + 4.5, horizon - h - 6), (x + 10, horizon - h)], fill=(170, 50, 40))
        d.rectangle((x + 3, horizon - 5, x + 5, horizon - 1), fill=(60, 40, 30))
    # The lake mirrors the scene above it, a little darker and rippled.
    for y in range(horizon, H):
        src = 2 * horizon - y - 1
        for x in range(W):
            sx = min(W - 1, max(0, x + int(1.5 * math.sin(y * 1.3))))
            r, g, b = px[sx, src]
            px[x, y] = (r * 6 // 10, g * 6 // 10, min(255, b * 7 // 10 + 20))
    im.save(out, optimize=True)
    print("wrote %s (%dx%d)" % (out, W, H))


if __name__ == "__main__":
    main()
