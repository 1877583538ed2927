"""What people naturally send to the model server besides its documented JSON: an image file
as the raw body is answered as the ``image`` column would be; a form upload, CSV, an empty
object, ``inputs`` that are no pixels get one line saying what the server takes (4xx, no
MLflow protocol notes)."""

from __future__ import annotations

import base64
import json

import numpy as np
import pytest
import requests
from rasterio.io import MemoryFile

from serving.quiet import plain_images_quiet
from tests.serving.test_server import geotiff_b64, image_frame, invoke, pixels, plain_b64
from tests.serving.test_server_guard import assert_short_error, post

#: Words of MLflow's own messages that mean nothing to someone sending an image.
MLFLOW_NOTES = ("IMPORTANT", "MLflow", "protocol", "TensorSpec", "tensor-based")


def assert_says_what_it_takes(response: requests.Response, status: int, *phrases: str):
    body = assert_short_error(response, status, *phrases)
    for note in MLFLOW_NOTES:
        assert note not in body["message"], body
    assert "docs/serving.md" in body["message"], body
    return body


@pytest.mark.parametrize("content_type, encode", [
    ("image/tiff", geotiff_b64), ("image/tiff", plain_b64),
    ("application/octet-stream", plain_b64),
])
def test_an_image_file_as_the_body_is_answered_as_the_image_column(server, content_type,
                                                                   encode):
    image = pixels(40, 36, seed=4)
    encoded = encode(image)
    raw = post(server, base64.b64decode(encoded), content_type=content_type)
    assert raw.status_code == 200, raw.text
    column = invoke(server, image_frame(encoded))
    assert raw.json() == column.json()


def test_a_png_body_is_read_as_the_image_column(server):
    """A PNG's 4th band is alpha: the 4-band model refuses it the same way on both routes."""
    image = pixels(12, 10, seed=3).astype("uint16")
    with MemoryFile() as mem:
        with plain_images_quiet(), mem.open(driver="PNG", width=10, height=12, count=4,
                                            dtype="uint16") as dst:
            dst.write(np.moveaxis(image, -1, 0))
        png = mem.read()
    raw = post(server, png, content_type="image/png")
    column = invoke(server, image_frame(base64.b64encode(png).decode()))
    assert raw.status_code == column.status_code == 400
    assert raw.json() == column.json()
    assert "3 bands and an alpha channel (band 4" in raw.json()["message"]


def test_a_raw_image_takes_params_from_the_query_string(server):
    encoded = plain_b64(pixels(24, 24, seed=5))
    response = requests.post(f"{server.url}/invocations?output=probabilities&tta=true",
                             data=base64.b64decode(encoded), timeout=120,
                             headers={"Content-Type": "image/tiff"})
    assert response.status_code == 200, response.text
    column = invoke(server, {**image_frame(encoded),
                             "params": {"output": "probabilities", "tta": True}})
    assert response.json() == column.json()
    bad = requests.post(f"{server.url}/invocations?tta=maybe", data=b"x", timeout=60,
                        headers={"Content-Type": "image/png"})
    assert_short_error(bad, 400, "param tta must be a boolean, got 'maybe'")


def test_a_form_upload_is_a_415_saying_to_send_the_file_itself(server):
    image = base64.b64decode(geotiff_b64(pixels(16, 16)))
    response = requests.post(f"{server.url}/invocations", files={"file": ("a.tif", image)},
                             timeout=60)
    assert_says_what_it_takes(response, 415, "form uploads (multipart/form-data) are not "
                                             "taken", "Content-Type: image/tiff")


@pytest.mark.parametrize("body, content_type, status, phrase", [
    ("a,b\n1,2\n", "text/csv", 415, "text/csv: a table (CSV, Parquet) cannot carry images"),
    ("a,b\n1,2\n", "text/plain", 415, "'text/plain' is not taken"),
    ("{}", "application/json", 400, "the request holds no input"),
    ('{"instancez": 1}', "application/json", 400,
     "the request holds no input (its keys: 'instancez')"),
    ('{"inputs": []}', "application/json", 400, "inputs must be pixels"),
    ('{"inputs": "abc"}', "application/json", 400, "inputs must be pixels"),
    ('{"inputs": {"x": [1, 2]}}', "application/json", 400, "inputs must be pixels"),
])
def test_what_the_server_does_not_take_is_one_line_saying_what_it_does(server, body,
                                                                       content_type, status,
                                                                       phrase):
    assert_says_what_it_takes(post(server, body, content_type=content_type), status, phrase)


def test_instances_of_rows_are_answered_as_dataframe_records(server):
    encoded = plain_b64(pixels(16, 16, seed=6))
    rows = invoke(server, {"instances": [{"image": encoded}]})
    assert rows.status_code == 200, rows.text
    assert rows.json() == invoke(server, image_frame(encoded)).json()


def test_tensor_inputs_still_answer(server):
    response = post(server, json.dumps({"inputs": np.ones((1, 8, 8, 4)).tolist()}))
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("payload, phrase", [
    ({"instances": [{}]}, "; got no column"),
    ({"dataframe_records": []}, "; got no column"),
    (image_frame(""), "image 1 of 1: empty (no bytes)"),
])
def test_an_empty_input_is_a_400_saying_what_is_missing(server, payload, phrase):
    assert_short_error(invoke(server, payload), 400, phrase)


def test_an_empty_or_too_large_image_body_is_refused_in_one_line(server):
    """An image body may be 3/4 of the body limit (8 MB here): its base64 text must fit."""
    empty = post(server, b"", content_type="image/png")
    assert_short_error(empty, 400, "the request body is empty: send an image file")
    large = post(server, bytes(7_000_000), content_type="image/tiff")
    assert_short_error(large, 413, "the limit is 6000000 (an image body's limit: 3/4 of the "
                                   "server's body limit, 8000000,")
    twice = requests.post(f"{server.url}/invocations?tta=true&tta=false", data=b"x",
                          headers={"Content-Type": "image/png"}, timeout=60)
    assert_short_error(twice, 400, "param 'tta' is given twice in the query string")
    tensor = requests.post(f"{server.url}/invocations?output=probabilities",
                           json={"inputs": np.ones((1, 8, 8, 4)).tolist()}, timeout=60)
    assert_short_error(tensor, 400, 'params of a JSON request go in its "params" key')
