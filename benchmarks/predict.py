"""Large-scene prediction and scoring-server benchmark. Prints JSON; never passes or fails.

Scene figures: 4k², 8k² and 16k² four-band uint16 GeoTIFFs (tiled, sparse: only the rows
predicted are written), each predicted in a fresh subprocess over a full-width band of
``--band-rows`` rows with ``segpipe predict``'s code path (windowed reads, blending, tiled
deflate GeoTIFF output). A full-width band has the memory profile of the whole scene (the
predictor holds one strip of windows per panel), and its time per pixel is the scene's.
Reported per run: megapixels/s, peak RSS, and time relative to the floor: the same model's
``predict_on_batch`` on in-memory batches of the same size, timed on a sample of batches and
scaled to the number of windows the run used (x8 with TTA). Both are also measured in
process CPU time (all threads), which other load on a shared machine disturbs far less than
wall time.

Server figures: ``segpipe serve`` on loopback, 512x512 requests as a tensor (JSON numbers)
and as a base64 GeoTIFF, at concurrency 1 and 4: requests/s, p50 and p99 latency (with a
handful of requests p99 is close to the maximum).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

BANDS, CLASSES, WINDOW, BATCH = 4, 3, 256, 8
MODEL_PARAMS = {"depth": 4, "filters": 8}


def config_fields() -> dict:
    return dict(in_channels=BANDS, num_classes=CLASSES, class_names=["a", "b", "c"],
                class_colors=["#FF0000", "#00FF00", "#0000FF"], mean=[1000.0] * BANDS,
                std=[300.0] * BANDS, nodata=0, patch_size=WINDOW, batch_size=BATCH,
                model_stride=2 ** (MODEL_PARAMS["depth"] - 1))


def make_scene(path: Path, size: int, rows: int) -> None:
    """A size x size sparse GeoTIFF with data in rows [0, rows)."""
    import rasterio
    from rasterio.transform import from_origin
    from rasterio.windows import Window

    rng = np.random.default_rng(size)
    profile = dict(driver="GTiff", width=size, height=size, count=BANDS, dtype="uint16",
                   crs="EPSG:32644", transform=from_origin(600000, 2700000, 0.5, 0.5),
                   nodata=0, tiled=True, blockxsize=256, blockysize=256, sparse_ok=True,
                   BIGTIFF="YES")
    x = np.linspace(0, 40, size, dtype=np.float32)
    with rasterio.open(path, "w", **profile) as dst:
        for top in range(0, min(size, rows), 256):
            h = min(256, rows - top)
            y = np.linspace(top / 50, (top + h) / 50, h, dtype=np.float32)[:, None]
            base = 1000 + 400 * np.sin(x[None, :] + y) * np.cos(y * 0.7)
            data = base[None] + rng.normal(0, 40, (BANDS, h, size)).astype(np.float32)
            dst.write(np.clip(data, 1, 65535).astype("uint16"), window=Window(0, top, size, h))


def cpu_seconds() -> float:
    """This process's CPU time, all threads: steadier than wall time on a shared machine."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def worker(args: argparse.Namespace) -> None:
    """One scene run in this fresh process; prints its JSON line."""
    import keras
    from rasterio.windows import Window

    from serving.blending import Grid, grid_step
    from serving.config import ServingConfig
    from serving.predict import ScenePredictor, keras_predict_fn
    from serving.scene import predict_scene

    model = keras.saving.load_model(args.model, compile=False)
    config = ServingConfig(**config_fields())
    predictor = ScenePredictor(keras_predict_fn(model), config)
    predictor.warm_up()
    warm = np.zeros((BATCH, WINDOW, WINDOW, BANDS), np.float32)
    region = Window(0, 0, args.size, args.rows)
    start, cpu_start = time.perf_counter(), cpu_seconds()
    predict_scene(predictor, Path(args.scene), Path(args.out), tta=args.tta, region=region)
    seconds, cpu = time.perf_counter() - start, cpu_seconds() - cpu_start
    peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    step = grid_step(WINDOW, config.overlap)
    rows, cols = Grid(args.rows, WINDOW, step), Grid(args.size, WINDOW, step)
    windows = rows.count * cols.count
    # Batches as the predictor forms them: per strip of windows, batch_size at a time.
    batches_per_strip = -(-cols.count // BATCH)
    forward_calls = rows.count * batches_per_strip * (8 if args.tta else 1)
    sample = np.random.default_rng(0).normal(size=warm.shape).astype(np.float32)
    n_sample = min(args.floor_batches, forward_calls)
    t0, cpu0 = time.perf_counter(), cpu_seconds()
    for _ in range(n_sample):
        model.predict_on_batch(sample)
    per_call = (time.perf_counter() - t0) / n_sample
    cpu_per_call = (cpu_seconds() - cpu0) / n_sample
    # Partial batches are cheaper than full ones: scale by windows, not by calls.
    scale = windows * (8 if args.tta else 1) / BATCH
    floor, cpu_floor = per_call * scale, cpu_per_call * scale
    print(json.dumps({
        "scene": f"{args.size}x{args.size}", "predicted_rows": args.rows, "tta": args.tta,
        "megapixels": round(args.size * args.rows / 1e6, 3), "windows": windows,
        "seconds": round(seconds, 2),
        "megapixels_per_s": round(args.size * args.rows / 1e6 / seconds, 4),
        "forward_floor_seconds": round(floor, 2),
        "time_over_floor": round(seconds / floor, 3),
        "cpu_seconds": round(cpu, 2), "forward_floor_cpu_seconds": round(cpu_floor, 2),
        "cpu_time_over_floor": round(cpu / cpu_floor, 3),
        "floor_sampled_batches": n_sample, "peak_rss_mb": round(peak_rss_mb, 1)}))


def run_scene(tmp: Path, model: Path, size: int, rows: int, tta: bool,
              floor_batches: int) -> dict:
    scene = tmp / f"scene_{size}.tif"
    if not scene.exists():
        make_scene(scene, size, rows)
    command = [sys.executable, __file__, "--worker", "--model", str(model), "--scene",
               str(scene), "--out", str(tmp / f"mask_{size}_{int(tta)}.tif"), "--size",
               str(size), "--rows", str(rows), "--floor-batches", str(floor_batches)]
    if tta:
        command.append("--tta")
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT), TF_CPP_MIN_LOG_LEVEL="3")
    result = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    if result.returncode:
        return {"scene": f"{size}x{size}", "tta": tta, "error": result.stderr[-2000:]}
    return json.loads(result.stdout.strip().splitlines()[-1])


def _request_payloads() -> dict[str, dict]:
    from rasterio.io import MemoryFile

    image = np.random.default_rng(0).integers(1, 3000, (512, 512, BANDS)).astype("uint16")
    with MemoryFile() as mem:
        with mem.open(driver="GTiff", width=512, height=512, count=BANDS,
                      dtype="uint16") as dst:
            dst.write(np.moveaxis(image, -1, 0))
        b64 = base64.b64encode(mem.read()).decode()
    return {"tensor": {"inputs": [image.tolist()]},
            "base64_geotiff": {"dataframe_split": {"columns": ["image"], "data": [[b64]]}}}


def _latencies(url: str, payload: str, concurrency: int, count: int) -> dict:
    import requests

    def one(_: int) -> float:
        t0 = time.perf_counter()
        response = requests.post(url, data=payload, timeout=600,
                                 headers={"Content-Type": "application/json"})
        response.raise_for_status()
        return time.perf_counter() - t0

    start = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        latencies = sorted(pool.map(one, range(count)))
    wall = time.perf_counter() - start
    p99_index = min(len(latencies) - 1, int(round(0.99 * (len(latencies) - 1))))
    return {"concurrency": concurrency, "requests": count,
            "requests_per_s": round(count / wall, 3),
            "p50_s": round(statistics.median(latencies), 3),
            "p99_s": round(latencies[p99_index], 3)}


def run_server(tmp: Path, model_path: Path, count: int) -> dict:
    import mlflow

    from serving.config import ServingConfig
    from serving.pyfunc import log_segmentation_model
    from tests.serving.server import free_port, segpipe_serve

    tracking_uri = f"sqlite:///{tmp / 'mlflow.db'}"
    mlflow.set_tracking_uri(tracking_uri)
    experiment = mlflow.create_experiment("bench", artifact_location=(tmp / "art").as_uri())
    with mlflow.start_run(experiment_id=experiment):
        info = log_segmentation_model(model_path, ServingConfig(**config_fields()))
    local = mlflow.artifacts.download_artifacts(info.model_uri, dst_path=str(tmp / "model"))
    started = time.perf_counter()
    # The server opens a tracking store at start: keep it in tmp, not in the working dir.
    server = segpipe_serve(local, free_port(), tmp / "server.log", timeout_s=600,
                           MLFLOW_TRACKING_URI=tracking_uri)
    try:
        server.wait_ready(timeout=300)
        startup = time.perf_counter() - started
        url = f"{server.url}/invocations"
        results = {"startup_s": round(startup, 1), "request": "512x512x4 uint16, one image"}
        for name, payload in _request_payloads().items():
            body = json.dumps(payload)
            _latencies(url, body, 1, 1)  # warm-up
            results[name] = [_latencies(url, body, 1, count),
                             _latencies(url, body, 4, 2 * count)]
        return results
    finally:
        server.stop()


def machine() -> dict:
    import keras
    import mlflow
    import tensorflow as tf

    return {"platform": platform.platform(), "python": platform.python_version(),
            "cpus": os.cpu_count(), "load_average_1m": round(os.getloadavg()[0], 2),
            "memory_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
                               / 2**30, 1),
            "tensorflow": tf.__version__, "keras": keras.__version__,
            "mlflow": mlflow.__version__}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--model"), parser.add_argument("--scene"), parser.add_argument("--out")
    parser.add_argument("--size", type=int, default=0)
    parser.add_argument("--tta", action="store_true")
    parser.add_argument("--rows", type=int, default=512)
    parser.add_argument("--sizes", type=int, nargs="+", default=[4096, 8192, 16384])
    parser.add_argument("--band-rows", type=int, default=512)
    parser.add_argument("--tta-size", type=int, default=4096)
    parser.add_argument("--tta-rows", type=int, default=256)
    parser.add_argument("--floor-batches", type=int, default=24)
    parser.add_argument("--requests", type=int, default=4)
    parser.add_argument("--skip-server", action="store_true")
    parser.add_argument("--skip-scenes", action="store_true")
    args = parser.parse_args()
    if args.worker:
        return worker(args)

    import keras

    from segmodels import build_model

    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="segpipe-bench-") as tmp_name:
        tmp = Path(tmp_name)
        keras.utils.set_random_seed(0)
        model = build_model("unet", num_classes=CLASSES, in_channels=BANDS, **MODEL_PARAMS)
        model_path = tmp / "model.keras"
        model.save(model_path)
        scenes = []
        if not args.skip_scenes:
            scenes = [run_scene(tmp, model_path, size, args.band_rows, False,
                                args.floor_batches) for size in args.sizes]
            tta_scene = tmp / "tta"
            tta_scene.mkdir()
            scenes.append(run_scene(tta_scene, model_path, args.tta_size, args.tta_rows, True,
                                    args.floor_batches))
        server = None if args.skip_server else run_server(tmp, model_path, args.requests)
    print(json.dumps({
        "benchmark": "predict",
        "inputs": {"model": {"name": "unet", **MODEL_PARAMS, "params": model.count_params()},
                   "window": WINDOW, "overlap": 0.5, "batch_size": BATCH, "bands": BANDS,
                   "classes": CLASSES, "band_rows": args.band_rows,
                   "tta_scene": f"{args.tta_size}x{args.tta_size}", "tta_rows": args.tta_rows},
        "scenes": scenes, "server": server, "machine": machine(),
        "total_seconds": round(time.perf_counter() - started, 1)}, indent=2))


if __name__ == "__main__":
    main()
