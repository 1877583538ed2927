"""Real parts for the UI tests and the UI benchmark: a tiny registered model in a SQLite
MLflow store, small GeoTIFF scenes, `segpipe ui` as a subprocess, and Debian's Chromium
driven by Playwright."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
import requests
from rasterio.transform import from_origin

REPO_ROOT = Path(__file__).resolve().parents[2]
MODEL_NAME = "segpipe"
BANDS, CLASSES, WINDOW = 4, 3, 32
CLASS_NAMES = ["soil", "tea", "water"]
CLASS_COLORS = ["#8B4513", "#00A000", "#1E90FF"]
SCENE_CRS = "EPSG:32644"
NODATA = 0
#: The test app's upload limit: small enough that a test can go over it (the scenes the
#: tests upload are < 100 kB).
MAX_UPLOAD_MB = 1
CHROMIUM = os.environ.get("SEGPIPE_CHROMIUM", "/usr/bin/chromium")
#: No downloads, no background traffic: nothing outside loopback is reachable anyway.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]


@dataclass(frozen=True)
class TinyStore:
    tracking_uri: str
    name: str
    champion: str
    challenger: str
    miou: dict[str, float]


def serving_config(window: int = WINDOW, depth: int = 2):
    from segmodels import model_stride
    from serving.config import ServingConfig

    return ServingConfig(in_channels=BANDS, num_classes=CLASSES, class_names=CLASS_NAMES,
                         class_colors=CLASS_COLORS, mean=[500.0] * BANDS, std=[200.0] * BANDS,
                         nodata=NODATA, patch_size=window,
                         model_stride=model_stride("unet", depth=depth), batch_size=8,
                         max_pixels=4_000_000)


def build_store(root: Path, *, window: int = WINDOW, depth: int = 2,
                filters: int = 4) -> TinyStore:
    """A SQLite store holding model ``segpipe`` with two versions tagged as
    components.register tags them: v1 champion (the better test mIoU), v2 challenger. The
    U-Net has random weights (``depth`` levels, ``filters`` in the first)."""
    import keras
    import mlflow
    from mlflow import MlflowClient

    from components.champion_gate import apply_champion_gate
    from components.register import RegisterOptions
    from segmodels import build_model
    from serving.pyfunc import log_segmentation_model

    keras.utils.set_random_seed(0)
    model = build_model("unet", num_classes=CLASSES, in_channels=BANDS, depth=depth,
                        filters=filters)
    model_path = root / "model.keras"
    model.save(model_path)
    tracking_uri = f"sqlite:///{root / 'mlflow.db'}"
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(tracking_uri)
    client = MlflowClient()
    scores = {"1": 0.61, "2": 0.55}
    try:
        experiment = mlflow.create_experiment("ui-tests",
                                              artifact_location=(root / "artifacts").as_uri())
        with mlflow.start_run(experiment_id=experiment, run_name="register"):
            info = log_segmentation_model(model_path, serving_config(window, depth))
        options = RegisterOptions(model_name=MODEL_NAME)
        for expected, score in scores.items():
            ious = {name: score + 0.1 * (i - 1) for i, name in enumerate(CLASS_NAMES[:2])}
            tags = {"segpipe.dataset_digest": "d1g3st" + "0" * 58,
                    "segpipe.architecture": "unet", "segpipe.train_run_id": "",
                    "segpipe.test_miou": f"{score:.6f}",
                    **{f"segpipe.test_iou_{n}": f"{v:.6f}" for n, v in ious.items()}}
            version = mlflow.register_model(info.model_uri, MODEL_NAME, tags=tags)
            assert str(version.version) == expected
            client.set_registered_model_alias(MODEL_NAME, "challenger", version.version)
            apply_champion_gate(client, MODEL_NAME, version.version, score, "split-1", options)
    finally:
        mlflow.set_tracking_uri(previous)
    return TinyStore(tracking_uri=tracking_uri, name=MODEL_NAME, champion="1",
                     challenger="2", miou=scores)


def write_scene(path: Path, size: int, bands: int = BANDS, seed: int = 0,
                crs: str | None = SCENE_CRS, dtype: str = "uint16") -> Path:
    """A (size x size) GeoTIFF in UTM with 0.5 m pixels and a nodata strip on the left."""
    rng = np.random.default_rng(seed)
    data = rng.integers(1, 1000, (bands, size, size)).astype(dtype)
    data[:, :, : max(1, size // 16)] = NODATA
    profile = dict(driver="GTiff", width=size, height=size, count=bands, dtype=dtype,
                   nodata=NODATA)
    if size >= 512:
        profile.update(tiled=True, blockxsize=256, blockysize=256)
    if crs:
        profile.update(crs=crs, transform=from_origin(600000.0, 2700000.0, 0.5, 0.5))
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data)
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class UiApp:
    """`segpipe ui` in its own session (its Streamlit child goes with it on stop). Without
    a tracking URI it uses its workdir's own store."""

    def __init__(self, tracking_uri: str | None, log_path: Path, *extra: str,
                 cwd: Path | None = None):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        env = dict(os.environ, PYTHONPATH=str(REPO_ROOT), TF_CPP_MIN_LOG_LEVEL="2")
        env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
        env.pop("MLFLOW_TRACKING_URI", None)
        store = ["--tracking-uri", tracking_uri] if tracking_uri else []
        self._log = open(log_path, "wb")  # noqa: SIM115  closed in stop()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "pipelines.cli", "ui", *store, "--port", str(self.port),
             *extra],
            stdout=self._log, stderr=subprocess.STDOUT, env=env, start_new_session=True,
            cwd=cwd)

    def wait_ready(self, timeout: float = 120.0) -> UiApp:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"segpipe ui exited with {self.process.returncode}:\n"
                                   f"{self.log_text()}")
            try:
                if requests.get(f"{self.url}/_stcore/health", timeout=2).text == "ok":
                    return self
            except requests.ConnectionError:
                pass
            time.sleep(0.5)
        self.stop()
        raise TimeoutError(f"segpipe ui not ready in {timeout} s:\n{self.log_text()}")

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]

    def stop(self) -> int | None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=30)
        self._log.close()
        return self.process.returncode


def launch_chromium(playwright):
    if not os.access(CHROMIUM, os.X_OK):
        raise FileNotFoundError(
            f"{CHROMIUM} not found: run infra/local/browser.sh (installs Debian's chromium), "
            f"or point $SEGPIPE_CHROMIUM at a Chromium binary")
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
