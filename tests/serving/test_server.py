"""The logged pyfunc behind a real `mlflow models serve` process on loopback, started through
`segpipe serve` (one server for the whole module: startup is the slow part)."""

from __future__ import annotations

import base64
import io

import mlflow
import numpy as np
import pytest
import rasterio
import requests
from rasterio.io import MemoryFile
from rasterio.transform import from_origin

from tests.serving.conftest import BANDS, CLASSES
from tests.serving.server import free_port, segpipe_serve


@pytest.fixture(scope="module")
def server(logged_model, tmp_path_factory):
    log = tmp_path_factory.mktemp("server") / "server.log"
    srv = segpipe_serve(logged_model["registered"], free_port(), log,
                        MLFLOW_TRACKING_URI=logged_model["tracking_uri"]).wait_ready()
    yield srv
    srv.stop()


def invoke(server, payload: dict) -> requests.Response:
    return requests.post(f"{server.url}/invocations", json=payload, timeout=120)


def pixels(height: int, width: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(1, 1000, (height, width, BANDS))


def geotiff_b64(image: np.ndarray) -> str:
    height, width, bands = image.shape
    with MemoryFile() as mem:
        with mem.open(driver="GTiff", width=width, height=height, count=bands, dtype="uint16",
                      crs="EPSG:32644", transform=from_origin(600000, 2700000, 0.5, 0.5)) as dst:
            dst.write(np.moveaxis(image.astype("uint16"), -1, 0))
        return base64.b64encode(mem.read()).decode()


def png_b64(image: np.ndarray) -> str:
    height, width, bands = image.shape
    with MemoryFile() as mem:
        with mem.open(driver="PNG", width=width, height=height, count=bands,
                      dtype="uint16") as dst:
            dst.write(np.moveaxis(image.astype("uint16"), -1, 0))
        return base64.b64encode(mem.read()).decode()


def test_tensor_request_returns_one_mask_per_image(server):
    batch = np.stack([pixels(40, 70, 0), pixels(40, 70, 1)])
    response = invoke(server, {"inputs": batch.tolist()})
    assert response.status_code == 200, response.text
    masks = np.asarray(response.json()["predictions"])
    assert masks.shape == (2, 40, 70)
    assert set(np.unique(masks)) <= set(range(CLASSES))


def test_tensor_request_with_params_returns_probabilities(server):
    image = pixels(24, 30)
    response = invoke(server, {"inputs": [image.tolist()],
                               "params": {"tta": True, "overlap": 0.25,
                                          "output": "probabilities"}})
    assert response.status_code == 200, response.text
    probs = np.asarray(response.json()["predictions"])
    assert probs.shape == (1, 24, 30, CLASSES)
    np.testing.assert_allclose(probs.sum(-1), 1.0, atol=1e-5)


def test_base64_geotiff_answers_georeferenced_mask(server):
    image = pixels(50, 36)
    response = invoke(server, {"dataframe_split": {"columns": ["image"],
                                                   "data": [[geotiff_b64(image)]]}})
    assert response.status_code == 200, response.text
    records = response.json()["predictions"]
    with MemoryFile(base64.b64decode(records[0]["mask"])) as mem, mem.open() as mask:
        assert mask.driver == "GTiff"
        assert (mask.height, mask.width) == (50, 36)
        assert mask.crs == rasterio.crs.CRS.from_epsg(32644)
        assert mask.transform == from_origin(600000, 2700000, 0.5, 0.5)
        assert mask.colormap(1)[1] == (0, 0xA0, 0, 255)


def test_base64_png_answers_png_mask_equal_to_tensor_route(server):
    image = pixels(33, 45, seed=3)
    encoded = invoke(server, {"dataframe_split": {"columns": ["image"],
                                                  "data": [[png_b64(image)]]}})
    tensor = invoke(server, {"inputs": [image.tolist()]})
    assert encoded.status_code == 200, encoded.text
    data = base64.b64decode(encoded.json()["predictions"][0]["mask"])
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    with MemoryFile(io.BytesIO(data).read()) as mem, mem.open() as mask:
        np.testing.assert_array_equal(mask.read(1), np.asarray(tensor.json()["predictions"][0]))


def big_zero_geotiff_b64(height: int, width: int) -> str:
    """Few bytes on the wire, many pixels once decoded."""
    with MemoryFile() as mem:
        with mem.open(driver="GTiff", width=width, height=height, count=BANDS, dtype="uint8",
                      compress="deflate", tiled=True) as dst:
            dst.write(np.zeros((BANDS, height, width), "uint8"))
        return base64.b64encode(mem.read()).decode()


def image_frame(*values: str) -> dict:
    return {"dataframe_split": {"columns": ["image"], "data": [[v] for v in values]}}


BAD_REQUESTS = {
    "bands": (lambda: {"inputs": np.zeros((1, 16, 16, BANDS - 1)).tolist()},
              "wrong band count"),
    "base64": (lambda: image_frame("not base64!"), "not valid base64"),
    "bytes": (lambda: image_frame(base64.b64encode(b"GIF89a not an image").decode()),
              "undecodable image"),
    "pixels": (lambda: image_frame(big_zero_geotiff_b64(400, 300)), "too many pixels"),
    "tensor_pixels": (lambda: {"inputs": np.zeros((1, 320, 320, BANDS), "uint8").tolist()},
                      "too many pixels"),
    "overlap": (lambda: {"inputs": np.zeros((1, 8, 8, BANDS)).tolist(),
                         "params": {"overlap": 0.9}}, "overlap"),
    "output": (lambda: {"inputs": np.zeros((1, 8, 8, BANDS)).tolist(),
                        "params": {"output": "polygons"}}, "output"),
    "column": (lambda: {"dataframe_split": {"columns": ["img"], "data": [["x"]]}},
               "column 'image'"),
}


@pytest.mark.parametrize("case", sorted(BAD_REQUESTS))
def test_bad_request_is_400_naming_the_problem_and_server_keeps_serving(server, case):
    make_payload, message = BAD_REQUESTS[case]
    response = invoke(server, make_payload())
    assert response.status_code == 400, response.text
    assert message in response.json()["message"]
    good = invoke(server, {"inputs": [pixels(16, 16).tolist()]})
    assert good.status_code == 200
    assert np.asarray(good.json()["predictions"]).shape == (1, 16, 16)


def test_predict_through_endpoint_matches_local_predict(server, logged_model, tmp_path):
    from typer.testing import CliRunner

    from pipelines.cli import app
    from tests.serving.conftest import write_scene

    scene = write_scene(tmp_path / "scene.tif", height=70, width=45, nodata_border=3)
    outputs = {}
    previous = mlflow.get_tracking_uri()
    for mode, extra in {"local": [], "remote": ["--endpoint", server.url]}.items():
        out = tmp_path / f"{mode}.tif"
        result = CliRunner().invoke(app, [
            "predict", str(scene), "--out", str(out), "--tta", "--model-uri",
            logged_model["registered"], "--tracking-uri", logged_model["tracking_uri"], *extra])
        mlflow.set_tracking_uri(previous)
        assert result.exit_code == 0, result.output
        with rasterio.open(out) as mask:
            assert mask.crs == rasterio.crs.CRS.from_epsg(32644)
            outputs[mode] = mask.read(1)
    np.testing.assert_array_equal(outputs["local"], outputs["remote"])
    assert (outputs["remote"][:, :3] == 255).all()


def test_logged_model_carries_a_raw_pixel_input_example_it_can_predict(logged_model,
                                                                        serving_config):
    from mlflow.models import Model

    local = logged_model["local_path"]
    example = Model.load(local).load_input_example(local)
    assert example.shape == (1, 32, 32, BANDS)
    np.testing.assert_allclose(example[0, 0, 0], serving_config.mean, rtol=1e-6)
    mask = mlflow.pyfunc.load_model(local).predict(example)
    assert mask.shape == (1, 32, 32) and int(mask.max()) < CLASSES
