"""What `segpipe demo` adds around a local run: sample data, a ready request, next commands."""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path

from components.atomic import write_text
from components.tracking import has_password
from serving.server import DEFAULT_PORT as SERVE_PORT
from serving.server import MLFLOW_UI_PORT

SAMPLE_DIR = "sample-data"
REQUEST_FILE = "request.json"
REQUEST_SIZE = 64
#: Ten scenes of 192 px: with demo.yaml's 0.6/0.2/0.2 scene split, two whole scenes each for
#: validation and test, so neither the selected trial nor the reported mIoU rests on one
#: scene (six of 256 px gave 0.78-0.94 over five runs; ten of 192 px, with demo.yaml's
#: batches of 4-8, 0.92-0.98 over four).
DEMO_SCENES, DEMO_SIZE = 10, 192


def prepare_demo(workdir: Path, scenes: int = DEMO_SCENES, size: int = DEMO_SIZE,
                 seed: int = 0) -> Path:
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
    write_text(out, json.dumps({"inputs": [pixels.tolist()]}))  # the scene's own numbers
    return out


def served_model_uri(model_name: str, model_version: str, champion_version: str) -> str:
    """The model the next commands use: the champion, or the registered version itself when
    the gate left the registry without one (``champion_version`` "none"), since
    ``models:/<name>@champion`` does not resolve then."""
    if champion_version == "none":
        return f"models:/{model_name}/{model_version}"
    return f"models:/{model_name}@champion"


def next_commands(tracking_uri: str, model_name: str, workdir: Path,
                  scene: Path | None = None, model_uri: str | None = None
                  ) -> list[tuple[str, str]]:
    """(command, what it does) to copy-paste after a demo run: MLflow UI, serve, web app,
    curl, predict, on ``model_uri`` (default: the champion; see served_model_uri). Absolute
    paths throughout and the tracking store on every command, so each works in a new
    terminal, from any folder, without activating the virtualenv. A store URL with a
    password came from $MLFLOW_TRACKING_URI (a config refuses one): the commands name the
    variable, never the password."""
    bin_dir = Path(sys.executable).parent
    quoted = shlex.quote
    store = '"$MLFLOW_TRACKING_URI"' if has_password(tracking_uri) else quoted(tracking_uri)
    model_uri = model_uri or f"models:/{model_name}@champion"
    scene = scene or next(iter(sorted((workdir / SAMPLE_DIR).glob("*_image.tif"))),
                          Path("scene.tif"))
    segpipe = quoted(str(bin_dir / "segpipe"))
    return [
        (f"{quoted(str(bin_dir / 'mlflow'))} ui --backend-store-uri {store} "
         f"--port {MLFLOW_UI_PORT}",
         f"compare the runs at http://127.0.0.1:{MLFLOW_UI_PORT} (holds its terminal)"),
        (f"{segpipe} serve --tracking-uri {store} --model-uri {model_uri} --port {SERVE_PORT}",
         f"{model_uri} behind an HTTP endpoint (holds its terminal)"),
        (f"curl -s http://127.0.0.1:{SERVE_PORT}/invocations -H 'Content-Type: "
         f"application/json' -d @{quoted(str(workdir / REQUEST_FILE))}",
         "a mask from the endpoint, once serve says it is up"),
        (f"{segpipe} predict {quoted(str(scene))} --tracking-uri {store} --model-uri "
         f"{model_uri} --out {quoted(str(workdir / 'predicted_mask.tif'))}",
         "a georeferenced mask GeoTIFF for a whole scene"),
        (f"{segpipe} ui --tracking-uri {store} --data-dir {quoted(str(scene.parent))} "
         f"--mlflow-ui http://127.0.0.1:{MLFLOW_UI_PORT} --endpoint http://127.0.0.1:{SERVE_PORT}",
         "the web app at http://127.0.0.1:8501: the models, predictions on a scene, "
         "training from a form (holds its terminal)"),
    ]
