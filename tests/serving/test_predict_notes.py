"""`segpipe predict` says, before predicting, how a scene is resampled and warns (one line
each, on stderr) when its resolution, pixel type or values are not the model's; the
session's logged model learnt from float32 pixels around 500 at 1 m per pixel."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin

from tests.serving.conftest import BANDS
from tests.serving.test_remote import predict


def write(path, pixels: np.ndarray, pixel: float | None = 1.0) -> str:
    """(C, H, W) pixels in UTM at ``pixel`` m, or without georeferencing (None)."""
    profile = dict(driver="GTiff", width=pixels.shape[2], height=pixels.shape[1],
                   count=BANDS, dtype=pixels.dtype.name)
    if pixel:
        profile.update(crs="EPSG:32644", transform=from_origin(600000, 2700000, pixel, pixel))
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(pixels)
    return str(path)


def near_training(height: int = 40, width: int = 30) -> np.ndarray:
    return np.random.default_rng(3).integers(300, 700, (BANDS, height, width)).astype("uint16")


CASES = {
    "half_metre": (lambda: near_training(), 0.5,
                   ["{scene}: resampled 0.5 m -> 1 m (model grid 15x20) and back"]),
    "native": (lambda: near_training(), 1.0, []),
    "int32_copy": (lambda: near_training().astype("int32"), 1.0, []),
    "not_georeferenced": (lambda: near_training(), None, [
        "warning: {scene} has no georeferencing, so its pixel size is unknown: it is "
        "predicted at its own pixel size, not at the 1 m per pixel the model was trained "
        "at; give its metres per pixel (--pixel-size) or georeference it in a projected CRS "
        "to have it resampled"]),
    "eight_bit": (lambda: (near_training() // 4).astype("uint8"), 1.0, [
        "warning: {scene}: band 4 is tagged alpha: read as a band, as in training (the model "
        "has 4 bands); if it is transparency (an RGBA orthomosaic), predict with a model of 3",
        "warning: {scene} is uint8, but the model was trained on float32 pixels (band means "
        "500): values of another range than training's give a wrong mask; predict the "
        "original float32 data if you have it"]),
    "stretched": (lambda: near_training() * 60, 1.0, [
        "warning: {scene}: 100% of the sampled pixels lie beyond the training mean ± 10 std "
        "in some band (training band means 500, these pixels' medians"]),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_notes_before_predicting(logged_model, tmp_path, case):
    make, pixel, expected = CASES[case]
    scene = write(tmp_path / f"{case}.tif", make(), pixel)
    result = predict(scene, tmp_path / "mask.tif", logged_model)
    assert result.exit_code == 0, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == len(expected), result.stderr
    for line, start in zip(lines, expected, strict=True):
        assert line.startswith(start.format(scene=scene)), line
    assert result.stdout.strip().startswith(f"wrote {tmp_path / 'mask.tif'}")
