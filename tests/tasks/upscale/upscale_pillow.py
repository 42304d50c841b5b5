#!/usr/bin/env python3
"""Checks the upscale resampler and decoders against Pillow.

Makes test images with Pillow and numpy (gradients, noise, checkerboards,
smooth photo-like content, hard edges; RGB and RGBA), resizes each with
Pillow's Image.resize for every filter and a set of sizes up and down
(integer and non-integer factors, one axis only), and writes the inputs,
Pillow's outputs and a manifest into WORKDIR.  It also saves images in the
PNG and JPEG variants our decoder must read (grey, grey+alpha, palette,
palette with transparency, 1-bit; baseline and progressive JPEG, grey JPEG)
with Pillow's decoding of each.  Then it runs the C checker (BIN MANIFEST),
which decodes every input with our imageio, resizes it with our resampler
and compares: at least 99.9% of channel values within 1 of Pillow's.

Usage: upscale_pillow.py BIN WORKDIR

Pillow and numpy are required (scripts/deps.sh installs python3-pil and
python3-numpy): without them this test fails, it does not skip.
"""
import os
import sys

try:
    import numpy as np
    from PIL import Image
except ImportError as e:  # a missing dependency is a failure, never a pass
    sys.stderr.write(
        "upscale_pillow: FAIL: cannot import Pillow/numpy (%s) with %s.\n"
        "Install them with scripts/deps.sh (Debian packages python3-pil and "
        "python3-numpy), then re-run cmake so it finds a python3 that has them.\n"
        % (e, sys.executable))
    sys.exit(1)

FILTERS = {
    "nearest": Image.NEAREST,
    "bilinear": Image.BILINEAR,
    "bicubic": Image.BICUBIC,
    "lanczos3": Image.LANCZOS,
}


def grid(w, h):
    y, x = np.mgrid[0:h, 0:w]
    return x.astype(np.float64), y.astype(np.float64)


def u8(a):
    return np.clip(np.rint(a), 0, 255).astype(np.uint8)


def make_rgb(kind, w, h, rng):
    x, y = grid(w, h)
    if kind == "gradient":
        r = x * 255.0 / max(w - 1, 1)
        g = y * 255.0 / max(h - 1, 1)
        b = (x + y) * 255.0 / max(w + h - 2, 1)
        return u8(np.dstack([r, g, 255 - b]))
    if kind == "noise":
        return rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    if kind == "checker1":
        c = ((x + y) % 2) * 255
        return u8(np.dstack([c, 255 - c, c]))
    if kind == "checker4":
        c = ((x // 4 + y // 4) % 2).astype(bool)
        out = np.zeros((h, w, 3), np.uint8)
        out[c] = (230, 40, 10)
        out[~c] = (20, 200, 250)
        return out
    if kind == "smooth":
        r = 128 + 100 * np.sin(x / 7.0) * np.cos(y / 11.0)
        g = 128 + 90 * np.sin((x + y) / 13.0)
        b = 128 + 110 * np.cos(np.hypot(x - w / 3, y - h / 2) / 9.0)
        return u8(np.dstack([r, g, b]))
    if kind == "edges":
        img = make_rgb("gradient", w, h, rng).copy()
        img[h // 4: h // 2, w // 5: w // 2] = (255, 255, 255)
        img[h // 2: 3 * h // 4, w // 2: 4 * w // 5] = (0, 0, 0)
        img[:, w - 2:] = (255, 0, 0)
        return img
    raise ValueError(kind)


def make_alpha(kind, w, h, rng):
    x, y = grid(w, h)
    if kind == "noise":
        return rng.integers(0, 256, (h, w), dtype=np.uint8)
    if kind == "gradient":
        return u8(x * 255.0 / max(w - 1, 1))
    if kind == "checker":
        return u8(((x // 3 + y // 3) % 2) * 255)
    if kind == "disc":
        d = np.hypot(x - w / 2, y - h / 2)
        return u8(np.clip((min(w, h) / 2.5 - d) * 40, 0, 255))
    raise ValueError(kind)


def targets(w, h):
    """Output sizes: up and down, integer and not, one axis at a time."""
    t = [
        (2 * w, 2 * h),
        (3 * w, 3 * h),
        (max(1, w // 2), max(1, h // 2)),
        (round(1.5 * w), round(1.5 * h)),
        (max(1, round(0.37 * w)), max(1, round(0.37 * h))),
        (2 * w, h),
        (w, 3 * h),
        (4 * w + 1, max(1, 2 * h - 1)),
        (w * 7 // 3, h * 5 // 4),
    ]
    out = []
    for s in t:
        if s != (w, h) and s not in out:
            out.append(s)
    return out


def main():
    if len(sys.argv) != 3:
        sys.stderr.write(__doc__)
        return 2
    binary, work = sys.argv[1], sys.argv[2]
    os.makedirs(work, exist_ok=True)
    rng = np.random.default_rng(20240611)
    lines = []
    n = 0

    def save(im, name):
        path = os.path.join(work, name)
        im.save(path)
        return path

    images = []
    for kind in ("gradient", "noise", "checker1", "checker4", "smooth", "edges"):
        for (w, h) in ((48, 32), (37, 23)):
            images.append(("%s_%dx%d" % (kind, w, h), Image.fromarray(make_rgb(kind, w, h, rng), "RGB")))
    for rgb_kind, a_kind in (("smooth", "noise"), ("gradient", "gradient"), ("noise", "checker"),
                             ("edges", "disc")):
        for (w, h) in ((40, 30), (29, 17)):
            rgba = np.dstack([make_rgb(rgb_kind, w, h, rng), make_alpha(a_kind, w, h, rng)])
            images.append(("%s_a%s_%dx%d" % (rgb_kind, a_kind, w, h), Image.fromarray(rgba, "RGBA")))
    images.append(("tiny_1x1", Image.fromarray(np.array([[[200, 10, 77]]], np.uint8), "RGB")))
    images.append(("tiny_3x2", Image.fromarray(rng.integers(0, 256, (2, 3, 4), dtype=np.uint8), "RGBA")))

    for name, im in images:
        src = save(im, name + ".png")
        for (tw, th) in targets(*im.size):
            for fname, f in FILTERS.items():
                exp = save(im.resize((tw, th), f), "%s_%s_%dx%d.png" % (name, fname, tw, th))
                lines.append("resize %s %s %s %d %d" % (src, exp, fname, tw, th))
                n += 1

    # A larger photo-like frame, up and down, every filter.
    big = Image.fromarray(make_rgb("smooth", 320, 180, rng), "RGB")
    src = save(big, "frame_320x180.png")
    for (tw, th) in ((640, 360), (160, 90), (427, 240)):
        for fname, f in FILTERS.items():
            exp = save(big.resize((tw, th), f), "frame_%s_%dx%d.png" % (fname, tw, th))
            lines.append("resize %s %s %s %d %d" % (src, exp, fname, tw, th))
            n += 1

    # Decoder variants: what we decode must equal what Pillow decodes.
    base = make_rgb("smooth", 45, 31, rng)
    alpha = make_alpha("disc", 45, 31, rng)
    rgb = Image.fromarray(base, "RGB")
    variants = [
        ("dec_gray.png", rgb.convert("L"), "RGB"),
        ("dec_gray_alpha.png", Image.merge("LA", (rgb.convert("L"), Image.fromarray(alpha, "L"))), "RGBA"),
        ("dec_palette.png", rgb.convert("P", palette=Image.ADAPTIVE, colors=64), "RGB"),
        ("dec_bilevel.png", rgb.convert("1"), "RGB"),
        ("dec_rgba.png", Image.fromarray(np.dstack([base, alpha]), "RGBA"), "RGBA"),
    ]
    pal = rgb.convert("P", palette=Image.ADAPTIVE, colors=16)
    pal.info["transparency"] = 3
    variants.append(("dec_palette_trns.png", pal, "RGBA"))
    for name, im, mode in variants:
        path = os.path.join(work, name)
        if name == "dec_palette_trns.png":
            im.save(path, transparency=3)
        else:
            im.save(path)
        exp = save(Image.open(path).convert(mode), name.replace(".png", "_expected.png"))
        lines.append("decode %s %s" % (path, exp))
    photo = Image.fromarray(make_rgb("smooth", 96, 64, rng), "RGB")
    for name, kw, im in (("dec_baseline.jpg", {"quality": 90}, photo),
                         ("dec_progressive.jpg", {"quality": 80, "progressive": True}, photo),
                         ("dec_444.jpg", {"quality": 95, "subsampling": 0}, photo),
                         ("dec_gray.jpg", {"quality": 90}, photo.convert("L"))):
        path = os.path.join(work, name)
        im.save(path, **kw)
        exp = save(Image.open(path).convert("RGB"), name.replace(".jpg", "_jpg_expected.png"))
        lines.append("decode %s %s" % (path, exp))
        # And resizing the decoded JPEG, as a renter sending a photo would.
        d = Image.open(path).convert("RGB")
        exp = save(d.resize((150, 100), Image.LANCZOS), name.replace(".jpg", "_jpg_lanczos3.png"))
        lines.append("resize %s %s lanczos3 150 100" % (path, exp))
        n += 1

    manifest = os.path.join(work, "manifest.txt")
    with open(manifest, "w") as f:
        f.write("\n".join(lines) + "\n")
    print("upscale_pillow: Pillow %s made %d resize cases and %d decode cases in %s"
          % (Image.__version__, n, len(lines) - n, work))
    sys.stdout.flush()
    os.execv(binary, [binary, manifest])


if __name__ == "__main__":
    sys.exit(main())
