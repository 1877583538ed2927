"""What predict writes: per-class probabilities as a float32 GeoTIFF on the scene's grid,
written block by block like the mask; ``segpipe predict --output`` and ``--nodata``."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
from typer.testing import CliRunner

from pipelines.cli import app
from serving.predict import ScenePredictor
from serving.scene import predict_scene
from tests.serving.conftest import make_config, write_scene
from tests.serving.test_scene import pointwise_model

BORDER = 5


@pytest.fixture
def predictor():
    return ScenePredictor(pointwise_model, make_config(class_names=["soil", "tea", "water"]))


@pytest.fixture
def scene(tmp_path):
    return write_scene(tmp_path / "scene.tif", height=300, width=170, nodata_border=BORDER)


def test_probabilities_are_one_band_per_class_on_the_scenes_grid(predictor, scene, tmp_path):
    out, mask_out = tmp_path / "p.tif", tmp_path / "m.tif"
    # Narrow panels and several tile rows: blocks arrive in pieces, as on large scenes.
    result = predict_scene(predictor, scene, out, output="probabilities", max_panel_width=96)
    predict_scene(predictor, scene, mask_out, max_panel_width=96)
    with rasterio.open(out) as probs, rasterio.open(scene) as src, \
            rasterio.open(mask_out) as mask:
        assert probs.count == 3 and probs.dtypes == ("float32",) * 3
        assert probs.descriptions == ("soil", "tea", "water")
        assert probs.crs == src.crs and probs.transform == src.transform
        assert (probs.width, probs.height) == (src.width, src.height)
        assert np.isnan(probs.nodata) and probs.profile["tiled"]
        scores, ids = probs.read(), mask.read(1)
    invalid = np.isnan(scores).any(axis=0)
    assert invalid[:, :BORDER].all() and not invalid[:, BORDER:].any()
    assert np.isnan(scores[:, :, :BORDER]).all()  # every band, not some
    np.testing.assert_allclose(scores[:, ~invalid].sum(axis=0), 1.0, atol=1e-5)
    np.testing.assert_array_equal(np.argmax(scores[:, ~invalid], axis=0), ids[~invalid])
    assert result.class_pixels["ignored"] == 300 * BORDER
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.tif", "p.tif", "scene.tif"]


def test_polygons_need_the_mask(predictor, scene, tmp_path):
    with pytest.raises(ValueError, match="polygons are made from a mask"):
        predict_scene(predictor, scene, tmp_path / "p.tif", output="probabilities",
                      polygons_path=tmp_path / "p.geojson")
    assert not (tmp_path / "p.tif").exists()


def _untagged_scene(path, fill: int):
    """A 4-band scene without a nodata tag whose left columns are ``fill`` (a mosaic's)."""
    rng = np.random.default_rng(3)
    data = rng.integers(100, 1000, (4, 48, 40)).astype("uint16")
    data[:, :, :8] = fill
    with rasterio.open(path, "w", driver="GTiff", width=40, height=48, count=4,
                       dtype="uint16", crs="EPSG:32644",
                       transform=rasterio.transform.from_origin(6e5, 27e5, 0.5, 0.5)) as dst:
        dst.write(data)
    return path


def test_cli_writes_probabilities_and_takes_nodata_for_an_untagged_scene(logged_model,
                                                                       tmp_path):
    model = logged_model["local_path"]
    scene = _untagged_scene(tmp_path / "mosaic.tif", fill=7)  # the model's nodata is 0
    runner = CliRunner()
    out = tmp_path / "probs.tif"
    result = runner.invoke(app, ["predict", str(scene), "--out", str(out), "--model-uri",
                                 model, "--output", "probabilities", "--nodata", "7"])
    assert result.exit_code == 0, result.output
    with rasterio.open(out) as probs:
        assert probs.count == 3 and probs.descriptions == ("soil", "tea", "water")
        scores = probs.read()
    assert np.isnan(scores[:, :, :8]).all() and not np.isnan(scores[:, :, 8:]).any()

    result = runner.invoke(app, ["predict", str(scene), "--out", str(tmp_path / "m.tif"),
                                 "--model-uri", model])
    assert result.exit_code == 0, result.output
    with rasterio.open(tmp_path / "m.tif") as mask:
        assert (mask.read(1)[:, :8] != 255).all()  # without --nodata, 7 is a pixel value

    result = runner.invoke(app, ["predict", str(scene), "--out", str(tmp_path / "x.tif"),
                                 "--model-uri", model, "--output", "probabilities",
                                 "--polygons", str(tmp_path / "x.geojson")])
    assert result.exit_code == 2 and "--output mask" in result.output
    result = runner.invoke(app, ["predict", str(scene), "--out", str(tmp_path / "x.tif"),
                                 "--model-uri", model, "--output", "scores"])
    assert result.exit_code == 2 and "mask, probabilities" in result.output


def test_cli_says_a_scenes_own_nodata_wins_over_nodata(logged_model, tmp_path):
    scene = write_scene(tmp_path / "tagged.tif", height=40, width=40, nodata_border=4)
    result = CliRunner().invoke(app, ["predict", str(scene), "--out", str(tmp_path / "m.tif"),
                                      "--model-uri", logged_model["local_path"],
                                      "--nodata", "7"])
    assert result.exit_code == 0, result.output
    assert "tagged.tif declares nodata 0, which wins: --nodata 7 applies only" in result.output
