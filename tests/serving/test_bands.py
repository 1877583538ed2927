"""Rasters whose bands differ in type (a VRT stacking RGB bytes and a float32 DSM): read in
the bands' common type, checked and predicted as the stack of those bands."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
from rasterio.enums import Resampling
from rasterio.windows import Window
from typer.testing import CliRunner

from pipelines.cli import app
from serving.bands import band_dtype, read_bands
from serving.predict import ScenePredictor
from serving.scene import check_scene, predict_scene
from tests.band_stack import rgb_dsm, write_stack_vrt, write_tif
from tests.serving.conftest import make_config

SIZE = 40


@pytest.fixture
def mixed(tmp_path):
    """(VRT of 3 uint8 + 1 float32 band, the same bands as one float32 GeoTIFF)."""
    vrt, stack = rgb_dsm(tmp_path / "scene.vrt", tmp_path / "parts", SIZE)
    return vrt, write_tif(tmp_path / "stack.tif", stack)


@pytest.mark.parametrize(("types", "common"), [
    (("uint8", "float32"), "float32"), (("uint16", "int16"), "int32"),
    (("uint8", "uint16"), "uint16"), (("int16", "float32"), "float32"),
])
def test_bands_of_several_types_are_read_in_their_common_type(tmp_path, types, common):
    planes = [np.arange(SIZE * SIZE).reshape(1, SIZE, SIZE).astype(t) for t in types]
    files = [write_tif(tmp_path / f"b{i}.tif", p) for i, p in enumerate(planes)]
    with rasterio.open(write_stack_vrt(tmp_path / "s.vrt", files)) as src:
        assert band_dtype(src) == np.dtype(common)
        pixels = read_bands(src, window=Window(2, 3, 10, 5))
    assert pixels.dtype == np.dtype(common)
    np.testing.assert_array_equal(pixels, np.concatenate(planes)[:, 3:8, 2:12].astype(common))


def test_reads_into_a_band_last_array_resampled_and_one_band_match_the_stack(mixed):
    vrt, stack = mixed
    with rasterio.open(vrt) as src, rasterio.open(stack) as ref:
        out = np.empty((10, 10, 4), band_dtype(src))  # how prediction reads: bands last
        read_bands(src, window=Window(0, 0, 20, 20), out=np.moveaxis(out, -1, 0),
                   resampling=Resampling.bilinear)
        expected = ref.read(window=Window(0, 0, 20, 20), out_shape=(4, 10, 10),
                            resampling=Resampling.bilinear)
        # GDAL resamples a Byte band in bytes (as it does a uint8 GeoTIFF's): rounded
        np.testing.assert_allclose(np.moveaxis(out, -1, 0)[:3], expected[:3], atol=0.5)
        np.testing.assert_allclose(np.moveaxis(out, -1, 0)[3], expected[3], rtol=1e-6)
        shrunk = read_bands(src, out_shape=(4, 8, 8), resampling=Resampling.nearest)
        np.testing.assert_array_equal(shrunk, ref.read(out_shape=(4, 8, 8),
                                                       resampling=Resampling.nearest))
        assert read_bands(src, 1).dtype == np.float32


def dsm_model(batch):
    """Per-pixel softmax over the first, last and minus the first band: the DSM counts."""
    logits = np.stack([batch[..., 0], batch[..., 3], -batch[..., 0]], axis=-1)
    exp = np.exp(logits - logits.max(-1, keepdims=True))
    return exp / exp.sum(-1, keepdims=True)


def test_a_mixed_scene_is_checked_and_predicted_as_its_float32_stack(mixed, tmp_path):
    vrt, stack = mixed
    config = make_config(mean=[128.0, 128.0, 128.0, 250.0], std=[60.0, 60.0, 60.0, 0.6],
                         nodata=None)
    notes = check_scene(vrt, config)
    assert notes.warnings == []  # float32, as the model was trained on
    uint8_notes = check_scene(vrt, config.model_copy(update={"input_dtype": "uint8"}))
    assert any("scene.vrt is float32, but the model was trained on uint8" in w
               for w in uint8_notes.warnings)
    predictor = ScenePredictor(dsm_model, config)
    predict_scene(predictor, vrt, tmp_path / "vrt_mask.tif")
    predict_scene(predictor, stack, tmp_path / "stack_mask.tif")
    with rasterio.open(tmp_path / "vrt_mask.tif") as a, \
            rasterio.open(tmp_path / "stack_mask.tif") as b:
        np.testing.assert_array_equal(a.read(1), b.read(1))
        assert len(np.unique(a.read(1))) > 1


def test_cli_predicts_a_mixed_vrt_with_a_logged_model(logged_model, mixed, tmp_path):
    vrt, _ = mixed
    out = tmp_path / "cli.tif"
    result = CliRunner().invoke(app, ["predict", str(vrt), "--out", str(out), "--model-uri",
                                      logged_model["local_path"]])
    assert result.exit_code == 0, result.output
    with rasterio.open(out) as mask:
        assert mask.shape == (SIZE, SIZE)


@pytest.mark.parametrize("model_nodata", [None, float("nan"), 0.0])
def test_a_dsm_tag_of_its_own_marks_its_holes_in_the_predicted_mask(tmp_path, model_nodata):
    """RGB (untagged) + a DSM tagged -9999: the scene's own tags win over the model's."""
    rgb = np.random.default_rng(0).integers(1, 256, (3, SIZE, SIZE)).astype(np.uint8)
    dsm = np.full((1, SIZE, SIZE), 250.0, np.float32)
    dsm[:, 5:9, 10:30] = -9999.0
    files = [write_tif(tmp_path / "rgb.tif", rgb),
             write_tif(tmp_path / "dsm.tif", dsm, nodata=-9999)]
    vrt = write_stack_vrt(tmp_path / "scene.vrt", files, nodata=[None, -9999])
    config = make_config(mean=[128.0, 128.0, 128.0, 250.0], std=[60.0, 60.0, 60.0, 0.6],
                         nodata=model_nodata)
    assert check_scene(vrt, config).warnings == []
    predict_scene(ScenePredictor(dsm_model, config), vrt, tmp_path / "mask.tif")
    with rasterio.open(tmp_path / "mask.tif") as mask:
        holes = mask.read(1) == mask.nodata
    np.testing.assert_array_equal(holes, dsm[0] == -9999.0)
