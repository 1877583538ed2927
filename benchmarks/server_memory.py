"""Model-server memory per request. Prints JSON; never passes or fails.

Server figures: ``segpipe serve`` (one worker) on a small U-Net (256-px windows, 3 classes),
one request at a time of ``--megapixels`` four-band int16 images: base64 ``.npy`` answered
as a mask and as probabilities, and a base64 GeoTIFF answered as a mask; then two ``.npy``
requests at once (the server predicts two at a time); and one ``--tensor-megapixels`` image
as JSON numbers (``{"inputs": ...}``), per JSON value. For each: the body's size, the
server process's RSS before the request and its peak during it (the kernel's high-water
mark, VmHWM, reset before each request through /proc/PID/clear_refs), and the peak over the
RSS before per megapixel of the request and per MB of body.

Phase figures: the same steps in this process for one ``.npy`` request of
``--phase-megapixels`` answered as a mask, each phase's peak of new allocations (tracemalloc,
which NumPy reports to) and all that is allocated after it: the body, the guard's JSON
parse, the dataframe, the base64 and .npy decodes, the prediction, the answer's encoding
and JSON: where the server's peak comes from.
"""

from __future__ import annotations

import argparse
import base64
import gc
import io
import json
import os
import sys
import tempfile
import threading
import time
import tracemalloc
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

BANDS, CLASSES, WINDOW, BATCH = 4, 3, 256, 8


def serving_config(max_pixels: int):
    from serving.config import ServingConfig

    return ServingConfig(
        in_channels=BANDS, num_classes=CLASSES, class_names=["a", "b", "c"],
        class_colors=["#FF0000", "#00FF00", "#0000FF"], mean=[1000.0] * BANDS,
        std=[300.0] * BANDS, nodata=-32768, patch_size=WINDOW, batch_size=BATCH,
        model_stride=2, max_pixels=max_pixels, input_dtype="int16")


def image(megapixels: float, seed: int = 0) -> np.ndarray:
    side = int(round((megapixels * 1e6) ** 0.5))
    rng = np.random.default_rng(seed)
    return rng.integers(1, 3000, (side, side, BANDS), dtype=np.int16)


def npy_body(pixels: np.ndarray, output: str) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, pixels, allow_pickle=False)
    encoded = base64.b64encode(buffer.getbuffer())
    return (b'{"dataframe_split": {"columns": ["npy"], "data": [["' + encoded
            + b'"]]}, "params": {"output": "' + output.encode() + b'"}}')


def tensor_body(pixels: np.ndarray) -> bytes:
    return json.dumps({"inputs": [pixels.tolist()]}).encode()


def geotiff_body(pixels: np.ndarray) -> bytes:
    from rasterio.io import MemoryFile

    height, width, bands = pixels.shape
    with MemoryFile() as mem:
        with mem.open(driver="GTiff", width=width, height=height, count=bands,
                      dtype="int16") as dst:
            dst.write(np.moveaxis(pixels, -1, 0))
        encoded = base64.b64encode(mem.read())
    return b'{"dataframe_split": {"columns": ["image"], "data": [["' + encoded + b'"]]}}'


def _status(pid: int, key: str) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    raise KeyError(key)


def measured_requests(url: str, pid: int, bodies: list[bytes]) -> dict:
    """The bodies sent at once; the server's RSS before and its peak during them."""
    import requests

    gc.collect()
    with open(f"/proc/{pid}/clear_refs", "w") as clear:
        clear.write("5")  # resets VmHWM to the current RSS
    before = _status(pid, "VmRSS")
    statuses, seconds = [None] * len(bodies), [0.0] * len(bodies)

    def send(index: int) -> None:
        start = time.perf_counter()
        response = requests.post(url, data=bodies[index], timeout=3600,
                                 headers={"Content-Type": "application/json"})
        seconds[index] = round(time.perf_counter() - start, 2)
        statuses[index] = response.status_code if response.ok else \
            f"{response.status_code}: {response.text[:200]}"

    threads = [threading.Thread(target=send, args=(i,)) for i in range(len(bodies))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    peak = _status(pid, "VmHWM")
    return {"status": statuses, "seconds": seconds, "rss_before_mb": round(before / 1e6),
            "peak_rss_mb": round(peak / 1e6), "peak_over_before_mb": round((peak - before) / 1e6)}


def run_server(tmp: Path, local_model: str, megapixels: list[float], tensor_megapixels: float,
               tracking_uri: str) -> list:
    from tests.serving.server import free_port, segpipe_serve

    body_mb = int(max(megapixels) * 12) + 10
    server = segpipe_serve(local_model, free_port(), tmp / "server.log", timeout_s=3600,
                           max_request_mb=body_mb, MLFLOW_TRACKING_URI=tracking_uri,
                           SERVING_MAX_JSON_VALUES=str(int(tensor_megapixels * 5e6) + 10))
    results = []
    try:
        server.wait_ready(timeout=300)
        url = f"{server.url}/invocations"
        pid = server.process.pid
        small = npy_body(image(0.06), "mask")
        measured_requests(url, pid, [small])  # warm-up
        tensor = image(tensor_megapixels)
        body = tensor_body(tensor)
        figures = measured_requests(url, pid, [body])
        results.append({"case": "tensor_json_numbers_mask",
                        "megapixels": round(tensor.shape[0] * tensor.shape[1] / 1e6, 2),
                        "body_mb": round(len(body) / 1e6, 1),
                        "json_values": body.count(b",") + 1, **figures,
                        "peak_over_before_bytes_per_json_value": round(
                            figures["peak_over_before_mb"] * 1e6 / (body.count(b",") + 1))})
        for mp in megapixels:
            pixels = image(mp)
            cases = {"npy_mask": [npy_body(pixels, "mask")],
                     "npy_probabilities": [npy_body(pixels, "probabilities")],
                     "geotiff_mask": [geotiff_body(pixels)],
                     "npy_mask_two_at_once": [npy_body(pixels, "mask"),
                                              npy_body(image(mp, seed=1), "mask")]}
            for name, bodies in cases.items():
                figures = measured_requests(url, pid, bodies)
                request_mp = pixels.shape[0] * pixels.shape[1] * len(bodies) / 1e6
                body = sum(len(b) for b in bodies) / 1e6
                results.append({
                    "case": name, "megapixels": round(request_mp, 2),
                    "body_mb": round(body, 1), **figures,
                    "peak_over_before_mb_per_megapixel": round(
                        figures["peak_over_before_mb"] / request_mp, 1),
                    "peak_over_before_per_body_byte": round(
                        figures["peak_over_before_mb"] / body, 2)})
                del bodies
    finally:
        server.stop()
    return results


class Phases:
    """tracemalloc's peak of new allocations and what stays allocated, phase by phase."""

    def __init__(self):
        self.rows: list[dict] = []
        tracemalloc.start()

    def __call__(self, name: str, work):
        gc.collect()
        tracemalloc.reset_peak()
        start, _ = tracemalloc.get_traced_memory()
        result = work()
        current, peak = tracemalloc.get_traced_memory()
        self.rows.append({"phase": name, "peak_new_mb": round((peak - start) / 1e6),
                          "held_after_mb": round(current / 1e6)})
        return result


def run_phases(local_model: str, megapixels: float) -> dict:
    """The server's steps for one .npy request, in this process."""
    import mlflow
    import pandas as pd
    from mlflow.pyfunc.scoring_server import predictions_to_json

    from serving.decode import PixelBudget, check_params, decode_base64, decode_npy
    from serving.encode import encode_npy
    from serving.guard import check_body
    from serving.routes import request_frame

    model = mlflow.pyfunc.load_model(local_model)
    python_model = model.unwrap_python_model()
    schema = model.metadata.get_params_schema()
    phases = Phases()
    # Each phase takes what it consumes out of `held`, so it can be freed as in the server.
    held = {"pixels": image(megapixels)}
    held["body"] = phases("body", lambda: npy_body(held.pop("pixels"), "mask"))
    held["document"] = phases("guard: json parse",
                              lambda: check_body(held.pop("body"), schema))
    frame = phases("dataframe", lambda: request_frame(held["document"]["dataframe_split"],
                                                      "split"))
    config = python_model.config
    request = check_params(held["document"].get("params"), config)
    budget = PixelBudget(config.max_pixels)
    held["raw"] = phases("base64 decode", lambda: decode_base64(frame["npy"][0], "image"))
    held["array"] = phases(".npy decode", lambda: decode_npy(
        held.pop("raw"), "image", config, lambda h, w: budget.spend(h * w, "image")))
    held["mask"] = phases("predict", lambda: python_model.predictor.predict_array(
        held.pop("array"), tta=request.tta, overlap=request.overlap, output=request.output))
    answer = phases("encode the answer",
                    lambda: pd.DataFrame({request.output: [encode_npy(held.pop("mask"))]}))
    phases("answer json", lambda: predictions_to_json(answer, io.StringIO()))
    tracemalloc.stop()
    return {"megapixels": megapixels, "phases": phases.rows}


def main() -> None:
    from serving import quick_exit

    quick_exit.install()  # the figures are taken before exit; the exit's last GC is seconds
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--megapixels", type=float, nargs="+", default=[4.0, 16.0])
    parser.add_argument("--phase-megapixels", type=float, default=4.0)
    parser.add_argument("--tensor-megapixels", type=float, default=0.25,
                        help="one image as JSON numbers ({'inputs': ...})")
    parser.add_argument("--skip-phases", action="store_true")
    args = parser.parse_args()

    import keras
    import mlflow

    from segmodels import build_model
    from serving.pyfunc import log_segmentation_model

    started, load_at_start = time.perf_counter(), [round(x, 2) for x in os.getloadavg()]
    with tempfile.TemporaryDirectory(prefix="segpipe-bench-") as tmp_name:
        tmp = Path(tmp_name)
        keras.utils.set_random_seed(0)
        network = build_model("unet", num_classes=CLASSES, in_channels=BANDS, depth=2,
                              filters=4)
        network.save(tmp / "model.keras")
        tracking_uri = f"sqlite:///{tmp / 'mlflow.db'}"
        mlflow.set_tracking_uri(tracking_uri)
        experiment = mlflow.create_experiment("bench", artifact_location=(tmp / "art").as_uri())
        # probabilities count once per class against it
        max_pixels = int(CLASSES * max(args.megapixels) * 1e6) + 1
        with mlflow.start_run(experiment_id=experiment):
            info = log_segmentation_model(tmp / "model.keras", serving_config(max_pixels))
        local = mlflow.artifacts.download_artifacts(info.model_uri, dst_path=str(tmp / "m"))
        server = run_server(tmp, local, args.megapixels, args.tensor_megapixels, tracking_uri)
        phases = None if args.skip_phases else run_phases(local, args.phase_megapixels)
    print(json.dumps({
        "benchmark": "server_memory",
        "inputs": {"bands": BANDS, "dtype": "int16", "classes": CLASSES, "window": WINDOW,
                   "batch_size": BATCH, "network": "unet depth 2, 4 filters"},
        "server": server, "in_process": phases,
        "load_average_at_start": load_at_start,
        "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
        "total_seconds": round(time.perf_counter() - started, 1)}, indent=2))


if __name__ == "__main__":
    main()
