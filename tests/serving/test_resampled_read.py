"""Float scenes with holes, resampled to the model's grid: a NaN nodata reads as a numeric one
does (GDAL's Lanczos would spread NaN into every kernel that touches a hole), so the masks of
one scene declaring NaN or -9999 are the same."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
from rasterio.enums import Resampling
from rasterio.transform import from_origin
from rasterio.windows import Window

from serving.image_bands import image_bands, read_pixels
from serving.predict import ScenePredictor
from serving.resampled_read import read_resampled
from serving.scene import predict_scene
from tests.serving.conftest import BANDS, bright_model, make_config


def float_scene_with_holes(path, nodata: float, pixel: float = 0.5, height: int = 70,
                           width: int = 60, bands: int = BANDS):
    """float32 in UTM: random values, a block of holes, an uncovered corner and scattered
    single holes, written as ``nodata`` and declared so."""
    rng = np.random.default_rng(7)
    pixels = rng.uniform(100, 900, (bands, height, width)).astype("float32")
    holes = np.zeros((height, width), bool)
    holes[21:38, 13:30] = True
    holes[height - 9:, :11] = True
    holes |= rng.random((height, width)) < 0.02
    pixels[:, holes] = nodata
    with rasterio.open(path, "w", driver="GTiff", width=width, height=height, count=bands,
                       dtype="float32", crs="EPSG:32644", nodata=nodata,
                       transform=from_origin(600000.0, 2700000.0, pixel, pixel)) as dst:
        dst.write(pixels)
    return path, holes


@pytest.mark.parametrize("window", [Window(0, 0, 60, 70), Window(3.25, 10.5, 40.5, 33.75)])
def test_a_nan_nodata_resamples_as_a_numeric_one(tmp_path, window):
    """Lanczos leaves a hole's pixels out of its kernels whatever the nodata: the values
    read are the same, and the hole on the model grid is the same."""
    nan_path, _ = float_scene_with_holes(tmp_path / "nan.tif", float("nan"), bands=1)
    number_path, _ = float_scene_with_holes(tmp_path / "number.tif", -9999.0, bands=1)
    shape = (int(window.height / 2), int(window.width / 2))
    with rasterio.open(nan_path) as nan, rasterio.open(number_path) as number:
        from_nan = read_resampled(nan, [1], window, shape, Resampling.lanczos)
        from_number = read_resampled(number, [1], window, shape, Resampling.lanczos)
    assert from_nan.shape == (1, *shape)
    hole = from_number == -9999.0
    assert hole.any() and (~hole).any()
    np.testing.assert_array_equal(np.isnan(from_nan), hole)
    np.testing.assert_array_equal(from_nan[~hole], from_number[~hole])


def test_a_nan_scene_resampled_gives_the_mask_of_the_same_scene_declaring_a_number(tmp_path):
    """A 0.5 m scene for a 1 m model whose nodata is 0: its holes as NaN or as -9999."""
    predictor = ScenePredictor(bright_model, make_config(num_classes=2, class_names=["a", "b"],
                                                         class_colors=["#000000", "#ffffff"],
                                                         gsd=1.0))
    masks = {}
    for name, nodata in {"nan": float("nan"), "number": -9999.0}.items():
        scene, holes = float_scene_with_holes(tmp_path / f"{name}.tif", nodata)
        predict_scene(predictor, scene, tmp_path / f"{name}-mask.tif")
        with rasterio.open(tmp_path / f"{name}-mask.tif") as mask:
            masks[name] = mask.read(1)
    np.testing.assert_array_equal(masks["number"] == 255, holes)
    np.testing.assert_array_equal(masks["nan"], masks["number"])


def test_a_nan_pixel_in_a_scene_declaring_a_number_spreads_no_further(tmp_path):
    """NaN is invalid in any scene: inside one declaring -9999 it is a hole like the rest."""
    path, holes = float_scene_with_holes(tmp_path / "number.tif", -9999.0, bands=1)
    with rasterio.open(path, "r+") as dst:
        pixels = dst.read(1)
        pixels[5:9, 40:47] = np.nan
        dst.write(pixels, 1)
    window, shape = Window(0, 0, 60, 70), (35, 30)
    with rasterio.open(path) as scene:
        read = read_resampled(scene, [1], window, shape, Resampling.lanczos)
        pixels[5:9, 40:47] = -9999.0
        number_path, _ = float_scene_with_holes(tmp_path / "all.tif", -9999.0, bands=1)
        with rasterio.open(number_path, "r+") as dst:
            dst.write(pixels, 1)
        with rasterio.open(number_path) as number:
            expected = read_resampled(number, [1], window, shape, Resampling.lanczos)
    np.testing.assert_array_equal(read, expected)


def test_a_nan_pixel_leaves_the_scenes_own_mask_out_of_the_kernels(tmp_path):
    """A float scene whose internal mask hides a collar of garbage, and one NaN pixel in the
    window: the redone read keeps the collar out of the kernels, as GDAL does, so it reads as
    the same scene declaring the collar and the NaN as -9999."""
    rng = np.random.default_rng(3)
    pixels = rng.uniform(10, 200, (2, 40, 36)).astype("float32")
    pixels[:, :, :12] = 5000.0
    numbers = pixels.copy()
    pixels[:, 25, 24] = np.nan
    numbers[:, :, :12] = numbers[:, 25, 24] = -9999.0
    profile = dict(driver="GTiff", width=36, height=40, count=2, dtype="float32",
                   crs="EPSG:32633", transform=from_origin(500000.0, 4000000.0, 1, 1))
    mask = np.full((40, 36), 255, np.uint8)
    mask[:, :12] = 0
    with rasterio.Env(GDAL_TIFF_INTERNAL_MASK=True), \
            rasterio.open(tmp_path / "masked.tif", "w", **profile) as dst:
        dst.write(pixels)
        dst.write_mask(mask)
    with rasterio.open(tmp_path / "number.tif", "w", nodata=-9999.0, **profile) as dst:
        dst.write(numbers)
    window, shape = Window(6.3, 10.7, 24.5, 20.1), (10, 12)
    with rasterio.open(tmp_path / "masked.tif") as masked, \
            rasterio.open(tmp_path / "number.tif") as number:
        read = read_pixels(masked, window, image_bands(masked, 2), shape, Resampling.lanczos)
        expected = read_pixels(number, window, image_bands(number, 2), shape,
                               Resampling.lanczos)
    valid = np.isfinite(read) & (expected != -9999.0)
    assert valid[:, :4].any() and np.isnan(read).any()
    np.testing.assert_array_equal(read[valid], expected[valid])
