#!/usr/bin/env bash
# bench_upscale.sh - the upscale resampler against Pillow, one thread each.
#
# Usage: bench/bench_upscale.sh [BUILD_DIR] [RUNS] [CHANNELS]
#   BUILD_DIR  a configured build (default: build); bench_upscale is built there
#   RUNS       timed runs per filter, the median is reported (default 7)
#   CHANNELS   3 (RGB, default) or 4 (RGBA)
#
# bench_upscale makes a 1920x1080 frame, saves it as PNG and times
# resample_image to 3840x2160 for each filter; then Python times Pillow's
# Image.resize on the same PNG's pixels, same size and filter, in the same
# run.  Prints one line per filter with both medians and the speed-up
# (Pillow's time / ours).  Wall-clock medians; CPU-time medians are shown
# too, since they are less disturbed by other work on the machine.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build}
runs=${2:-7}
channels=${3:-3}
case $runs in '' | *[!0-9]*) echo "$0: RUNS must be a whole number" >&2; exit 2 ;; esac
case $channels in 3 | 4) ;; *) echo "$0: CHANNELS must be 3 or 4" >&2; exit 2 ;; esac
if [ ! -f "$build/build.ninja" ] && [ ! -f "$build/Makefile" ]; then
    echo "$0: $build is not a configured build; run: cmake -S $root -B $build -G Ninja" >&2
    exit 2
fi
cmake --build "$build" --target bench_upscale >/dev/null

py=""
for cand in /usr/bin/python3 python3; do
    if command -v "$cand" >/dev/null 2>&1 && "$cand" -c "import PIL" 2>/dev/null; then
        py=$cand
        break
    fi
done
if [ -z "$py" ]; then
    echo "$0: no python3 with Pillow (install with scripts/deps.sh)" >&2
    exit 1
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/bench-upscale.XXXXXX")
trap 'rm -rf "$work"' EXIT
frame=$work/frame.png

"$build/bench/bench_upscale" --in 1920x1080 --out 3840x2160 --channels "$channels" --runs "$runs" \
    --save "$frame" --json >"$work/ours.jsonl"

# Pillow is single-threaded in resize; the variables keep numpy's BLAS (not
# used here) from starting threads anyway.
OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 "$py" - "$frame" "$runs" "$channels" "$work/ours.jsonl" <<'EOF'
import json, statistics, sys, time
import PIL
from PIL import Image

frame, runs, channels, ours_path = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
im = Image.open(frame)
im = im.convert("RGBA" if channels == 4 else "RGB")
im.load()
filters = {"nearest": Image.NEAREST, "bilinear": Image.BILINEAR,
           "bicubic": Image.BICUBIC, "lanczos3": Image.LANCZOS}
ours = {}
with open(ours_path) as f:
    for line in f:
        r = json.loads(line)
        ours[r["filter"]] = r
print("upscale 1920x1080 -> 3840x2160, %s, one thread, median of %d runs (Pillow %s)"
      % ("RGBA" if channels == 4 else "RGB", runs, PIL.__version__))
print("%-9s %12s %12s %9s   %s" % ("filter", "p2c2r ms", "Pillow ms", "speed-up", "(CPU ms: p2c2r / Pillow)"))
for name, f in filters.items():
    im.resize((3840, 2160), f)  # warm-up, as bench_upscale does
    wall, cpu = [], []
    for _ in range(runs):
        t0, c0 = time.perf_counter(), time.thread_time()
        im.resize((3840, 2160), f)
        cpu.append((time.thread_time() - c0) * 1e3)
        wall.append((time.perf_counter() - t0) * 1e3)
    pw, pc = statistics.median(wall), statistics.median(cpu)
    o = ours[name]
    print("%-9s %12.2f %12.2f %8.1fx   (%.2f / %.2f)"
          % (name, o["median_ms"], pw, pw / o["median_ms"], o["cpu_median_ms"], pc))
EOF
