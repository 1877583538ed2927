"""What `segpipe demo` adds around a local run: sample data, a ready request, next commands."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

from components.atomic import write_text

SAMPLE_DIR = "sample-data"
REQUEST_FILE = "request.json"
REQUEST_SIZE = 64
SERVE_PORT = 5001


def prepare_demo(workdir: Path, scenes: int = 6, size: int = 256, seed: int = 0) -> Path:
    """Generate the sample scenes under ``workdir`` (kept if already there, so a re-run
    reuses the cached data steps) and a request body for the scoring server."""
    from components.sample_data import generate_sample_dataset

    source = workdir / SAMPLE_DIR
    if not any(source.glob("*_image.tif")):
        generate_sample_dataset(source, scenes=scenes, size=size, seed=seed)
    write_request(sorted(source.glob("*_image.tif"))[0], workdir / REQUEST_FILE)
    return source


def write_request(image_path: Path, out: Path, size: int = REQUEST_SIZE) -> Path:
    """A tensor request ``{"inputs": [HxWxC raw pixels]}`` cut from the scene's centre."""
    import numpy as np
    import rasterio
    from rasterio.windows import Window

    with rasterio.open(image_path) as src:
        row, col = max(0, (src.height - size) // 2), max(0, (src.width - size) // 2)
        window = Window(col, row, min(size, src.width), min(size, src.height))
        pixels = np.moveaxis(src.read(window=window), 0, -1)
    write_text(out, json.dumps({"inputs": [pixels.astype(float).tolist()]}))
    return out


def next_commands(result, workdir: Path) -> list[str]:
    """Copy-paste commands after a demo run: MLflow UI, serve, curl, predict."""
    tracking = result.tracking_uri
    model_uri = f"models:/{result.model_name}@champion"
    scene = next(iter(sorted((workdir / SAMPLE_DIR).glob("*_image.tif"))), Path("scene.tif"))
    quoted = shlex.quote
    return [
        f"export MLFLOW_TRACKING_URI={quoted(tracking)}",
        f"mlflow ui --backend-store-uri {quoted(tracking)} --port 5000"
        "    # http://127.0.0.1:5000",
        f"segpipe serve --model-uri {model_uri} --port {SERVE_PORT}",
        f"curl -s http://127.0.0.1:{SERVE_PORT}/invocations -H 'Content-Type: application/json'"
        f" -d @{quoted(str(workdir / REQUEST_FILE))}",
        f"segpipe predict {quoted(str(scene))} --model-uri {model_uri}"
        f" --out {quoted(str(workdir / 'predicted_mask.tif'))}",
    ]
