"""One timed prediction in a fresh process (so its peak RSS is its own), for
benchmarks/predict.py. Prints one JSON line. Not a benchmark of its own (the leading
underscore keeps `make bench` from running it).

``segpipe`` runs ``segpipe predict``'s code path (windowed reads, blending, tiled GeoTIFF
output) over rows [0, --rows) of the scene, --repeats times. Each run is paired with its
floor, timed just after it or just before it in turn: the same forward pass (``--runtime``:
Keras, or the OpenVINO export serving runs on CPU) called alone on batches of exactly the
sizes the run used (random data of the same shape).
Reported are medians over the repeats, and how long the model itself was busy inside the run:
``model_idle_share = 1 - model_busy / seconds`` is the share of the run the model waited on
everything else (blending, reading, writing, opening and closing files, D4 views), which
the machine's noise disturbs far less than a ratio of two separate timings.

``classic`` runs the smooth-blending code people copy (Chevalier, 2017; re-implemented
faithfully in tests/serving/chevalier.py, always D4 TTA at overlap 0.5) on the whole scene
read into memory, with ``model.predict`` at the same batch size, then writes the argmax mask
with the same compression as segpipe's.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from benchmarks.predict import BANDS, BATCH, CLASSES, WINDOW, serving_config  # noqa: E402


def cpu_seconds() -> float:
    """This process's CPU time, all threads: steadier than wall time on a shared machine."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class TimedForward:
    """The model's forward pass on one runtime, logging each call's batch size and seconds."""

    def __init__(self, forward: Callable[[np.ndarray], np.ndarray]):
        self.forward, self.lock = forward, threading.Lock()
        self.sizes: list[int] = []
        self.busy = 0.0

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        with self.lock:
            start = time.perf_counter()
            out = np.asarray(self.forward(batch))
            self.busy += time.perf_counter() - start
            self.sizes.append(len(batch))
            return out

    def reset(self) -> None:
        self.sizes, self.busy = [], 0.0

    def replay(self, bands: int) -> tuple[float, float]:
        """Wall and CPU seconds of the same calls with nothing else going on."""
        sample = np.random.default_rng(0).normal(
            size=(max(self.sizes), WINDOW, WINDOW, bands)).astype(np.float32)
        start, cpu_start = time.perf_counter(), cpu_seconds()
        for size in self.sizes:
            self.forward(sample[:size])
        return time.perf_counter() - start, cpu_seconds() - cpu_start


def runtime_forward(runtime: str, model, model_path: Path, tmp: Path):
    """The forward pass serving runs on ``runtime`` (serving/runtime.py)."""
    from serving.predict import keras_predict_fn
    from serving.runtime import export_openvino, openvino_predict_fn

    if runtime == "keras":
        return keras_predict_fn(model)
    return openvino_predict_fn(export_openvino(model_path, serving_config(), tmp))


def run_segpipe(args: argparse.Namespace, model) -> dict:
    from rasterio.windows import Window

    from serving.predict import ScenePredictor
    from serving.scene import predict_scene

    config = serving_config()
    with tempfile.TemporaryDirectory(prefix="segpipe-bench-ir-") as ir_dir:
        # compiled into memory: the export's files are not read again
        forward = TimedForward(runtime_forward(args.runtime, model, Path(args.model),
                                               Path(ir_dir)))
    predictor = ScenePredictor(forward, config)
    predictor.warm_up()
    loaded_rss = peak_rss_mb()
    runs = []
    for repeat in range(args.repeats):
        # Floor after the run, then before it, alternately (the run's batch sizes are the
        # same every time), so a drift of the machine's speed does not bias the ratio.
        floor_first = repeat % 2 == 1
        if floor_first:
            floor, cpu_floor = forward.replay(BANDS)
        forward.reset()
        start, cpu_start = time.perf_counter(), cpu_seconds()
        predict_scene(predictor, Path(args.scene), Path(args.out), tta=args.tta,
                      region=Window(0, 0, args.size, args.rows))
        seconds, cpu = time.perf_counter() - start, cpu_seconds() - cpu_start
        busy, windows = forward.busy, sum(forward.sizes)
        if not floor_first:
            floor, cpu_floor = forward.replay(BANDS)
        runs.append({"seconds": seconds, "floor": floor, "ratio": seconds / floor,
                     "cpu": cpu, "cpu_floor": cpu_floor, "cpu_ratio": cpu / cpu_floor,
                     "busy": busy, "idle_share": 1 - busy / seconds})

    def median(key: str) -> float:
        return statistics.median(run[key] for run in runs)

    megapixels = args.size * args.rows / 1e6
    return {
        "runtime": args.runtime, "scene": f"{args.size}x{args.size}",
        "predicted_rows": args.rows, "tta": args.tta,
        "megapixels": round(megapixels, 3), "forward_windows": windows,
        "repeats": args.repeats, "seconds": round(median("seconds"), 2),
        "megapixels_per_s": round(megapixels / median("seconds"), 4),
        "forward_floor_seconds": round(median("floor"), 2),
        "time_over_floor": round(median("ratio"), 3),
        "time_over_floor_each": [round(run["ratio"], 3) for run in runs],
        "model_busy_seconds": round(median("busy"), 2),
        "model_idle_share": round(median("idle_share"), 4),
        "cpu_seconds": round(median("cpu"), 2),
        "forward_floor_cpu_seconds": round(median("cpu_floor"), 2),
        "cpu_time_over_floor": round(median("cpu_ratio"), 3),
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "peak_rss_over_loaded_model_mb": round(peak_rss_mb() - loaded_rss, 1)}


def run_classic(args: argparse.Namespace, model) -> dict:
    import rasterio

    from serving.pixels import invalid_pixels, normalize_image
    from serving.scene_output import DEFLATE_LEVEL  # the same output cost as segpipe's
    from tests.serving.chevalier import predict_img_with_smooth_windowing

    config = serving_config()
    model.predict(np.zeros((BATCH, WINDOW, WINDOW, BANDS), np.float32), verbose=0)
    loaded_rss = peak_rss_mb()
    start, cpu_start = time.perf_counter(), cpu_seconds()
    with rasterio.open(args.scene) as src:
        raw = np.moveaxis(src.read(window=((0, args.rows), (0, args.size))), 0, -1)
        profile = {**src.profile, "count": 1, "dtype": "uint8", "nodata": 255,
                   "compress": "deflate", "zlevel": DEFLATE_LEVEL, "height": args.rows}
    invalid = invalid_pixels(raw, config.nodata)
    image = normalize_image(raw, config.mean, config.std, config.nodata, invalid)
    probs = predict_img_with_smooth_windowing(
        image, window_size=WINDOW, subdivisions=2, nb_classes=CLASSES,
        pred_func=lambda patches: model.predict(patches, batch_size=BATCH, verbose=0))
    mask = np.argmax(probs, axis=-1).astype(np.uint8)
    mask[invalid] = 255
    with rasterio.open(args.out, "w", **profile) as dst:
        dst.write(mask, 1)
    seconds, cpu = time.perf_counter() - start, cpu_seconds() - cpu_start
    return {"implementation": "classic (Chevalier 2017), model.predict", "tta": True,
            "scene": f"{args.size}x{args.rows}", "seconds": round(seconds, 2),
            "cpu_seconds": round(cpu, 2),
            "megapixels_per_s": round(args.size * args.rows / 1e6 / seconds, 4),
            "peak_rss_mb": round(peak_rss_mb(), 1),
            "peak_rss_over_loaded_model_mb": round(peak_rss_mb() - loaded_rss, 1)}


def main() -> None:
    from serving import quick_exit

    quick_exit.install()  # the figures are taken before exit; the exit's last GC is seconds
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=["segpipe", "classic"])
    parser.add_argument("--model", required=True)
    parser.add_argument("--scene", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--size", type=int, required=True)
    parser.add_argument("--rows", type=int, required=True)
    parser.add_argument("--tta", action="store_true")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--runtime", choices=["keras", "openvino"], default="keras",
                        help="the forward pass segpipe runs (and its floor), as serving does")
    args = parser.parse_args()

    import segmodels

    model = segmodels.load_model(args.model)
    run = run_segpipe if args.mode == "segpipe" else run_classic
    print(json.dumps(run(args, model)))


if __name__ == "__main__":
    main()
