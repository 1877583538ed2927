"""Request handling in-process: limits checked before any work, params, and a model failure
answered the way MLflow's scoring server serializes it (its own `invocations` function)."""

from __future__ import annotations

import base64
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
import pytest
from rasterio.io import MemoryFile

from serving.decode import RequestError, check_params
from serving.handler import RequestHandler
from serving.predict import ScenePredictor
from tests.serving.conftest import BANDS, make_config
from tests.serving.test_blending import pointwise_model
from tests.serving.test_resolution import accuracy, slope_model, slope_scene, write_geotiff
from tests.serving.test_server import big_zero_geotiff_b64, from_npy, npy_b64, png_b64


class CountingModel:
    def __init__(self):
        self.calls = 0

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        self.calls += 1
        return pointwise_model(batch)


def small(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(1, 1000, (16, 16, BANDS)).astype("uint16")


@pytest.mark.parametrize("route", ["image", "npy", "tensor"])
def test_every_image_is_checked_before_any_is_predicted(route):
    model = CountingModel()
    handler = RequestHandler(ScenePredictor(model, make_config(max_pixels=100_000)))
    if route == "image":
        request = pd.DataFrame({"image": [png_b64(small()), big_zero_geotiff_b64(400, 300)]})
    elif route == "npy":
        request = pd.DataFrame({"npy": [npy_b64(small()),
                                        npy_b64(np.zeros((400, 300, BANDS), np.uint8))]})
    else:
        request = np.zeros((2, 230, 230, BANDS), np.uint8)  # 2 x 52900 > 100000 together
    with pytest.raises(RequestError, match="too many pixels"):
        handler(request, None)
    assert model.calls == 0
    handler(pd.DataFrame({"npy": [npy_b64(small())]}), None)
    assert model.calls > 0  # the same handler predicts a request within the limits


def test_resampling_counts_against_the_limit():
    handler = RequestHandler(ScenePredictor(CountingModel(),
                                            make_config(max_pixels=100_000, scale=2.0)))
    image = np.ones((200, 200, BANDS), np.uint16)  # 40000 here, 160000 at the model's scale
    with pytest.raises(RequestError, match=r"200x200 \(400x400 at the model's resolution\)"):
        handler(image, None)
    assert handler(image, {"resample": False}).shape == (1, 200, 200)


@pytest.mark.parametrize(("params", "message"), [
    ({"ovrlap": 0.3}, "unknown params 'ovrlap'; the model takes output, overlap, pixel_size, "
                      "resample, tta"),
    ({"overlap": "lots"}, "overlap must be a number, got 'lots'"),
    ({"overlap": 0.8}, "overlap must be between 0 and 0.75"),
    ({"output": "x" * 500}, r"output must be one of \['mask', 'probabilities'\], got 'xxx"),
    ({"tta": "yes"}, "tta must be true or false"),
])
def test_params_are_checked_with_short_messages(params, message):
    with pytest.raises(RequestError, match=message) as error:
        check_params(params, make_config())
    assert len(str(error.value)) < 200


def test_params_default_to_the_models_settings():
    params = check_params(None, make_config(overlap=0.25))
    assert (params.tta, params.overlap, params.output, params.resample) == (
        False, 0.25, "mask", True)


def test_a_failing_model_is_a_500_without_trace_through_mlflows_server_code(logged_model):
    import mlflow
    from mlflow.exceptions import MlflowException
    from mlflow.pyfunc.scoring_server import invocations

    def broken(batch):
        raise RuntimeError("device lost at /secret/path/model.so")

    pyfunc = mlflow.pyfunc.load_model(logged_model["local_path"])
    model = pyfunc.unwrap_python_model()
    model.handler = RequestHandler(ScenePredictor(broken, model.config))
    body = json.dumps({"inputs": [small().tolist()]})
    with pytest.raises(MlflowException) as error:
        invocations(body, "application/json", pyfunc, pyfunc.metadata.get_input_schema())
    # what the scoring server's error wrapper sends: serialize_as_json() with this status
    assert error.value.get_http_status_code() == 500
    answer = json.loads(error.value.serialize_as_json())
    assert answer == {"error_code": "INTERNAL_ERROR",
                      "message": "the model failed on this request (RuntimeError); the server "
                                 "log has the details"}


def test_every_route_answers_at_the_training_resolution(tmp_path):
    handler = RequestHandler(ScenePredictor(slope_model, make_config(scale=0.5)))
    image = slope_scene()
    tensor = handler(image[None], None)[0]
    npy = handler(pd.DataFrame({"npy": [npy_b64(image)]}), None)["mask"][0]
    path = write_geotiff(tmp_path / "scene.tif", image)
    encoded = base64.b64encode(path.read_bytes()).decode()
    geotiff = handler(pd.DataFrame({"image": [encoded]}), None)["mask"][0]
    with MemoryFile(base64.b64decode(geotiff)) as mem, mem.open() as mask:
        geotiff = mask.read(1)
    for answer in (tensor, from_npy(npy), geotiff):
        assert answer.shape == image.shape[:2]
        assert accuracy(answer) > 0.99
    assert accuracy(handler(image[None], {"resample": False})[0]) < 0.6


def test_concurrent_requests_take_turns_two_at_a_time():
    active, peak, lock = [0], [0], threading.Lock()

    def slow_model(batch):
        with lock:
            active[0] += 1
            peak[0] = max(peak[0], active[0])
        time.sleep(0.05)
        with lock:
            active[0] -= 1
        return pointwise_model(batch)

    handler = RequestHandler(ScenePredictor(slow_model, make_config()))
    with ThreadPoolExecutor(5) as pool:
        answers = list(pool.map(lambda seed: handler(small(seed)[None], None), range(5)))
    assert [a.shape for a in answers] == [(1, 16, 16)] * 5
    assert peak[0] == 2
