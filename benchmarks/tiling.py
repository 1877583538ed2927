"""Tiling throughput and memory: tiles/s, MB/s and peak RSS for synthetic scenes of growing
size (default 4k², 8k², 16k² pixels x 4 bands uint16).

Each scene is generated window by window into a temp dir (never whole in memory), and each
size is tiled in a fresh subprocess so ``resource.getrusage`` reports that size's own peak
RSS. Peak RSS should stay flat as scenes grow, since tiling reads one window per patch.
Prints one JSON document with inputs, figures (wall-clock MB/s, CPU seconds of all threads,
the 1-minute load average before and after each size) and machine info; never pass/fail on
time.

    python benchmarks/tiling.py [--sizes 4096 8192 16384] [--patch 256] [--bands 4]
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


def generate_scene(root: Path, size: int, bands: int, seed: int = 0) -> int:
    """Write an ingested-layout scene (uint16 image + uint8 mask) strip by strip; return
    the bytes of raw pixels written."""
    import numpy as np
    import rasterio
    from rasterio.transform import from_origin
    from rasterio.windows import Window

    from components.artifacts import ClassInfo, ClassMap

    scenes = root / "scenes"
    scenes.mkdir(parents=True)
    transform = from_origin(500000.0, 4500000.0, 0.5, 0.5)
    common = {"driver": "GTiff", "width": size, "height": size, "crs": "EPSG:32633",
              "transform": transform, "BIGTIFF": "IF_SAFER"}
    if size >= 256:
        common.update(tiled=True, blockxsize=256, blockysize=256)
    rng = np.random.default_rng(seed)
    rows = 256
    with rasterio.open(scenes / "bench_image.tif", "w", count=bands, dtype="uint16",
                       nodata=0, **common) as img, \
            rasterio.open(scenes / "bench_mask.tif", "w", count=1, dtype="uint8",
                          nodata=255, **common) as msk:
        cols = np.arange(size)
        for row in range(0, size, rows):
            height = min(rows, size - row)
            window = Window(0, row, size, height)
            yy = (row + np.arange(height))[:, None]
            field = np.sin(cols[None, :] / 97.0) + np.cos(yy / 131.0)
            labels = np.digitize(field, [-0.8, 0.0, 0.8]).astype(np.uint8)
            noise = rng.integers(0, 200, (bands, height, size), dtype=np.uint16)
            image = (1000 + 500 * labels[None].astype(np.uint16)) + noise
            if row == 0:
                image[:, :4] = 0  # a nodata strip at the top edge
                labels[:4] = 255
            img.write(image, window=window)
            msk.write(labels[None], window=window)
    ClassMap(classes=[ClassInfo(id=i, name=f"class_{i}", color="#000000") for i in range(4)]
             ).save(root / "classes.json")
    return size * size * (bands * 2 + 1)


def worker(scene_dir: Path, out_dir: Path, patch: int) -> dict:
    """Runs in a fresh process: tile one scene, report time, tiles and peak RSS."""
    from components.tile import TileOptions, tile_scenes

    before = resource.getrusage(resource.RUSAGE_SELF)
    start = time.perf_counter()
    manifest = tile_scenes(scene_dir, out_dir, TileOptions(patch_size=patch))
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"seconds": elapsed, "cpu_seconds": cpu, "tiles": len(manifest.tiles),
            "peak_rss_mib_after_imports": before.ru_maxrss / 1024,
            "peak_rss_mib": after.ru_maxrss / 1024}


def machine() -> dict:
    import numpy
    import rasterio

    mem_kib = next((int(line.split()[1]) for line in Path("/proc/meminfo").read_text()
                    .splitlines() if line.startswith("MemTotal")), None) \
        if Path("/proc/meminfo").exists() else None
    return {"platform": platform.platform(), "processor": platform.processor(),
            "cpus": os.cpu_count(), "memory_gib": mem_kib / 2**20 if mem_kib else None,
            "python": platform.python_version(), "numpy": numpy.__version__,
            "rasterio": rasterio.__version__, "gdal": rasterio.__gdal_version__}


def _child(arguments: list[str], env: dict) -> str:
    """Run this script in a fresh process; return its last stdout line."""
    proc = subprocess.run([sys.executable, __file__, *arguments], env=env, capture_output=True,
                          text=True)
    if proc.returncode != 0:
        sys.exit(f"benchmark step {arguments} failed:\n{proc.stderr}")
    return proc.stdout.strip().splitlines()[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[4096, 8192, 16384])
    parser.add_argument("--patch", type=int, default=256)
    parser.add_argument("--bands", type=int, default=4)
    parser.add_argument("--worker", nargs=2, metavar=("SCENE_DIR", "OUT_DIR"),
                        help=argparse.SUPPRESS)
    parser.add_argument("--generate", nargs=2, metavar=("SCENE_DIR", "SIZE"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(Path(args.worker[0]), Path(args.worker[1]), args.patch)))
        return
    if args.generate:
        print(generate_scene(Path(args.generate[0]), int(args.generate[1]), args.bands))
        return
    results = []
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    for size in args.sizes:
        with tempfile.TemporaryDirectory(prefix="segpipe-bench-") as tmp:
            start = time.perf_counter()
            # Generation runs in its own process too: Linux carries a parent's peak RSS into
            # the children it forks, so this process must stay small.
            raw_bytes = int(_child(["--bands", str(args.bands), "--generate",
                                    str(Path(tmp) / "in"), str(size)], env))
            generate_seconds = time.perf_counter() - start
            load_before = os.getloadavg()[0]
            figures = json.loads(_child(["--patch", str(args.patch), "--worker",
                                         str(Path(tmp) / "in"), str(Path(tmp) / "out")], env))
            load_after = os.getloadavg()[0]
            results.append({
                "scene_pixels": f"{size}x{size}", "scene_raw_mb": raw_bytes / 1e6,
                "generate_seconds": round(generate_seconds, 2),
                "tile_seconds": round(figures["seconds"], 2), "tiles": figures["tiles"],
                "tiles_per_s": round(figures["tiles"] / figures["seconds"], 1),
                "mb_per_s": round(raw_bytes / 1e6 / figures["seconds"], 1),
                # CPU seconds of all threads: comparable between runs on a busy machine,
                # where wall-clock figures follow the other processes' load.
                "cpu_seconds": round(figures["cpu_seconds"], 2),
                "mb_per_cpu_s": round(raw_bytes / 1e6 / max(figures["cpu_seconds"], 1e-9), 1),
                "load_average_1min": [round(load_before, 2), round(load_after, 2)],
                "peak_rss_mib": round(figures["peak_rss_mib"], 1),
                "peak_rss_mib_after_imports": round(figures["peak_rss_mib_after_imports"], 1),
            })
    print(json.dumps({
        "benchmark": "tiling",
        "inputs": {"sizes": args.sizes, "patch_size": args.patch, "bands": args.bands,
                   "dtype": "uint16", "mask": "uint8", "stride": args.patch,
                   "output": "uncompressed GeoTIFF tile pairs"},
        "results": results,
        "peak_rss_growth_mib": round(results[-1]["peak_rss_mib"] - results[0]["peak_rss_mib"], 1),
        "machine": machine(),
    }, indent=2))


if __name__ == "__main__":
    sys.path.insert(0, str(REPO_ROOT))
    main()
