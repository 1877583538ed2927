"""Request handling in-process: limits checked before any work, params, and a model failure
answered the way MLflow's scoring server serializes it (its own `invocations` function)."""

from __future__ import annotations

import base64
import json
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
import pytest
from rasterio.io import MemoryFile

from serving.decode import RequestError, check_params
from serving.handler import DEADLINE, RequestHandler
from serving.predict import ScenePredictor
from serving.windows import DeadlinePassed
from tests.serving.conftest import BANDS, make_config
from tests.serving.test_blending import pointwise_model
from tests.serving.test_resolution import accuracy, slope_model, slope_scene, write_geotiff
from tests.serving.test_server import big_zero_geotiff_b64, from_npy, npy_b64, plain_b64


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
        request = pd.DataFrame({"image": [plain_b64(small()), big_zero_geotiff_b64(400, 300)]})
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


@pytest.mark.parametrize("route", ["image", "npy", "tensor"])
def test_an_input_that_shrinks_to_nothing_is_refused_like_one_too_big(route, tmp_path):
    """A model trained at 2 m would see a 64x48 image of 1 mm pixels stretched ~20 times
    over its one pixel: refused, naming what set the resampling and the limit, before any
    prediction (the other extreme is the pixel limit)."""
    model = CountingModel()
    handler = RequestHandler(ScenePredictor(model, make_config(gsd=2.0)))
    image = np.ones((48, 64, BANDS), np.uint16)
    tiny = {"pixel_size": 0.001}
    if route == "image":
        path = write_geotiff(tmp_path / "mm.tif", image, pixel=0.001)
        request = pd.DataFrame({"image": [base64.b64encode(path.read_bytes()).decode()]})
        message = (r"image 1 of 1 \(64x48\) shrinks to under half a pixel a side at the "
                   r"model's resolution: its pixels of 0.001 m against the model's 2 m; the "
                   r"limit for an input this size is 0.02084 m per pixel")
        tiny = None
    elif route == "npy":
        request = pd.DataFrame({"npy": [npy_b64(image)]})
        message = (r"^param pixel_size 0.001: npy array 1 of 1 \(64x48\) shrinks to under half "
                   r"a pixel a side at the model's resolution \(2 m per pixel\); the limit for "
                   r"an input this size is 0.02084 m per pixel$")
    else:
        request = image[None]
        message = r"^param pixel_size 0.001: tensor image 1 of 1 \(64x48\) shrinks"
    with pytest.raises(RequestError, match=message):
        handler(request, tiny)
    assert model.calls == 0
    with pytest.raises(RequestError, match="shrinks to under half a pixel"):
        handler(pd.DataFrame({"npy": [npy_b64(image)]}), {"pixel_size": 0.0208})
    # The smallest pixel size the message names is taken.
    handler(pd.DataFrame({"npy": [npy_b64(image)]}), {"pixel_size": 0.02084})
    assert model.calls > 0


@pytest.mark.parametrize("route", ["image", "npy", "tensor"])
def test_a_strip_one_pixel_wide_is_predicted_at_scale_one_half(route, tmp_path):
    """Half a model pixel across, the strip is that pixel's ground: the model sees it
    averaged into one row and answers every pixel of it."""
    model = CountingModel()
    handler = RequestHandler(ScenePredictor(model, make_config(scale=0.5)))
    strip = np.random.default_rng(1).integers(1, 1000, (1, 64, BANDS)).astype("uint16")
    if route == "image":
        path = write_geotiff(tmp_path / "strip.tif", strip)
        request = pd.DataFrame({"image": [base64.b64encode(path.read_bytes()).decode()]})
    elif route == "npy":
        request = pd.DataFrame({"npy": [npy_b64(strip)]})
    else:
        request = strip[None]
    answer = handler(request, None)
    if route == "tensor":
        mask = answer[0]
    elif route == "npy":
        mask = from_npy(answer["mask"][0])
    else:
        with MemoryFile(base64.b64decode(answer["mask"][0])) as mem, mem.open() as geotiff:
            mask = geotiff.read(1)
    assert model.calls > 0 and mask.shape == (1, 64)
    assert (mask < 3).all()  # a class for every pixel, none ignored


@pytest.mark.parametrize(("params", "message"), [
    ({"ovrlap": 0.3}, "unknown params 'ovrlap'; the model takes nodata, output, overlap, "
                      "pixel_size, resample, tta"),
    ({"nodata": "none"}, "param nodata must be a number or \"nan\", got 'none'"),
    ({"nodata": True}, "param nodata must be a number or \"nan\", got True"),
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


def test_images_are_named_from_one_in_errors():
    """"image 2 of 2", as people count, on every route."""
    handler = RequestHandler(ScenePredictor(CountingModel(), make_config(max_pixels=100_000)))
    cases = [(pd.DataFrame({"image": [plain_b64(small()), big_zero_geotiff_b64(400, 300)]}),
              "image 2 of 2 (300x400) has 120000"),
             (pd.DataFrame({"npy": [npy_b64(small()), "not base64!"]}),
              "npy array 2 of 2: not valid base64"),
             (np.zeros((2, 400, 300, BANDS), np.uint8), "tensor image 1 of 2 (300x400)")]
    for request, message in cases:
        with pytest.raises(RequestError, match=re.escape(message)):
            handler(request, None)


def test_probabilities_count_once_per_class_against_the_pixel_limit():
    """A probabilities answer holds a float32 per class where a mask holds a byte: the
    limit that bounds the server's memory counts each class."""
    model = CountingModel()
    config = make_config(max_pixels=100_000)  # 3 classes
    handler = RequestHandler(ScenePredictor(model, config))
    image = npy_b64(np.ones((200, 200, BANDS), np.uint16))  # 40000 pixels, 120000 counted
    with pytest.raises(RequestError, match=r"has 40000 x 3 classes = 120000 \(probabilities "
                                           r"count once per class\), the limit per request "
                                           r"is 100000"):
        handler(pd.DataFrame({"npy": [image]}), {"output": "probabilities"})
    assert model.calls == 0
    assert from_npy(handler(pd.DataFrame({"npy": [image]}), None)["mask"][0]).shape == (200, 200)
    small_image = npy_b64(np.ones((100, 100, BANDS), np.uint16))
    answer = handler(pd.DataFrame({"npy": [small_image]}), {"output": "probabilities"})
    assert from_npy(answer["probabilities"][0]).shape == (100, 100, 3)


def test_a_request_whose_deadline_passed_while_it_waited_is_not_started():
    """The server sets the deadline (serving/guard.py); a request that waited its turn past
    it was answered 504 already, so none of its batches runs."""
    model = CountingModel()
    handler = RequestHandler(ScenePredictor(model, make_config()))
    assert RequestHandler.deadline is DEADLINE
    token = DEADLINE.set(time.monotonic() - 1)
    try:
        with pytest.raises(DeadlinePassed, match="deadline passed while it waited its turn"):
            handler(small()[None], None)
    finally:
        DEADLINE.reset(token)
    assert model.calls == 0
    token = DEADLINE.set(time.monotonic() + 600)
    try:
        assert handler(small()[None], None).shape == (1, 16, 16)
    finally:
        DEADLINE.reset(token)


def test_a_deadline_passing_during_a_request_stops_it_and_answers_504(logged_model):
    """Through MLflow's own scoring code: the stop is an MlflowException with HTTP 504 (the
    client had that answer already), never a 500 with a stack trace."""
    import mlflow
    from mlflow.exceptions import MlflowException
    from mlflow.pyfunc.scoring_server import invocations

    calls = []
    pyfunc = mlflow.pyfunc.load_model(logged_model["local_path"])
    model = pyfunc.unwrap_python_model()

    deadline = time.monotonic() + 2

    def first_batch_outlives_the_deadline(batch):
        # The first batch ends after the deadline, whatever the machine's load: a short
        # deadline raced MLflow's parsing (a garbage-collection pass took 0.5 s there). On a
        # machine slow enough to parse past it, the stop comes before the first batch.
        calls.append(len(batch))
        time.sleep(max(0.0, deadline - time.monotonic()) + 0.01)
        return pointwise_model(batch)

    model.handler = RequestHandler(ScenePredictor(first_batch_outlives_the_deadline,
                                                  model.config))
    body = json.dumps({"inputs": [small(1).repeat(8, 0).repeat(8, 1).tolist()]})  # 128x128
    token = model.handler.deadline.set(deadline)
    try:
        with pytest.raises(MlflowException) as error:
            invocations(body, "application/json", pyfunc, pyfunc.metadata.get_input_schema())
    finally:
        model.handler.deadline.reset(token)
    assert error.value.get_http_status_code() == 504
    message = json.loads(error.value.serialize_as_json())["message"]
    assert re.fullmatch(r"the request's deadline passed: stopped after \d+ of \d+ batches",
                        message), message
    done, total = map(int, re.findall(r"\d+", message))
    # One batch may be in flight when the deadline passes (the forward queue runs ahead).
    assert len(calls) <= done <= 2 < total
