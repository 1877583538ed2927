"""Large-scene prediction and scoring-server benchmark. Prints JSON; never passes or fails.

Scene figures: 4k², 8k² and 16k² four-band uint16 GeoTIFFs (tiled, sparse: only the rows
predicted are written), each predicted in a fresh process (benchmarks/_predict_worker.py)
over a full-width band of ``--band-rows`` rows with ``segpipe predict``'s code path. A
full-width band has the memory profile of the whole scene (the predictor holds one strip of
windows per panel), and its time per pixel is the scene's once the band is tall enough that
opening and closing files weigh as little. Reported per scene and ``--runtimes`` entry:
megapixels/s, peak RSS, and time over the floor, the same forward pass (Keras, or the
OpenVINO export serving runs on CPU) alone on batches of exactly the sizes the run used;
medians of ``--repeats`` runs, each paired with a floor.

Classic figures: the smooth-blending code people copy (Chevalier, 2017; D4 TTA, overlap 0.5,
whole scene in memory) against ``segpipe predict --tta`` on the same ``--classic-size``²
scene, each in a fresh process: seconds and peak RSS.

Server figures: ``segpipe serve`` on loopback, one 512x512 four-band image per request as a
tensor (JSON numbers), a base64 GeoTIFF and a base64 ``.npy`` array, at concurrency 1 and 4:
requests/s, p50 and p99 latency (with a handful of requests p99 is close to the maximum), and
each route's latency over the same model's in-process ``ScenePredictor.predict_array`` on the
same image (alternating calls in this process with requests, paired).

``--models`` picks the networks the scene figures run: ``unet`` (depth 4, 8 filters, the
default) and ``light`` (depth 2, 4 filters: the cheapest forward pass for the same blending
work, so the worst case for the time over the floor).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import platform
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
MODELS = {"unet": {"depth": 4, "filters": 8}, "light": {"depth": 2, "filters": 4}}


def serving_config():
    from serving.config import ServingConfig

    return ServingConfig(
        in_channels=BANDS, num_classes=CLASSES, class_names=["a", "b", "c"],
        class_colors=["#FF0000", "#00FF00", "#0000FF"], mean=[1000.0] * BANDS,
        std=[300.0] * BANDS, nodata=0, patch_size=WINDOW, batch_size=BATCH,
        model_stride=max(2 ** (params["depth"] - 1) for params in MODELS.values()))


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


def run_worker(mode: str, tmp: Path, model: Path, size: int, rows: int, tta: bool = False,
               repeats: int = 1, runtime: str = "keras") -> dict:
    """One benchmarks/_predict_worker.py process; its JSON line, or the error it ended with."""
    scene = tmp / f"scene_{size}_{rows}.tif"
    if not scene.exists():
        make_scene(scene, size, rows)
    command = [sys.executable, str(REPO_ROOT / "benchmarks" / "_predict_worker.py"), mode,
               "--model", str(model), "--scene", str(scene),
               "--out", str(tmp / f"mask_{mode}_{size}_{rows}_{int(tta)}.tif"),
               "--size", str(size), "--rows", str(rows), "--repeats", str(repeats),
               "--runtime", runtime]
    if tta:
        command.append("--tta")
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT), TF_CPP_MIN_LOG_LEVEL="3")
    result = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    if result.returncode:
        return {"mode": mode, "scene": f"{size}x{rows}", "tta": tta,
                "error": result.stderr[-2000:]}
    return json.loads(result.stdout.strip().splitlines()[-1])


def compare_with_classic(tmp: Path, model: Path, size: int) -> dict:
    classic = run_worker("classic", tmp, model, size, size)
    ours = run_worker("segpipe", tmp, model, size, size, tta=True)
    comparison = {"scene": f"{size}x{size}", "tta": True, "overlap": 0.5, "classic": classic,
                  "segpipe": ours}
    if "error" not in classic and "error" not in ours:
        comparison["speedup"] = round(classic["seconds"] / ours["seconds"], 3)
        comparison["cpu_speedup"] = round(classic["cpu_seconds"] / ours["cpu_seconds"], 3)
        comparison["memory_ratio"] = round(classic["peak_rss_over_loaded_model_mb"]
                                           / max(ours["peak_rss_over_loaded_model_mb"], 1), 2)
    return comparison


def _image() -> np.ndarray:
    return np.random.default_rng(0).integers(1, 3000, (512, 512, BANDS)).astype("uint16")


def _request_payloads(image: np.ndarray) -> dict[str, dict]:
    import io

    from rasterio.io import MemoryFile

    with MemoryFile() as mem:
        with mem.open(driver="GTiff", width=512, height=512, count=BANDS,
                      dtype="uint16") as dst:
            dst.write(np.moveaxis(image, -1, 0))
        geotiff = base64.b64encode(mem.read()).decode()
    buffer = io.BytesIO()
    np.save(buffer, image, allow_pickle=False)
    npy = base64.b64encode(buffer.getvalue()).decode()
    return {"tensor": {"inputs": [image.tolist()]},
            "base64_geotiff": {"dataframe_split": {"columns": ["image"], "data": [[geotiff]]}},
            "npy": {"dataframe_split": {"columns": ["npy"], "data": [[npy]]}}}


def _latencies(url: str, payload: str, concurrency: int, count: int) -> dict:
    import requests

    def one(_: int) -> float:
        t0 = time.perf_counter()
        response = requests.post(url, data=payload, timeout=600,
                                 headers={"Content-Type": "application/json"})
        if response.status_code != 200:
            raise RuntimeError(f"{response.status_code}: {response.text[:300]}")
        return time.perf_counter() - t0

    start = time.perf_counter()
    try:
        with ThreadPoolExecutor(concurrency) as pool:
            latencies = sorted(pool.map(one, range(count)))
    except RuntimeError as exc:
        return {"concurrency": concurrency, "error": str(exc)}
    wall = time.perf_counter() - start
    p99_index = min(len(latencies) - 1, int(round(0.99 * (len(latencies) - 1))))
    return {"concurrency": concurrency, "requests": count,
            "requests_per_s": round(count / wall, 3),
            "p50_s": round(statistics.median(latencies), 3),
            "p99_s": round(latencies[p99_index], 3)}


def in_process_predictor(local_model: str):
    """The logged model's own ScenePredictor in this process (the runtime the server runs,
    serving/runtime.py), traced."""
    import mlflow

    model = mlflow.pyfunc.load_model(local_model).unwrap_python_model()
    return model.predictor, model.runtime


def paired_with_in_process(url: str, body: str, predictor, image: np.ndarray,
                           count: int) -> dict:
    """In-process predict_array and one request through the server, alternately (the two
    processes never compete), so the machine's drift hits both alike: medians and the
    median of the per-pair ratios."""
    import requests

    local, remote = [], []
    for _ in range(count):
        start = time.perf_counter()
        predictor.predict_array(image)
        local.append(time.perf_counter() - start)
        start = time.perf_counter()
        requests.post(url, data=body, timeout=600,
                      headers={"Content-Type": "application/json"}).raise_for_status()
        remote.append(time.perf_counter() - start)
    return {"pairs": count, "in_process_s": round(statistics.median(local), 3),
            "server_s": round(statistics.median(remote), 3),
            "server_over_in_process": round(statistics.median(
                r / v for r, v in zip(remote, local, strict=True)), 3)}


def run_server(tmp: Path, model_path: Path, count: int) -> dict:
    import mlflow

    from serving.pyfunc import log_segmentation_model
    from tests.serving.server import free_port, segpipe_serve

    tracking_uri = f"sqlite:///{tmp / 'mlflow.db'}"
    mlflow.set_tracking_uri(tracking_uri)
    experiment = mlflow.create_experiment("bench", artifact_location=(tmp / "art").as_uri())
    with mlflow.start_run(experiment_id=experiment):
        info = log_segmentation_model(model_path, serving_config())
    local = mlflow.artifacts.download_artifacts(info.model_uri, dst_path=str(tmp / "model"))
    image = _image()
    started = time.perf_counter()
    # The server opens a tracking store at start: keep it in tmp, not in the working dir.
    server = segpipe_serve(local, free_port(), tmp / "server.log", timeout_s=600,
                           MLFLOW_TRACKING_URI=tracking_uri)
    try:
        server.wait_ready(timeout=300)
        startup = time.perf_counter() - started
        url = f"{server.url}/invocations"
        predictor, runtime = in_process_predictor(local)
        predictor.predict_array(image)
        results = {"startup_s": round(startup, 1), "request": "512x512x4 uint16, one image",
                   "runtime": runtime}
        for name, payload in _request_payloads(image).items():
            body = json.dumps(payload)
            _latencies(url, body, 1, 1)  # warm-up
            runs = [_latencies(url, body, 1, count), _latencies(url, body, 4, 2 * count)]
            if "error" not in runs[0]:
                runs.append(paired_with_in_process(url, body, predictor, image, count))
            if "requests_per_s" in runs[0] and "requests_per_s" in runs[1]:
                runs[1]["requests_per_s_over_concurrency_1"] = round(
                    runs[1]["requests_per_s"] / runs[0]["requests_per_s"], 3)
            results[name] = runs
        return results
    finally:
        server.stop()


def machine() -> dict:
    import keras
    import mlflow
    import tensorflow as tf

    return {"platform": platform.platform(), "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "load_average_at_end": [round(load, 2) for load in os.getloadavg()],
            "memory_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
                               / 2**30, 1),
            "tensorflow": tf.__version__, "keras": keras.__version__,
            "mlflow": mlflow.__version__}


def main() -> None:
    from serving import quick_exit

    quick_exit.install()  # the figures are taken before exit; the exit's last GC is seconds
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[4096, 8192, 16384])
    parser.add_argument("--band-rows", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--tta-size", type=int, default=4096)
    parser.add_argument("--tta-rows", type=int, default=128)
    parser.add_argument("--classic-size", type=int, default=2048,
                        help="square scene for the comparison with the classic code; 0: skip")
    parser.add_argument("--models", nargs="+", choices=sorted(MODELS), default=["unet"],
                        help="networks for the scene figures (the server runs the first)")
    parser.add_argument("--runtimes", nargs="+", choices=["keras", "openvino"],
                        default=["keras"],
                        help="forward passes for the scene figures; serving runs OpenVINO on CPU "
                             "when it is installed")
    parser.add_argument("--requests", type=int, default=4)
    parser.add_argument("--skip-server", action="store_true")
    parser.add_argument("--skip-scenes", action="store_true")
    args = parser.parse_args()

    import keras

    from segmodels import build_model

    started, load_at_start = time.perf_counter(), [round(x, 2) for x in os.getloadavg()]
    with tempfile.TemporaryDirectory(prefix="segpipe-bench-") as tmp_name:
        tmp = Path(tmp_name)
        paths, params = {}, {}
        for name in args.models:
            keras.utils.set_random_seed(0)
            model = build_model("unet", num_classes=CLASSES, in_channels=BANDS, **MODELS[name])
            paths[name] = tmp / f"{name}.keras"
            model.save(paths[name])
            params[name] = {"name": "unet", **MODELS[name], "params": model.count_params()}
        scenes, classic = [], None
        if not args.skip_scenes:
            for name in args.models:
                for runtime in args.runtimes:
                    runs = [run_worker("segpipe", tmp, paths[name], size, args.band_rows,
                                       repeats=args.repeats, runtime=runtime)
                            for size in args.sizes]
                    runs.append(run_worker("segpipe", tmp, paths[name], args.tta_size,
                                           args.tta_rows, tta=True, repeats=args.repeats,
                                           runtime=runtime))
                    scenes += [{"model": name, **run} for run in runs]
            if args.classic_size:
                classic = compare_with_classic(tmp, paths[args.models[0]], args.classic_size)
        server = None if args.skip_server else run_server(tmp, paths[args.models[0]],
                                                          args.requests)
    print(json.dumps({
        "benchmark": "predict",
        "inputs": {"models": params, "window": WINDOW, "overlap": 0.5, "batch_size": BATCH,
                   "bands": BANDS, "classes": CLASSES, "band_rows": args.band_rows,
                   "repeats": args.repeats, "tta_scene": f"{args.tta_size}x{args.tta_size}",
                   "tta_rows": args.tta_rows},
        "scenes": scenes, "classic_comparison": classic, "server": server,
        "machine": {**machine(), "load_average_at_start": load_at_start},
        "total_seconds": round(time.perf_counter() - started, 1)},
        indent=2))


if __name__ == "__main__":
    main()
