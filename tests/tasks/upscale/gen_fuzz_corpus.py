#!/usr/bin/env python3
"""Writes the seed corpus of the fuzz_upscale target (tests/fuzz/fuzz_upscale.c).

Usage: gen_fuzz_corpus.py OUTDIR   (the checked-in one is tests/fuzz/corpus/fuzz_upscale)

Each seed is one selector byte (0 PNG, 1 JPEG, 2 either + resample,
3 "params\\0input" through the executor) followed by its data.  Images are
tiny so that every mutation runs fast.  Needs Pillow and numpy.
"""
import io
import os
import struct
import sys
import zlib

import numpy as np
from PIL import Image


def png(im, **kw):
    b = io.BytesIO()
    im.save(b, "PNG", **kw)
    return b.getvalue()


def jpeg(im, **kw):
    b = io.BytesIO()
    im.save(b, "JPEG", **kw)
    return b.getvalue()


def chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_interlaced_2x2():
    """A 2x2 RGB Adam7 PNG (Pillow writes no interlaced PNGs): pixel (0,0)
    is pass 1, (1,0) pass 6, row 1 pass 7; each pass row has filter 0."""
    p = [bytes([200, 10, 10]), bytes([10, 200, 10]), bytes([10, 10, 200]), bytes([90, 90, 90])]
    raw = b"\0" + p[0] + b"\0" + p[1] + b"\0" + p[2] + p[3]
    ihdr = struct.pack(">IIBBBBB", 2, 2, 8, 2, 0, 0, 1)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw))
            + chunk(b"IEND", b""))


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    rng = np.random.default_rng(1)
    rgb = Image.fromarray(rng.integers(0, 256, (6, 7, 3), dtype=np.uint8), "RGB")
    rgba = Image.fromarray(rng.integers(0, 256, (5, 4, 4), dtype=np.uint8), "RGBA")
    smooth = Image.fromarray(
        (np.indices((16, 16)).sum(0)[..., None] * np.array([8, 4, 2])).astype(np.uint8), "RGB")
    pal = rgb.convert("P", palette=Image.ADAPTIVE, colors=8)
    seeds = {
        "png_rgb": b"\0" + png(rgb),
        "png_rgba": b"\0" + png(rgba),
        "png_gray": b"\0" + png(rgb.convert("L")),
        "png_gray_alpha": b"\0" + png(rgba.convert("LA")),
        "png_palette": b"\0" + png(pal),
        "png_palette_trns": b"\0" + png(pal, transparency=2),
        "png_bilevel": b"\0" + png(rgb.convert("1")),
        "png_gray16": b"\0" + png(Image.fromarray((np.arange(12, dtype=np.uint16) * 5000).reshape(3, 4), "I;16")),
        "png_interlaced": b"\0" + png_interlaced_2x2(),
        "jpeg_baseline": b"\1" + jpeg(smooth, quality=80),
        "jpeg_progressive": b"\1" + jpeg(smooth, quality=70, progressive=True),
        "jpeg_gray": b"\1" + jpeg(smooth.convert("L"), quality=90),
        "jpeg_444": b"\1" + jpeg(smooth, quality=95, subsampling=0),
        "any_png": b"\2" + png(rgba),
        "any_jpeg": b"\2" + jpeg(smooth, quality=60),
        "exec_png_scale": b"\3" + b"scale=2.5\nfilter=lanczos3\nformat=png\0" + png(rgb),
        "exec_jpeg_width": b"\3" + b"width=9\nfilter=bilinear\nformat=jpeg\nquality=50\0" + jpeg(smooth),
        "exec_raw_rgb": b"\3" + b"in_width=4\nin_height=3\nin_channels=3\nscale=3\nfilter=bicubic\0" + bytes(range(36)),
        "exec_raw_rgba": b"\3" + b"in_width=2\nin_height=2\nwidth=5\nheight=3\nfilter=nearest\nformat=raw\0" + bytes(range(16)),
        "exec_raw_short": b"\3" + b"in_width=4\nin_height=4\nscale=2\0" + bytes(10),
    }
    for name, data in seeds.items():
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)
    print("wrote %d seeds to %s" % (len(seeds), out))


if __name__ == "__main__":
    main()
