"""The logged pyfunc behind a real `mlflow models serve` process on loopback, started through
`segpipe serve` (the session's one server, from conftest: startup is the slow part)."""

from __future__ import annotations

import base64
import io
import json

import mlflow
import numpy as np
import pytest
import rasterio
import requests
from rasterio.io import MemoryFile
from rasterio.transform import from_origin

from serving.quiet import plain_images_quiet
from tests.serving.conftest import BANDS, CLASSES


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


def plain_b64(image: np.ndarray) -> str:
    """An image without georeferencing: a GeoTIFF, as a PNG's 4th band is alpha, never a
    band of a 4-band model (tests/serving/test_alpha.py)."""
    height, width, bands = image.shape
    with MemoryFile() as mem:
        with plain_images_quiet(), mem.open(driver="GTiff", width=width, height=height,
                                            count=bands, dtype="uint16") as dst:
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


def test_base64_plain_image_answers_png_mask_equal_to_tensor_route(server):
    image = pixels(33, 45, seed=3)
    encoded = invoke(server, {"dataframe_split": {"columns": ["image"],
                                                  "data": [[plain_b64(image)]]}})
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


def test_server_log_holds_no_tensorflow_chatter_or_authoring_advice(server):
    """TensorFlow's start-up lines and MLflow's type-hint advice to model authors are noise
    to whoever runs the server; its own lines stay."""
    assert invoke(server, {"inputs": [pixels(8, 8).tolist()]}).status_code == 200
    log = server.log_path.read_text()
    assert "Uvicorn running on" in log or "Application startup complete" in log, log[-2000:]
    for noise in ("absl::InitializeLog", "cuInit", "oneDNN", "type hints"):
        assert noise not in log, log[-2000:]


def test_dataframe_routes_keep_mlflows_envelope_rules(server):
    """What MLflow's own parsing would do with a dataframe request, the server does too: an
    unknown top-level key is ignored, a content type MLflow does not take is a 415."""
    image = pixels(16, 16)
    plain = invoke(server, npy_frame(image))
    extra = invoke(server, {**npy_frame(image), "client_request_id": "abc"})
    assert plain.status_code == extra.status_code == 200
    assert plain.json() == extra.json()
    odd_type = requests.post(f"{server.url}/invocations", data=json.dumps(npy_frame(image)),
                             headers={"Content-Type": "application/json; format=pandas-split"},
                             timeout=60)
    assert odd_type.status_code == 415, odd_type.text
    assert set(odd_type.json()) == {"error_code", "message"}


@pytest.mark.slow
def test_plain_mlflow_server_enforces_the_tensor_signature(logged_model, serving_config,
                                                           tmp_path):
    """Under `mlflow models serve` alone the model's signature is MLflow's contract: the tensor
    route answers, a tensor of other bands is refused by MLflow itself, and the .npy route,
    which only segpipe's server takes, fails with a message saying so."""
    from serving.remote import (
        EndpointError,
        check_endpoint_model,
        endpoint_predict_fn,
        load_model_card,
    )
    from tests.serving.server import free_port, mlflow_serve

    server = mlflow_serve(logged_model["registered"], free_port(), tmp_path / "server.log",
                          MLFLOW_TRACKING_URI=logged_model["tracking_uri"]).wait_ready()
    try:
        good = invoke(server, {"inputs": [pixels(16, 16).tolist()]})
        bad = invoke(server, {"inputs": np.zeros((1, 8, 8, BANDS + 1)).tolist()})
        with pytest.raises(EndpointError, match="serve it with the `segpipe serve` of the segpipe"):
            endpoint_predict_fn(server.url)(pixels(8, 8)[None].astype(np.float32))
        unsaid = check_endpoint_model(server.url, load_model_card(logged_model["local_path"]))
    finally:
        server.stop()
    assert good.status_code == 200
    assert np.asarray(good.json()["predictions"]).shape == (1, 16, 16)
    assert bad.status_code == 400
    assert f"does not match expected shape (-1, -1, -1, {BANDS})" in bad.text
    assert unsaid == (f"endpoint {server.url} does not say which model it serves (GET /model "
                      f"answered 404: an older segpipe server, or MLflow's own); the mask is "
                      f"right only if it runs {logged_model['local_path']}")


def test_logged_model_carries_a_raw_pixel_input_example_it_can_predict(logged_model,
                                                                        serving_config):
    from mlflow.models import Model

    local = logged_model["local_path"]
    example = Model.load(local).load_input_example(local)
    assert example.shape == (1, 32, 32, BANDS)
    np.testing.assert_allclose(example[0, 0, 0], serving_config.mean, rtol=1e-6)
    mask = mlflow.pyfunc.load_model(local).predict(example)
    assert mask.shape == (1, 32, 32) and int(mask.max()) < CLASSES


def npy_b64(array: np.ndarray) -> str:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return base64.b64encode(buffer.getvalue()).decode()


def npy_frame(*arrays: np.ndarray) -> dict:
    return {"dataframe_split": {"columns": ["npy"], "data": [[npy_b64(a)] for a in arrays]}}


def from_npy(value: str) -> np.ndarray:
    return np.load(io.BytesIO(base64.b64decode(value)), allow_pickle=False)


def test_npy_route_answers_npy_equal_to_the_tensor_route(server):
    images = [pixels(40, 30, seed=4).astype("uint16"), pixels(17, 52, seed=5).astype("uint16")]
    tensor = invoke(server, {"inputs": [images[0].tolist()]})
    masks = invoke(server, npy_frame(*images))
    assert masks.status_code == 200, masks.text
    records = masks.json()["predictions"]
    assert [from_npy(r["mask"]).shape for r in records] == [(40, 30), (17, 52)]
    np.testing.assert_array_equal(from_npy(records[0]["mask"]),
                                  np.asarray(tensor.json()["predictions"][0]))
    probs = invoke(server, {**npy_frame(images[1]), "params": {"output": "probabilities"}})
    assert probs.status_code == 200, probs.text
    values = from_npy(probs.json()["predictions"][0]["probabilities"])
    assert values.dtype == np.float32 and values.shape == (17, 52, CLASSES)
    np.testing.assert_array_equal(values.argmax(-1), from_npy(records[1]["mask"]))


def strict_json(text: str):
    """What a strict JSON parser (JavaScript's, Go's) accepts: no NaN or Infinity."""
    def refuse(token):
        raise ValueError(f"non-standard JSON token {token}")
    return json.loads(text, parse_constant=refuse)


def test_non_finite_pixels_are_ignored_and_answers_stay_strict_json(server):
    image = pixels(20, 24).astype(np.float64)
    image[3, 4, 0] = np.inf
    image[5, 6, 2] = -np.inf
    image[7, 8, 1] = np.nan
    image[9, 10, 3] = 1e39  # a float64 that float32 cannot hold
    body = json.dumps({"inputs": [image.tolist()]})  # Python writes Infinity/NaN tokens
    assert "Infinity" in body
    for output in ("mask", "probabilities"):
        payload = body[:-1] + f', "params": {{"output": "{output}"}}}}'
        response = requests.post(f"{server.url}/invocations", data=payload, timeout=120,
                                 headers={"Content-Type": "application/json"})
        assert response.status_code == 200, response.text
        answer = np.asarray(strict_json(response.text)["predictions"][0])
        bad = [(3, 4), (5, 6), (7, 8), (9, 10)]
        if output == "mask":
            assert [int(answer[r, c]) for r, c in bad] == [255] * 4
            assert (answer < CLASSES).sum() == 20 * 24 - 4
        else:
            assert [answer[r, c].tolist() for r, c in bad] == [[0.0] * CLASSES] * 4


def test_georeferenced_image_is_predicted_at_the_models_gsd(server, logged_model, tmp_path):
    from serving.scene import predict_scene
    from tests.serving.conftest import LOGGED_GSD

    image = pixels(64, 48, seed=7)
    encoded = geotiff_b64(image)  # 0.5 m pixels in UTM
    answers = {}
    for resample in (True, False):
        response = invoke(server, {**image_frame(encoded), "params": {"resample": resample}})
        assert response.status_code == 200, response.text
        with MemoryFile(base64.b64decode(response.json()["predictions"][0]["mask"])) as mem, \
                mem.open() as mask:
            assert mask.shape == (64, 48)
            answers[resample] = mask.read(1)
    assert (answers[True] != answers[False]).any()
    path = tmp_path / "chip.tif"
    path.write_bytes(base64.b64decode(encoded))
    model = mlflow.pyfunc.load_model(logged_model["local_path"]).unwrap_python_model()
    assert model.config.gsd == LOGGED_GSD
    predict_scene(model.predictor, path, tmp_path / "local.tif")
    with rasterio.open(tmp_path / "local.tif") as local:
        np.testing.assert_array_equal(local.read(1), answers[True])
