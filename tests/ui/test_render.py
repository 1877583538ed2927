"""RGB renderings of any raster and the mask overlay."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio

from pipelines.ui.legend import legend_html
from pipelines.ui.render import overlay, preview_shape, read_mask, read_preview, stretch
from tests.band_stack import rgb_dsm
from tests.ui.harness import write_scene


def test_stretch_maps_each_band_between_its_percentiles():
    valid = np.ones((10, 10), bool)
    low = np.arange(100, dtype=np.uint16).reshape(10, 10)
    bands = np.stack([low, low * 100, np.full((10, 10), 7, np.uint16)], axis=-1)
    out = stretch(bands, valid, (0.0, 100.0))
    assert out.dtype == np.uint8
    assert out[0, 0, 0] == 0 and out[-1, -1, 0] == 255
    np.testing.assert_array_equal(out[..., 0], out[..., 1])  # scale does not matter
    assert np.all(out[..., 2] == 128)  # a flat band is mid grey


def test_stretch_ignores_invalid_pixels_and_outliers():
    bands = np.full((10, 10, 1), 100.0)
    bands[5:] = 200.0
    bands[9, 9] = 65535.0  # one outlier, beyond the 98th percentile
    bands[0, 0] = 0.0  # nodata
    valid = bands[..., 0] != 0
    out = stretch(bands, valid)[..., 0]
    assert out[0, 0] == 0
    assert out[1, 1] == 0 and out[5, 0] == 255  # the outlier does not squash the range
    assert out[9, 9] == 255


def test_preview_of_a_16_bit_four_band_scene_is_decimated_rgb(tmp_path):
    path = write_scene(tmp_path / "scene.tif", 96)
    preview = read_preview(path, max_side=48)
    assert preview.rgb.shape == (48, 48, 3) and preview.rgb.dtype == np.uint8
    assert not preview.valid[:, :2].any()  # the nodata strip
    assert np.all(preview.rgb[~preview.valid] == 0)
    assert preview.rgb[preview.valid].std() > 20  # stretched, not a dark 16-bit image


def test_single_band_is_grey_and_photos_keep_their_colours(tmp_path):
    grey = read_preview(write_scene(tmp_path / "dem.tif", 32, bands=1))
    assert np.array_equal(grey.rgb[..., 0], grey.rgb[..., 2])
    photo = np.zeros((3, 8, 8), np.uint8)
    photo[0] = 200  # red
    path = tmp_path / "photo.png"
    with rasterio.open(path, "w", driver="PNG", width=8, height=8, count=3,
                       dtype="uint8") as dst:
        dst.write(photo)
    assert tuple(read_preview(path).rgb[0, 0]) == (200, 0, 0)


def test_preview_shape_keeps_the_aspect_ratio():
    assert preview_shape(4000, 1000, 1024) == (1024, 256)
    assert preview_shape(50, 30, 1024) == (50, 30)


def test_overlay_blends_classes_and_leaves_ignored_pixels(tmp_path):
    rgb = np.full((2, 2, 3), 100, np.uint8)
    mask = np.array([[0, 1], [255, 1]], np.uint8)
    colors = ["#FF0000", "#0000FF"]
    assert np.array_equal(overlay(rgb, mask, colors, 0.0), rgb)
    full = overlay(rgb, mask, colors, 1.0)
    assert tuple(full[0, 0]) == (255, 0, 0) and tuple(full[0, 1]) == (0, 0, 255)
    assert tuple(full[1, 0]) == (100, 100, 100)
    assert tuple(overlay(rgb, mask, colors, 0.5)[0, 0]) == (178, 50, 50)
    with pytest.raises(ValueError, match="differ in size"):
        overlay(rgb, mask[:1], colors, 0.5)


def test_mask_is_read_at_the_preview_size(tmp_path):
    path = tmp_path / "mask.tif"
    data = np.zeros((64, 64), np.uint8)
    data[:, 32:] = 2
    with rasterio.open(path, "w", driver="GTiff", width=64, height=64, count=1,
                       dtype="uint8") as dst:
        dst.write(data, 1)
    small = read_mask(path, (16, 16))
    assert small.shape == (16, 16) and set(np.unique(small)) == {0, 2}


def test_legend_escapes_class_names():
    table = legend_html([("#00A000", "<tea>", ["12 %"])], ["share"])
    assert "&lt;tea&gt;" in table and "<tea>" not in table
    assert "background:#00A000" in table and ">share</th>" in table


def test_preview_of_a_vrt_of_byte_and_float32_bands_is_stretched(tmp_path):
    vrt, _ = rgb_dsm(tmp_path / "scene.vrt", tmp_path / "parts", 32)
    preview = read_preview(vrt, max_side=16)
    assert preview.rgb.shape == (16, 16, 3) and preview.valid.all()
    assert preview.rgb.min() == 0 and preview.rgb.max() == 255  # float32: stretched
