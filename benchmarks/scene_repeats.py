"""Scene-level scoring's search for ground that overlapping scenes repeat
(``components.scene_repeats.find_repeats``): seconds and peak RSS for pairs of large
georeferenced scenes, against reading one scene whole.

For each size N (default 2048, 4096), three N x N 4-band uint16 scenes on one UTM grid: a,
b half a scene east of a (its west half a's east half, pixel for pixel) and c, another date
of a's footprint (other pixels, the same labels), compared in 256 px cells (``--cell``: a
resampled scene's native cell is larger, up to the whole scene). The comparison
reads the overlap windows of (a, b), (a, c) and (b, c); memory should stay at a few chunks
(``STRIP_VALUES``), whatever N. Each size runs in a fresh subprocess so
``resource.getrusage`` reports its own peak RSS. Prints one JSON document with the load
average before and after; never pass/fail on time.

    python benchmarks/scene_repeats.py [--sizes 2048 4096 8192] [--cell 256]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
CELL = 256


def _write(path: Path, array, transform) -> None:
    import rasterio

    with rasterio.open(path, "w", driver="GTiff", width=array.shape[-1],
                       height=array.shape[-2], count=array.shape[0], dtype=array.dtype.name,
                       crs="EPSG:32650", transform=transform, tiled=True, blockxsize=256,
                       blockysize=256) as dst:
        dst.write(array)


def make_scenes(folder: Path, size: int) -> None:
    import numpy as np
    from rasterio.transform import from_origin

    rng = np.random.default_rng(0)
    survey = rng.integers(0, 4000, (4, size, size + size // 2), dtype=np.uint16)
    labels = rng.integers(0, 3, (1, size, size + size // 2), dtype=np.uint8)
    other = rng.integers(0, 4000, (4, size, size), dtype=np.uint16)
    cuts = {"a": (survey[..., :size], labels[..., :size], 0),
            "b": (survey[..., size // 2:], labels[..., size // 2:], size),
            "c": (other, labels[..., :size], 0)}
    for name, (image, mask, east) in cuts.items():
        transform = from_origin(600000.0 + east, 3000000.0, 2.0, 2.0)
        _write(folder / f"{name}_image.tif", image, transform)
        _write(folder / f"{name}_mask.tif", mask, transform)


def _grids(folder: Path, cell: int) -> list:
    import rasterio

    from components.scene_repeats import SceneGrid

    grids = []
    for name in ("a", "b", "c"):
        with rasterio.open(folder / f"{name}_image.tif") as image:
            grids.append(SceneGrid(name, folder / f"{name}_image.tif",
                                   folder / f"{name}_mask.tif", "EPSG:32650",
                                   tuple(image.transform)[:6], image.height, image.width,
                                   cell))
    return grids


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _repeated_px(repeat) -> int:
    """Pixels of the flagged cells inside the repeat's window (cells may be cut by it)."""
    r0, r1, c0, c1 = repeat.rect
    cell = repeat.cell

    def sides(lo: int, hi: int, count: int) -> list[int]:
        first = lo // cell
        return [min(hi, (first + k + 1) * cell) - max(lo, (first + k) * cell)
                for k in range(count)]

    heights = sides(r0, r1, repeat.same.shape[0])
    widths = sides(c0, c1, repeat.same.shape[1])
    return sum(heights[i] * widths[j] for i, j in zip(*repeat.same.nonzero(), strict=True))


def compare(folder: Path, cell: int = CELL) -> dict:
    """find_repeats over the three scenes, in a process of its own."""
    from components.scene_repeats import find_repeats

    grids = _grids(folder, cell)
    before, start = _rss_mb(), time.perf_counter()
    repeats = find_repeats(grids)
    seconds = time.perf_counter() - start
    repeated = sum(_repeated_px(r) for found in repeats for r in found)
    return {"seconds": round(seconds, 2), "repeated_px": repeated,
            "rss_mb_before": round(before), "peak_rss_mb": round(_rss_mb())}


def read_whole(folder: Path) -> dict:
    """Scene a's image and mask read whole, in a process of its own: what a comparison
    holding whole scenes would cost at least."""
    import rasterio

    before, start = _rss_mb(), time.perf_counter()
    with rasterio.open(folder / "a_image.tif") as image, \
            rasterio.open(folder / "a_mask.tif") as mask:
        image.read()
        mask.read()
    return {"seconds": round(time.perf_counter() - start, 2), "rss_mb_before": round(before),
            "peak_rss_mb": round(_rss_mb())}


def _load() -> list[float]:
    return [round(v, 2) for v in os.getloadavg()]


def _child(*args: str) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", *args], check=True,
                         capture_output=True, text=True, cwd=REPO_ROOT,
                         env={**os.environ, "PYTHONPATH": str(REPO_ROOT)})
    return json.loads(out.stdout.strip().splitlines()[-1]) if out.stdout.strip() else {}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[2048, 4096])
    parser.add_argument("--cell", type=int, default=CELL, help="cell side in px")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        what, folder = args.child
        if what.startswith("make"):
            make_scenes(Path(folder), int(what[4:]))
        else:
            print(json.dumps(compare(Path(folder), int(what[7:])) if what.startswith("compare")
                             else read_whole(Path(folder))))
        return
    results = []
    for size in args.sizes:
        with tempfile.TemporaryDirectory(prefix="scene-repeats-") as tmp:
            _child(f"make{size}", tmp)
            load_before = _load()
            # Alternated, so the machine's drift hits both alike.
            found, whole = _child(f"compare{args.cell}", tmp), _child("read", tmp)
            results.append({"size": size, "cell": args.cell,
                            "scene_mb": round(size * size * 9 / 2 ** 20),
                            "expected_repeated_px": size * size // 2, "find_repeats": found,
                            "read_one_scene_whole": whole,
                            "seconds_ratio": round(found["seconds"] / max(whole["seconds"],
                                                                          0.01), 1),
                            "load_before": load_before, "load_after": _load()})
    print(json.dumps({"benchmark": "scene_repeats", "machine": platform.machine(),
                      "cpus": os.cpu_count(), "results": results}, indent=2))


if __name__ == "__main__":
    main()
