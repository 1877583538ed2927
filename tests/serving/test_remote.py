"""`segpipe predict --endpoint` against the session's real `segpipe serve` process: the
windows it sends carry the scene's invalid pixels, so the mask equals local prediction."""

from __future__ import annotations

import mlflow
import numpy as np
import rasterio
from rasterio.transform import from_origin
from typer.testing import CliRunner

from tests.serving.conftest import BANDS, NODATA

#: A nodata value of the scene's own, not the model's (NODATA): the server cannot know it.
SCENE_NODATA = 65535


def scene_with_hole(path, height: int = 90, width: int = 70, nodata: int = SCENE_NODATA):
    """uint16 in UTM at 0.5 m with an uncovered corner and a hole, tagged ``nodata``."""
    rng = np.random.default_rng(11)
    pixels = rng.integers(1, 1000, (BANDS, height, width)).astype("uint16")
    pixels[:, height - 30:, :25] = nodata  # an uncovered corner, as a mosaic's
    pixels[:, 20:32, 30:41] = nodata  # a hole inside
    with rasterio.open(path, "w", driver="GTiff", width=width, height=height, count=BANDS,
                       dtype="uint16", crs="EPSG:32644", nodata=nodata,
                       transform=from_origin(600000.0, 2700000.0, 0.5, 0.5)) as dst:
        dst.write(pixels)
    return path


def predict(scene, out, logged_model, *extra: str):
    from pipelines.cli import app

    previous = mlflow.get_tracking_uri()
    try:
        result = CliRunner().invoke(app, [
            "predict", str(scene), "--out", str(out), "--model-uri",
            logged_model["registered"], "--tracking-uri", logged_model["tracking_uri"],
            *extra])
    finally:
        mlflow.set_tracking_uri(previous)
    return result


def read_mask(path) -> np.ndarray:
    with rasterio.open(path) as mask:
        return mask.read(1)


def test_endpoint_equals_local_next_to_a_nodata_the_model_does_not_know(server, logged_model,
                                                                        tmp_path):
    """The scene's nodata (65535) is not the model's (0): sent as a pixel value, the server
    would normalize it to a huge number that changes its neighbours' classes."""
    assert SCENE_NODATA != NODATA
    scene = scene_with_hole(tmp_path / "mosaic.tif")
    masks = {}
    for mode, extra in {"local": (), "remote": ("--endpoint", server.url)}.items():
        result = predict(scene, tmp_path / f"{mode}.tif", logged_model, *extra)
        assert result.exit_code == 0, result.output
        masks[mode] = read_mask(tmp_path / f"{mode}.tif")
    assert (masks["local"] == 255).sum() == 30 * 25 + 12 * 11
    np.testing.assert_array_equal(masks["remote"], masks["local"])
