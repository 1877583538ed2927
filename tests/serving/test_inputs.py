"""What is said about an input before it is predicted: its resampling, and warnings when its
resolution, pixel type or values are not what the model learnt from."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin

from serving.image_bands import image_bands
from serving.inputs import (
    SAMPLE_SIDE,
    dtype_warning,
    pixel_warnings,
    sample_array,
    sample_dataset,
    value_warning,
)
from serving.resolution import ModelGrid, resampling_note, resolution_warning
from serving.scene import check_scene
from tests.serving.conftest import BANDS, make_config

INT16 = make_config(input_dtype="int16", mean=[748.0, 1200.0, 995.0, 3766.0],
                    std=[244.0, 337.0, 429.0, 580.0])


def write(path, pixels: np.ndarray, crs: str | None = "EPSG:32650", pixel: float = 1.0,
          nodata: float | None = None):
    """(C, H, W) pixels as a GeoTIFF; no transform either without a CRS."""
    profile = dict(driver="GTiff", width=pixels.shape[2], height=pixels.shape[1],
                   count=pixels.shape[0], dtype=pixels.dtype.name, nodata=nodata)
    if crs:
        profile.update(crs=crs, transform=from_origin(500000.0, 2700000.0, pixel, pixel))
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(pixels)
    return path


def tea_like(height: int = 40, width: int = 50, seed: int = 0) -> np.ndarray:
    """(C, H, W) int16 around INT16's means."""
    rng = np.random.default_rng(seed)
    noise = rng.normal(0, 1, (BANDS, height, width)) * np.array(INT16.std)[:, None, None]
    return (np.array(INT16.mean)[:, None, None] + noise).astype(np.int16)


@pytest.mark.parametrize(("scene", "trained", "warned"), [
    ("uint8", "int16", True), ("uint8", "uint16", True), ("uint8", "float32", True),
    ("int16", "uint8", True), ("float64", "uint8", True),
    ("int16", "int32", False), ("uint16", "int16", False), ("float64", "int16", False),
    ("int8", "uint8", False), ("uint8", "uint8", False),
])
def test_dtype_warning_only_when_the_value_range_differs(scene, trained, warned):
    config = INT16.model_copy(update={"input_dtype": trained})
    warning = dtype_warning(config, scene, "export.tif")
    assert (warning is not None) == warned
    if warned:
        assert warning.startswith(f"export.tif is {scene}, but the model was trained on "
                                  f"{trained} pixels (band means 748–3766)")


def test_value_warning_catches_a_stretched_copy_of_the_right_dtype():
    pixels = np.moveaxis(tea_like(), 0, -1).reshape(-1, BANDS)
    assert value_warning(INT16, pixels, None) is None
    stretched = ((pixels.astype(np.float64) - 500) * 12).clip(0, 32767).astype(np.int16)
    warning = value_warning(INT16, stretched, None, "stretch.tif")
    assert warning.startswith("stretch.tif: ")
    assert "of the sampled pixels lie beyond the training mean ± 10 std" in warning
    # nodata is no value: a scene mostly nodata around valid pixels is not warned about
    padded = np.concatenate([np.full((5000, BANDS), -32768, np.int16), pixels])
    assert value_warning(INT16, padded, -32768) is None
    assert value_warning(INT16, np.full((10, BANDS), 30000, np.int16), None) is None  # few


def test_value_warning_catches_reflectance_for_a_model_of_digital_numbers():
    """DN / 10000 stays within 7 std of the training mean (0 is 3-7 std below it), but
    hardly varies at that scale."""
    pixels = np.moveaxis(tea_like(), 0, -1).reshape(-1, BANDS)
    reflectance = (pixels / 10000).astype(np.float32)
    warning = value_warning(INT16, reflectance, None, "l2a.tif")
    assert warning.startswith("l2a.tif: the sampled pixels vary over 100 times less than the "
                              "training pixels in every band")
    water = pixels.copy()
    water[:, 3] = 150 + pixels[:, 3] % 7  # a flat band (NIR over water) is no reason
    assert value_warning(INT16, water, None) is None


def test_one_line_about_the_pixels_the_dtype_first():
    eight_bit = np.full((100, BANDS), 250, np.uint8)
    assert [w.split(" is ")[0] for w in pixel_warnings(INT16, "uint8", eight_bit, None,
                                                       "a.png")] == ["a.png"]
    assert pixel_warnings(INT16, "int16", np.moveaxis(tea_like(), 0, -1).reshape(-1, BANDS),
                          None) == []
    constant = pixel_warnings(INT16, "int16", eight_bit, None, "flat.tif")
    assert constant[0].startswith("flat.tif: the sampled pixels vary over 100 times less")


def test_samples_are_small_spread_windows_of_the_scene(tmp_path):
    pixels = np.zeros((BANDS, 600, 500), np.int16)
    pixels[:, 500:, 400:] = 7  # only the bottom-right corner
    path = write(tmp_path / "big.tif", pixels)
    with rasterio.open(path) as src:
        sample = sample_dataset(src, image_bands(src, src.count))
    assert sample.shape == (9 * SAMPLE_SIDE**2, BANDS)
    assert (sample == 7).all(axis=1).sum() == SAMPLE_SIDE**2  # the last window reaches it
    small = sample_array(np.arange(30 * 400 * BANDS).reshape(30, 400, BANDS))
    assert small.shape == (30 * SAMPLE_SIDE, BANDS)


@pytest.mark.parametrize(("config", "pixel", "expected"), [
    (make_config(gsd=2.0), 1.0, "resampled 1 m -> 2 m (model grid 25x20) and back"),
    (make_config(gsd=0.5), 0.5, None),
    (make_config(scale=0.5), 1.0, "resampled by the model's scale 0.5 (model grid 25x20) "
                                  "and back"),
    (make_config(), 1.0, None),
])
def test_resampling_is_one_line(tmp_path, config, pixel, expected):
    path = write(tmp_path / "s.tif", tea_like(), pixel=pixel)
    with rasterio.open(path) as src:
        from serving.resolution import resample_factor

        grid = ModelGrid(40, 50, resample_factor(config, src))
        assert resampling_note(config, grid, src) == expected
        assert resolution_warning(config, src) is None


@pytest.mark.parametrize(("crs", "why"), [
    ("EPSG:4326", "is in a geographic CRS (EPSG:4326), whose pixels have no fixed size in "
                  "metres: it is predicted at its own pixel size, not at the 2 m per pixel "
                  "the model was trained at; give its metres per pixel (param pixel_size) or "
                  "reproject it to a projected CRS"),
    (None, "has no georeferencing, so its pixel size is unknown: it is predicted at its own "
           "pixel size, not at the 2 m per pixel the model was trained at; give its metres "
           "per pixel (param pixel_size) or georeference it"),
])
def test_a_gsd_model_warns_about_a_scene_without_metres(tmp_path, crs, why):
    path = write(tmp_path / "s.tif", tea_like(), crs=crs, pixel=0.00001)
    with rasterio.open(path) as src:
        assert resolution_warning(make_config(gsd=2.0), src, what="s.tif") \
            .startswith(f"s.tif {why}")
        assert resolution_warning(make_config(), src) is None  # no gsd: nothing to miss
    assert resolution_warning(make_config(gsd=2.0), None, what="row 0").startswith(
        "row 0 carries no pixel size: it is predicted at its own pixel size")
    assert resolution_warning(make_config(gsd=2.0), None, 1.0) is None


def test_check_scene_tells_the_resampling_and_warns_about_an_8_bit_export(tmp_path):
    config = INT16.model_copy(update={"gsd": 2.0})
    original = write(tmp_path / "mosaic_1m.tif", tea_like(), nodata=-32768)
    notes = check_scene(original, config)
    assert notes.resampling == "resampled 1 m -> 2 m (model grid 25x20) and back"
    assert notes.warnings == []
    eight_bit = write(tmp_path / "mosaic_8bit.tif", (tea_like() // 16).astype(np.uint8),
                      crs=None, nodata=0)
    notes = check_scene(eight_bit, config)
    assert notes.resampling is None
    assert [w.split(":")[0] for w in notes.warnings] == [
        f"{eight_bit}",  # band 4 is tagged alpha (8 bits, 4 bands), read as a band
        f"{eight_bit} has no georeferencing, so its pixel size is unknown",
        f"{eight_bit} is uint8, but the model was trained on int16 pixels (band means "
        f"748–3766)"]
