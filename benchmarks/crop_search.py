"""The tile step's search for crops of one image among scenes without a CRS: seconds and
peak RSS of ``find_overlaps`` (thumbnails) and ``find_neighbours`` (edge profiles) for a
growing number of same-size scenes (default 5k, 10k, 20k), to size their caps
(``crop_overlaps.MAX_SCENES``, ``neighbours.MAX_SCENES``).

Scenes are synthetic photos cut into 3x3 half-overlapping crops; thumbnails and edges are
made from arrays at thumbnail size (what reading 256 px chips would give), so the figures
are the searches alone, not the reads. Each count runs in a fresh subprocess so
``resource.getrusage`` reports its own peak RSS. Prints one JSON document with the 1-minute
load average before and after each count; never pass/fail on time.

    python benchmarks/crop_search.py [--counts 5000 10000 20000] [--search overlaps touching]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


def _scenes(count: int):
    """``count`` crops (64 px thumbnails of 256 px chips) of 3x3-cut synthetic photos, with
    edge profiles of 64 bins (``neighbours.SAMPLES``) taken at the same size."""
    import numpy as np

    from components.crop_overlaps import Thumbnail
    from components.neighbours import Edges

    rng = np.random.default_rng(0)
    size, stride = 64, 32
    full = size + 2 * stride
    yy, xx = np.mgrid[0:full, 0:full] / full
    thumbs, edges = [], []
    while len(thumbs) < count:
        photo = sum(np.sin(2 * np.pi * (fx * xx + fy * yy) + rng.uniform(0, 6))
                    for fx, fy in rng.uniform(-6, 6, (8, 2))) * 25 + 128
        photo = (photo + rng.normal(0, 2, photo.shape)).astype(np.float32)
        for r in range(3):
            for c in range(3):
                crop = photo[r * stride:r * stride + size, c * stride:c * stride + size]
                name = f"s{len(thumbs):06d}"
                smooth = (crop[:-1, :-1] + crop[1:, :-1] + crop[:-1, 1:] + crop[1:, 1:]) / 4
                thumbs.append(Thumbnail(name, 256, 256, 3, smooth))
                sides = {"left": (crop[:, 0], crop[:, 1]), "right": (crop[:, -1], crop[:, -2]),
                         "top": (crop[0], crop[1]), "bottom": (crop[-1], crop[-2])}
                edges.append(Edges(name, 256, 256, {k: (a.astype(np.float64),
                                                        b.astype(np.float64))
                                                    for k, (a, b) in sides.items()}))
    return thumbs[:count], edges[:count]


def run_one(count: int, search: str) -> dict:
    from components.crop_overlaps import find_overlaps
    from components.neighbours import find_neighbours

    thumbs, edges = _scenes(count)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    start = time.perf_counter()
    pairs = find_overlaps(thumbs) if search == "overlaps" else find_neighbours(edges)[0]
    return {"count": count, "search": search, "seconds": round(time.perf_counter() - start, 2),
            "scenes_paired": len(pairs), "rss_mb_before": round(before),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--counts", type=int, nargs="+", default=[5000, 10000, 20000])
    parser.add_argument("--search", nargs="+", default=["overlaps", "touching"],
                        choices=["overlaps", "touching"])
    parser.add_argument("--one", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(run_one(int(args.one[0]), args.one[1])))
        return
    results = []
    for count in args.counts:
        for search in args.search:
            load = os.getloadavg()[0]
            out = subprocess.run([sys.executable, __file__, "--one", str(count), search],
                                 capture_output=True, text=True, check=True,
                                 env={**os.environ, "PYTHONPATH": str(REPO_ROOT)})
            results.append({**json.loads(out.stdout.splitlines()[-1]),
                            "load_1min_before": round(load, 2),
                            "load_1min_after": round(os.getloadavg()[0], 2)})
    print(json.dumps({"results": results, "machine": {
        "python": platform.python_version(), "cpus": os.cpu_count(),
        "platform": platform.platform()}}, indent=2))


if __name__ == "__main__":
    main()
