"""Scene prediction to GeoTIFF: georeferencing, colours, nodata, polygons, CLI, memory."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import rasterio
from typer.testing import CliRunner

from pipelines.cli import app
from serving.predict import ScenePredictor, keras_predict_fn
from serving.scene import SceneError, predict_scene
from tests.serving.conftest import BANDS, bright_model, make_config, rgb_config, write_scene
from tests.serving.server import free_port

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def predictor(keras_model_path, serving_config):
    import segmodels

    model = segmodels.load_model(keras_model_path)
    return ScenePredictor(keras_predict_fn(model), serving_config)


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    return write_scene(tmp_path_factory.mktemp("scene") / "scene.tif", height=90, width=150,
                       nodata_border=7)


def test_mask_keeps_crs_transform_and_has_colours_and_nodata(predictor, scene, tmp_path):
    out = tmp_path / "out" / "mask.tif"
    seen = []
    result = predict_scene(predictor, scene, out, progress=lambda d, t: seen.append((d, t)))
    with rasterio.open(scene) as src, rasterio.open(out) as mask:
        assert (mask.width, mask.height) == (150, 90)
        assert mask.crs == src.crs and mask.transform == src.transform
        assert mask.dtypes == ("uint8",) and mask.nodata == 255
        assert mask.profile["tiled"] and mask.compression.name.lower() == "deflate"
        assert mask.colormap(1)[2] == (0x1E, 0x90, 0xFF, 255)
        data = mask.read(1)
        image = np.moveaxis(src.read(), 0, -1)
    assert (data[:, :7] == 255).all()  # nodata border
    assert (data[:, 7:] < 3).all()
    np.testing.assert_array_equal(data, predictor.predict_array(image, nodata=0))
    assert seen[-1] == (150 * 90, 150 * 90)
    assert sum(result.class_pixels.values()) == 150 * 90
    assert list(out.parent.iterdir()) == [out]  # no temp files left behind


def test_tta_and_overlap_change_the_blend_not_the_georeferencing(predictor, scene, tmp_path):
    plain = predict_scene(predictor, scene, tmp_path / "a.tif").mask_path
    tta = predict_scene(predictor, scene, tmp_path / "b.tif", tta=True, overlap=0.25,
                        max_panel_width=64).mask_path
    with rasterio.open(plain) as a, rasterio.open(tta) as b:
        assert a.transform == b.transform
        assert (a.read(1) != b.read(1)).any()


def test_polygons_are_in_the_scene_crs_with_class_names(predictor, scene, tmp_path):
    result = predict_scene(predictor, scene, tmp_path / "m.tif",
                           polygons_path=tmp_path / "m.geojson")
    collection = json.loads((tmp_path / "m.geojson").read_text())
    assert collection["crs"]["properties"]["name"] == "urn:ogc:def:crs:EPSG::32644"
    assert len(collection["features"]) == result.polygon_count > 0
    names = {f["properties"]["class_name"] for f in collection["features"]}
    assert names <= {"soil", "tea", "water"}
    x, y = collection["features"][0]["geometry"]["coordinates"][0][0]
    assert 600000 <= x <= 600000 + 150 * 0.5 and 2700000 - 90 * 0.5 <= y <= 2700000


def test_wrong_band_count_names_the_file(predictor, tmp_path):
    path = tmp_path / "rgb.tif"
    with rasterio.open(path, "w", driver="GTiff", width=8, height=8, count=BANDS - 1,
                       dtype="uint8") as dst:
        dst.write(np.zeros((BANDS - 1, 8, 8), "uint8"))
    with pytest.raises(SceneError, match="rgb.tif: wrong band count: 3 bands"):
        predict_scene(predictor, path, tmp_path / "never.tif")
    assert not (tmp_path / "never.tif").exists()
    grey = tmp_path / "grey.tif"
    with rasterio.open(grey, "w", driver="GTiff", width=8, height=8, count=1,
                       dtype="uint8") as dst:
        dst.write(np.zeros((1, 8, 8), "uint8"))
    with pytest.raises(SceneError, match="grey.tif: wrong band count: 1 band, the model"):
        predict_scene(predictor, grey, tmp_path / "never.tif")


def test_cli_predict_from_logged_model(logged_model, scene, tmp_path):
    out = tmp_path / "cli.tif"
    result = CliRunner().invoke(app, ["predict", str(scene), "--out", str(out), "--model-uri",
                                      logged_model["local_path"], "--polygons",
                                      str(tmp_path / "cli.geojson")])
    assert result.exit_code == 0, result.output
    assert "wrote" in result.output
    with rasterio.open(out) as mask, rasterio.open(scene) as src:
        assert mask.crs == src.crs and mask.transform == src.transform


def pointwise_model(batch):
    """Per-pixel softmax of three bands: cheap, so the test measures the machinery."""
    logits = np.stack([batch[..., 0], batch[..., 1], -batch[..., 2]], axis=-1)
    exp = np.exp(logits - logits.max(-1, keepdims=True))
    return exp / exp.sum(-1, keepdims=True)


def _peak_traced_bytes(predictor, scene_path, out_path) -> int:
    """Peak of NumPy/Python allocations during one scene (GDAL's cache is capped apart)."""
    tracemalloc.start()
    try:
        predict_scene(predictor, scene_path, out_path, gdal_cache_mb=16)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_peak_memory_does_not_grow_with_scene_size(tmp_path):
    predictor = ScenePredictor(pointwise_model, make_config(batch_size=16, patch_size=64))
    small = write_scene(tmp_path / "small.tif", 512, 512)
    large = write_scene(tmp_path / "large.tif", 2048, 2048)
    small_peak = _peak_traced_bytes(predictor, small, tmp_path / "small_mask.tif")
    large_peak = _peak_traced_bytes(predictor, large, tmp_path / "large_mask.tif")
    # Holding the large scene would cost 2048^2 x (4 bands x 4 B input + 3 classes x 4 B
    # probabilities) = 112 MiB; its strips of 64 rows x 2112 columns cost about 2 MiB more
    # than the small scene's.
    assert large_peak - small_peak < 8 * 2**20, (small_peak, large_peak)
    assert large_peak < 32 * 2**20
    with rasterio.open(tmp_path / "large_mask.tif") as mask:
        assert mask.shape == (2048, 2048)
        assert (mask.read(1, window=((1900, 2048), (1900, 2048))) < 3).all()


def test_region_is_predicted_alone_and_georeferenced(predictor, scene, tmp_path):
    region = rasterio.windows.Window(20, 10, 64, 50)
    predict_scene(predictor, scene, tmp_path / "r.tif", region=region)
    with rasterio.open(scene) as src, rasterio.open(tmp_path / "r.tif") as mask:
        assert mask.shape == (50, 64)
        assert mask.transform == src.window_transform(region)
        image = np.moveaxis(src.read(window=region), 0, -1)
        np.testing.assert_array_equal(mask.read(1), predictor.predict_array(image, nodata=0))
    with pytest.raises(SceneError, match="not inside"):
        predict_scene(predictor, scene, tmp_path / "x.tif",
                      region=rasterio.windows.Window(100, 0, 64, 50))


def test_png_scene_gives_a_mask_without_georeferencing(tmp_path):
    predictor = ScenePredictor(bright_model, rgb_config())  # a PNG has at most 3 colours
    path = tmp_path / "photo.png"
    pixels = np.random.default_rng(5).integers(1, 1000, (3, 40, 33)).astype("uint16")
    with rasterio.open(path, "w", driver="PNG", width=33, height=40, count=3,
                       dtype="uint16") as dst:
        dst.write(pixels)
    predict_scene(predictor, path, tmp_path / "photo_mask.tif")
    with rasterio.open(tmp_path / "photo_mask.tif") as mask:
        assert mask.crs is None and mask.shape == (40, 33)
        np.testing.assert_array_equal(
            mask.read(1), predictor.predict_array(np.moveaxis(pixels, 0, -1)))


def test_cli_predict_on_a_plain_image_warns_in_segpipe_lines_only(logged_model, tmp_path):
    """rasterio's NotGeoreferencedWarning (its file, line and source line) is not shown: the
    user reads segpipe's own one-line warning, naming the file, and nothing else."""
    path = tmp_path / "chip.tif"  # a 4-band image without georeferencing (a PNG's 4th is alpha)
    pixels = np.random.default_rng(5).integers(1, 1000, (BANDS, 40, 33)).astype("uint16")
    with rasterio.open(path, "w", driver="GTiff", width=33, height=40, count=BANDS,
                       dtype="uint16") as dst:
        dst.write(pixels)
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "TF_CPP_MIN_LOG_LEVEL": "2"}
    done = subprocess.run(
        [sys.executable, "-m", "pipelines.cli", "predict", str(path), "--out",
         str(tmp_path / "chip_mask.tif"), "--model-uri", logged_model["local_path"],
         "--polygons", str(tmp_path / "chip.geojson")],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "NotGeoreferencedWarning" not in done.stderr, done.stderr
    warned = [line for line in done.stderr.splitlines() if "warning" in line.lower()]
    assert warned and all(line.startswith("warning: ") for line in warned), done.stderr
    assert any("chip.tif has no georeferencing" in line for line in warned), done.stderr


def truncate(path, share: float = 0.6):
    data = path.read_bytes()
    path.write_bytes(data[:int(len(data) * share)])
    return path


def test_truncated_scene_is_an_error_naming_the_file(predictor, tmp_path):
    scene = truncate(write_scene(tmp_path / "half.tif", height=600, width=300))
    with pytest.raises(SceneError, match=r"half.tif: cannot read pixels \(truncated or corrupt"):
        predict_scene(predictor, scene, tmp_path / "never.tif")
    assert list(tmp_path.iterdir()) == [scene]  # no mask, no temp file


def test_cli_names_a_truncated_scene_without_a_traceback(logged_model, tmp_path):
    scene = truncate(write_scene(tmp_path / "half.tif", height=600, width=300))
    result = CliRunner().invoke(app, ["predict", str(scene), "--out", str(tmp_path / "m.tif"),
                                      "--model-uri", logged_model["local_path"]])
    assert result.exit_code == 2, result.output
    text = "".join(result.output.replace("│", "").split())  # rich wraps it in a box
    assert "half.tif:cannotreadpixels(truncatedorcorruptdata?)" in text
    assert "IReadBlockfailed" in text  # GDAL's account of where
    assert "Traceback" not in result.output
    assert not (tmp_path / "m.tif").exists()


@pytest.fixture(scope="module")
def model_with_broken_network(logged_model, tmp_path_factory):
    """A copy of the logged model whose network files (Keras and OpenVINO) are garbage: its
    serving config reads, the network does not load."""
    copy = tmp_path_factory.mktemp("broken") / "model"
    shutil.copytree(logged_model["local_path"], copy)
    network = [path for path in copy.rglob("*")
               if path.suffix in (".keras", ".xml", ".bin") and path.is_file()]
    assert network
    for path in network:
        path.write_bytes(b"not a network")
    return copy


@pytest.mark.parametrize("flags", [[], ["--nodata", "7"]], ids=["", "nodata"])
@pytest.mark.parametrize("case, problem", [
    ("bands", "rgb.tif:wrongbandcount:3bands,themodelexpects4"),
    ("truncated", "half.tif:cannotreadpixels(truncatedorcorruptdata?)"),
    ("header cut", "head.tif:cannotreadthescene"),
    ("not an image", "notes.tif:cannotreadthescene"),
])
def test_cli_checks_the_scene_before_loading_the_network(model_with_broken_network, tmp_path,
                                                         case, problem, flags):
    """``--nodata`` reads the scene's own nodata first: through the same checks."""
    if case == "bands":
        scene = tmp_path / "rgb.tif"
        with rasterio.open(scene, "w", driver="GTiff", width=8, height=8, count=BANDS - 1,
                           dtype="uint8") as dst:
            dst.write(np.zeros((BANDS - 1, 8, 8), "uint8"))
    elif case == "truncated":
        scene = truncate(write_scene(tmp_path / "half.tif", height=600, width=300))
    elif case == "header cut":
        scene = write_scene(tmp_path / "head.tif", height=600, width=300)
        scene.write_bytes(scene.read_bytes()[:100])  # into the first directory (the header)
    else:
        scene = tmp_path / "notes.tif"
        scene.write_text("meeting notes")
    result = CliRunner().invoke(app, ["predict", str(scene), "--out", str(tmp_path / "m.tif"),
                                      "--model-uri", str(model_with_broken_network), *flags])
    assert result.exit_code == 2, result.output
    assert problem in "".join(result.output.replace("│", "").split())
    assert "Traceback" not in result.output
    assert not (tmp_path / "m.tif").exists()


def test_cli_endpoint_that_is_not_running_is_one_line(logged_model, scene, tmp_path):
    endpoint = f"http://127.0.0.1:{free_port()}"
    result = CliRunner().invoke(app, ["predict", str(scene), "--out", str(tmp_path / "m.tif"),
                                      "--endpoint", endpoint, "--model-uri",
                                      logged_model["local_path"]])
    assert result.exit_code == 1, result.output
    assert result.output.strip().splitlines() == [
        f"error: endpoint {endpoint} is not reachable (connection refused or host not "
        f"found); is the server running (`segpipe serve`)?"]
    assert not (tmp_path / "m.tif").exists()


@pytest.mark.parametrize("driver", ["JPEG", "PNG"])
def test_truncated_photo_is_an_error_naming_the_file(tmp_path, driver):
    predictor = ScenePredictor(pointwise_model, make_config(in_channels=3, mean=[500.0] * 3,
                                                            std=[200.0] * 3))
    path = tmp_path / f"photo.{driver.lower()}"
    pixels = np.random.default_rng(1).integers(0, 255, (3, 300, 400)).astype("uint8")
    with rasterio.open(path, "w", driver=driver, width=400, height=300, count=3,
                       dtype="uint8") as dst:
        dst.write(pixels)
    truncate(path)
    with pytest.raises(SceneError, match=f"photo.{driver.lower()}: cannot"):
        predict_scene(predictor, path, tmp_path / "never.tif")
    assert not (tmp_path / "never.tif").exists()


def test_header_claiming_billions_of_pixels_is_refused_before_reading(tmp_path):
    from tests.serving.test_server_errors import png_claiming

    predictor = ScenePredictor(bright_model, rgb_config())  # the header's RGB + alpha
    path = tmp_path / "bomb.png"
    path.write_bytes(png_claiming(70_000, 70_000))
    with pytest.raises(SceneError, match="bomb.png: too many pixels: 70000x70000, the limit is "
                                         "4000000000"):
        predict_scene(predictor, path, tmp_path / "never.tif")


def test_a_scene_whose_pixels_shrink_it_to_nothing_is_refused(tmp_path):
    """`segpipe predict` on a scene of 1 mm pixels with a model trained at 2 m: the scene
    would span a twentieth of a model pixel, so no mask, and a message naming the file and
    the limit."""
    from tests.serving.test_blending import pointwise_model
    from tests.serving.test_resolution import write_geotiff

    path = write_geotiff(tmp_path / "mm.tif", np.ones((48, 64, BANDS), np.uint16), pixel=0.001)
    predictor = ScenePredictor(pointwise_model, make_config(gsd=2.0))
    with pytest.raises(SceneError, match=r"mm.tif: the scene \(64x48\) shrinks to under "
                                         r"half a pixel a side .* limit for an input this "
                                         r"size is 0.02084 m per pixel"):
        predict_scene(predictor, path, tmp_path / "never.tif")
    assert not (tmp_path / "never.tif").exists()


def test_non_finite_scene_pixels_are_ignored_not_class_0(predictor, tmp_path):
    path = tmp_path / "float64.tif"
    pixels = np.random.default_rng(3).uniform(1, 1000, (BANDS, 40, 50))
    bad = [(3, 4, np.inf), (10, 20, -np.inf), (30, 7, np.nan), (25, 40, 1e39)]
    for row, col, value in bad:
        pixels[1, row, col] = value
    with rasterio.open(path, "w", driver="GTiff", width=50, height=40, count=BANDS,
                       dtype="float64") as dst:
        dst.write(pixels)
    predict_scene(predictor, path, tmp_path / "mask.tif")
    with rasterio.open(tmp_path / "mask.tif") as out:
        mask = out.read(1)
    assert [int(mask[row, col]) for row, col, _ in bad] == [255] * 4
    assert (mask < 3).sum() == 40 * 50 - 4
