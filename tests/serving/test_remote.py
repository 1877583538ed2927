"""`segpipe predict --endpoint` against the session's real `segpipe serve` process: the
windows it sends carry the scene's invalid pixels, so the mask equals local prediction, and
a server that runs another model than --model-uri is refused before any window."""

from __future__ import annotations

import mlflow
import numpy as np
import pytest
import rasterio
import requests
from rasterio.transform import from_origin
from typer.testing import CliRunner

from serving.remote import scene_nodata
from tests.serving.conftest import BANDS, LOGGED_GSD, NODATA, make_config

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


def float_scene(path, nodata: float):
    with rasterio.open(path, "w", driver="GTiff", width=8, height=8, count=BANDS,
                       dtype="float32", nodata=nodata) as dst:
        dst.write(np.ones((BANDS, 8, 8), "float32"))
    return path


def test_a_nan_nodata_the_model_shares_is_not_sent(tmp_path):
    """NaN != NaN: a scene and a model both with NaN nodata send no param (a server whose
    model predates it would answer 400); another nodata still does."""
    nan_model = make_config(nodata=float("nan"))
    assert scene_nodata(float_scene(tmp_path / "nan.tif", float("nan")), nan_model) is None
    assert np.isnan(scene_nodata(float_scene(tmp_path / "nan2.tif", float("nan")),
                                 make_config(nodata=0.0)))
    assert scene_nodata(float_scene(tmp_path / "minus.tif", -9999.0), nan_model) == -9999.0


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


@pytest.fixture(scope="module")
def other_model(logged_model, keras_model_path, serving_config) -> str:
    """A second registered model in the session's store, with other class names."""
    from serving.pyfunc import log_segmentation_model

    config = serving_config.model_copy(update={"class_names": ["bare", "crop", "river"],
                                               "gsd": None})
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(logged_model["tracking_uri"])
    try:
        mlflow.set_experiment("serving-tests")
        with mlflow.start_run():
            log_segmentation_model(keras_model_path, config, registered_model_name="other")
    finally:
        mlflow.set_tracking_uri(previous)
    return "models:/other/1"


def test_the_server_says_which_model_it_runs(server, logged_model):
    from mlflow.models import Model

    described = requests.get(f"{server.url}/model", timeout=30).json()
    assert described["model_uri"] == logged_model["registered"]
    assert described["model_uuid"] == Model.load(logged_model["local_path"]).model_uuid
    assert described["serving_config"]["class_names"] == ["soil", "tea", "water"]
    assert "pixel_size" in described["params"]


def test_endpoint_running_another_model_is_refused_in_one_line(server, logged_model,
                                                              other_model, tmp_path):
    scene = scene_with_hole(tmp_path / "scene.tif")
    result = predict(scene, tmp_path / "mask.tif",
                     {**logged_model, "registered": other_model}, "--endpoint", server.url)
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert lines[0].startswith(f"error: endpoint {server.url} serves "
                               f"{logged_model['registered']} (logged model m-")
    assert (f"not {other_model} (logged model m-" in lines[0]
            and "classes ['soil', 'tea', 'water'] there, ['bare', 'crop', 'river'] here; "
                f"gsd 1.0 there, none here; start the server on {other_model}, or predict "
                f"with --model-uri {logged_model['registered']}" in lines[0]), lines[0]
    assert not (tmp_path / "mask.tif").exists()


def test_a_scene_nodata_not_the_models_defines_the_invalid_pixels_everywhere(server,
                                                                              logged_model,
                                                                              tmp_path):
    """The scene declares 65535; the model was trained with 0. Pixels that are 0 in every
    band are valid in this scene: local prediction, --endpoint and the server's own routes
    (the GeoTIFF itself, and its pixels as an array with param nodata) all predict them,
    and all ignore the scene's 65535 pixels."""
    from tests.serving.test_server import from_npy, invoke, npy_frame

    path = scene_with_hole(tmp_path / "zeros.tif")
    with rasterio.open(path, "r+") as dst:
        pixels = dst.read()
        pixels[:, 40:60, 45:65] = NODATA  # the model's nodata, valid here
        dst.write(pixels)
    invalid = 30 * 25 + 12 * 11
    masks = {}
    for mode, extra in {"local": (), "endpoint": ("--endpoint", server.url)}.items():
        result = predict(path, tmp_path / f"{mode}.tif", logged_model, *extra)
        assert result.exit_code == 0, result.output
        masks[mode] = read_mask(tmp_path / f"{mode}.tif")
    assert (masks["local"] == 255).sum() == invalid
    assert (masks["local"][40:60, 45:65] != 255).all()
    np.testing.assert_array_equal(masks["endpoint"], masks["local"])
    # the server itself: the scene's GeoTIFF (its own nodata), and its pixels as .npy
    import base64

    from rasterio.io import MemoryFile

    geotiff = base64.b64encode(path.read_bytes()).decode()
    answer = invoke(server, {"dataframe_split": {"columns": ["image"], "data": [[geotiff]]}})
    assert answer.status_code == 200, answer.text
    with MemoryFile(base64.b64decode(answer.json()["predictions"][0]["mask"])) as mem, \
            mem.open() as served:
        np.testing.assert_array_equal(served.read(1), masks["local"])
    array = np.moveaxis(pixels, 0, -1)
    at_its_size = {"pixel_size": 0.5}  # the scene's, as the GeoTIFF says
    told = invoke(server, {**npy_frame(array),
                           "params": {**at_its_size, "nodata": SCENE_NODATA}})
    assert told.status_code == 200, told.text
    told_mask = from_npy(told.json()["predictions"][0]["mask"])
    np.testing.assert_array_equal(told_mask, masks["local"])
    # an array that declares nothing: the model's nodata, as documented
    untold = invoke(server, {**npy_frame(array), "params": at_its_size})
    untold = from_npy(untold.json()["predictions"][0]["mask"])
    assert (untold[40:60, 45:65] == 255).all()


def nan_scene_with_model_nodata_pixels(path):
    """float32 in UTM at the model's resolution declaring nodata NaN (as GDAL/QGIS float
    exports do): a NaN block, and a block of 0 in every band, the model's nodata (NODATA) but
    valid here."""
    rng = np.random.default_rng(5)
    pixels = rng.uniform(1, 1000, (BANDS, 64, 48)).astype("float32")
    pixels[:, 5:15, 6:20] = np.nan
    pixels[:, 40:52, 20:36] = NODATA
    with rasterio.open(path, "w", driver="GTiff", width=48, height=64, count=BANDS,
                       dtype="float32", crs="EPSG:32644", nodata=float("nan"),
                       transform=from_origin(600000.0, 2700000.0, LOGGED_GSD,
                                             LOGGED_GSD)) as dst:
        dst.write(pixels)
    return path


def test_a_nan_nodata_scene_predicts_through_the_server_as_locally(server, logged_model,
                                                                   tmp_path):
    """The server is told the scene's NaN in a JSON-safe form ("nan"): requests refuses to
    put NaN in JSON, and the model's 0 would otherwise mark the scene's valid 0 pixels."""
    scene = nan_scene_with_model_nodata_pixels(tmp_path / "nan.tif")
    masks = {}
    for mode, extra in {"local": (), "endpoint": ("--endpoint", server.url)}.items():
        result = predict(scene, tmp_path / f"{mode}.tif", logged_model, *extra)
        assert result.exit_code == 0, result.output
        assert "not reachable" not in result.output
        masks[mode] = read_mask(tmp_path / f"{mode}.tif")
    assert (masks["local"] == 255).sum() == 10 * 14
    assert (masks["local"][40:52, 20:36] != 255).all()
    np.testing.assert_array_equal(masks["endpoint"], masks["local"])


@pytest.mark.parametrize("pixel", [0.5, 0.3])
def test_a_resampled_nan_scene_predicts_through_the_server_as_locally(server, logged_model,
                                                                      tmp_path, pixel):
    """A float scene for the 1 m model, its holes NaN, resampled as locally. At 0.3 m some
    model pixels GDAL leaves invalid hold the centres of valid scene pixels: their windows
    travel with the model's mean there, which the server normalizes to the 0 a local
    prediction gives such pixels, so both predict them alike."""
    from tests.serving.test_resampled_read import float_scene_with_holes

    scene, holes = float_scene_with_holes(tmp_path / "nan.tif", float("nan"), pixel=pixel)
    masks = {}
    for mode, extra in {"local": (), "endpoint": ("--endpoint", server.url)}.items():
        result = predict(scene, tmp_path / f"{mode}.tif", logged_model, *extra)
        assert result.exit_code == 0, result.output
        masks[mode] = read_mask(tmp_path / f"{mode}.tif")
    np.testing.assert_array_equal(masks["local"] == 255, holes)
    np.testing.assert_array_equal(masks["endpoint"], masks["local"])


def test_the_server_takes_nodata_nan_as_a_string_on_every_route(server):
    """{"nodata": "nan"}: only non-finite pixels are invalid, not the model's 0 (a JSON
    number cannot be NaN); on the .npy route and the tensor route alike."""
    from tests.serving.test_server import from_npy, invoke, npy_frame

    array = np.random.default_rng(3).integers(1, 1000, (16, 16, BANDS)).astype("float32")
    array[:4, :4] = NODATA
    array[8:10, 8:10] = np.nan
    told = invoke(server, {**npy_frame(array), "params": {"nodata": "nan"}})
    assert told.status_code == 200, told.text
    mask = from_npy(told.json()["predictions"][0]["mask"])
    assert (mask[:4, :4] != 255).all() and (mask[8:10, 8:10] == 255).all()
    assert (mask == 255).sum() == 4
    untold = from_npy(invoke(server, npy_frame(array)).json()["predictions"][0]["mask"])
    assert (untold[:4, :4] == 255).all()
    finite = np.where(np.isnan(array), 1.0, array)
    tensor = invoke(server, {"inputs": finite[None].tolist(), "params": {"nodata": "NaN"}})
    assert tensor.status_code == 200, tensor.text
    assert (np.asarray(tensor.json()["predictions"])[0, :4, :4] != 255).all()
    bad = invoke(server, {**npy_frame(array), "params": {"nodata": "none"}})
    assert bad.status_code == 400 and 'param nodata must be a double or "nan", got \'none\'' in \
        bad.json()["message"], bad.text


def test_a_nan_scene_sends_no_nodata_to_a_model_without_one(tmp_path):
    """A model without nodata ignores only non-finite pixels, as the scene's NaN asks."""
    scene = float_scene(tmp_path / "nan.tif", float("nan"))
    assert scene_nodata(scene, make_config(nodata=None)) is None


def test_only_connection_errors_are_called_unreachable():
    from serving.remote import request_failed

    url = "http://127.0.0.1:5001/invocations"
    refused = request_failed(url, requests.ConnectionError("refused"))
    assert "is not reachable (connection refused or host not found)" in str(refused)
    timeout = request_failed(url, requests.ReadTimeout("slow"))
    assert "did not answer in time" in str(timeout) and "not reachable" not in str(timeout)
    encoding = request_failed(url, requests.exceptions.InvalidJSONError(
        "Out of range float values are not JSON compliant"))
    assert str(encoding) == (f"endpoint {url}: the request could not be sent "
                             f"(InvalidJSONError: Out of range float values are not JSON "
                             f"compliant)")
