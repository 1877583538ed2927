"""Fixtures for serving tests: a tiny U-Net saved as .keras, its ServingConfig, the pyfunc
model logged to a real SQLite MLflow store, one real scoring server on it for the whole
session (starting it is the slow part), and small GeoTIFF scenes."""

from __future__ import annotations

from pathlib import Path

import mlflow
import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin

from segmodels import build_model
from serving.config import ServingConfig

BANDS, CLASSES, WINDOW = 4, 3, 32
NODATA = 0


def make_config(**overrides) -> ServingConfig:
    fields = dict(in_channels=BANDS, num_classes=CLASSES, class_names=["soil", "tea", "water"],
                  class_colors=["#8B4513", "#00A000", "#1E90FF"], mean=[500.0] * BANDS,
                  std=[200.0] * BANDS, nodata=NODATA, patch_size=WINDOW, model_stride=4,
                  batch_size=8, max_pixels=100_000)
    fields.update(overrides)
    return ServingConfig(**fields)


def bright_model(batch: np.ndarray) -> np.ndarray:
    """Class 1 where band 0 is above its mean (z > 0), class 0 elsewhere."""
    logits = np.stack([-batch[..., 0], batch[..., 0]], axis=-1) * 20
    exp = np.exp(logits - logits.max(-1, keepdims=True))
    return (exp / exp.sum(-1, keepdims=True)).astype(np.float32)


def rgb_config(**overrides) -> ServingConfig:
    """A 3-band model's config: a PNG holds at most 3 colour bands (and alpha)."""
    fields = dict(in_channels=3, num_classes=2, class_names=["dark", "bright"],
                  class_colors=["#000000", "#FFFFFF"], mean=[500.0] * 3, std=[200.0] * 3,
                  nodata=None, patch_size=16, model_stride=4)
    return make_config(**{**fields, **overrides})


@pytest.fixture(scope="session")
def serving_config() -> ServingConfig:
    return make_config()


@pytest.fixture(scope="session")
def keras_model_path(tmp_path_factory) -> Path:
    import keras

    keras.utils.set_random_seed(0)
    model = build_model("unet", num_classes=CLASSES, in_channels=BANDS, depth=3, filters=4)
    path = tmp_path_factory.mktemp("keras") / "model.keras"
    model.save(path)
    return path


#: The session server's body limit: above every request of the tests but one.
SERVER_MAX_REQUEST_MB = 8
#: The logged model was trained at 1 m per pixel: georeferenced inputs in a projected CRS
#: (write_scene's are 0.5 m) are resampled by 0.5; plain images and tensors are not.
LOGGED_GSD = 1.0


@pytest.fixture(scope="session")
def logged_model(tmp_path_factory, keras_model_path, serving_config) -> dict:
    """The pyfunc logged once (with LOGGED_GSD); returns its models:/ URI, tracking URI and
    local copy."""
    from serving.pyfunc import log_segmentation_model

    root = tmp_path_factory.mktemp("mlflow")
    tracking_uri = f"sqlite:///{root / 'mlflow.db'}"
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(tracking_uri)
    try:
        experiment = mlflow.create_experiment(
            "serving-tests", artifact_location=(root / "artifacts").as_uri())
        mlflow.set_experiment(experiment_id=experiment)
        with mlflow.start_run():
            info = log_segmentation_model(keras_model_path,
                                          serving_config.model_copy(update={"gsd": LOGGED_GSD}),
                                          registered_model_name="segpipe-test")
        local = mlflow.artifacts.download_artifacts(info.model_uri,
                                                    dst_path=str(root / "local"))
    finally:
        mlflow.set_tracking_uri(previous)
    return {"model_uri": info.model_uri, "tracking_uri": tracking_uri, "local_path": local,
            "registered": "models:/segpipe-test/1"}


@pytest.fixture(scope="session")
def server(logged_model, tmp_path_factory):
    """`segpipe serve` (MLflow's scoring app behind serving/guard.py) on the logged model,
    shared by every test that needs a real scoring server; bodies up to SERVER_MAX_REQUEST_MB."""
    from tests.serving.server import free_port, segpipe_serve

    log = tmp_path_factory.mktemp("server") / "server.log"
    srv = segpipe_serve(logged_model["registered"], free_port(), log,
                        max_request_mb=SERVER_MAX_REQUEST_MB,
                        MLFLOW_TRACKING_URI=logged_model["tracking_uri"]).wait_ready()
    yield srv
    srv.stop()


def write_scene(path: Path, height: int, width: int, seed: int = 0,
                nodata_border: int = 0) -> Path:
    """A 4-band uint16 GeoTIFF in UTM with a nodata border, written in strips."""
    rng = np.random.default_rng(seed)
    profile = dict(driver="GTiff", width=width, height=height, count=BANDS, dtype="uint16",
                   crs="EPSG:32644", transform=from_origin(600000.0, 2700000.0, 0.5, 0.5),
                   nodata=NODATA, tiled=True, blockxsize=256, blockysize=256)
    with rasterio.open(path, "w", **profile) as dst:
        for row in range(0, height, 256):
            h = min(256, height - row)
            block = rng.integers(1, 1000, (BANDS, h, width)).astype("uint16")
            if nodata_border:
                block[:, :, :nodata_border] = NODATA
            dst.write(block, window=rasterio.windows.Window(0, row, width, h))
    return path
