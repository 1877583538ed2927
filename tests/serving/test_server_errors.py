"""Requests the real `segpipe serve` process refuses (the session's one server, from
conftest): a 400 naming the problem in a short body, never a trace or a path, and the server
keeps serving."""

from __future__ import annotations

import base64
import struct
import zlib

import numpy as np
import pytest
from rasterio.io import MemoryFile

from serving.quiet import plain_images_quiet
from tests.serving.conftest import BANDS
from tests.serving.server import REPO_ROOT
from tests.serving.test_server import (
    big_zero_geotiff_b64,
    image_frame,
    invoke,
    npy_b64,
    npy_frame,
    pixels,
    plain_b64,
)

BAD_REQUESTS = {
    "bands": (lambda: {"inputs": np.zeros((1, 16, 16, BANDS - 1)).tolist()},
              f"(1, 16, 16, {BANDS - 1}) does not match expected shape (-1, -1, -1, {BANDS})"),
    "tensor_one_image": (lambda: {"inputs": np.zeros((16, 16, BANDS)).tolist()},
                         "does not match expected shape"),
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
               "needs one column, 'image'"),
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


def sparse_geotiff(width: int, height: int) -> bytes:
    """A GeoTIFF of width x height 4-band pixels without any tile written: its header and
    tile index alone (a PNG's 4 bands would be refused for its alpha first)."""
    with MemoryFile() as mem:
        with plain_images_quiet(), mem.open(driver="GTiff", width=width, height=height,
                                            count=BANDS, dtype="uint8", tiled=True,
                                            blockxsize=512, blockysize=512, sparse_ok=True):
            pass
        return mem.read()


def png_claiming(width: int, height: int) -> bytes:
    """A few hundred bytes whose PNG header claims width x height RGBA pixels."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data)))
    header = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(b"\x00" * 4096)) + chunk(b"IEND", b""))


def truncated_image(image: np.ndarray) -> str:
    data = base64.b64decode(plain_b64(image))
    return base64.b64encode(data[:len(data) * 2 // 3]).decode()


HOSTILE_REQUESTS = {
    "truncated_image": (lambda: image_frame(truncated_image(pixels(64, 64))),
                      "image 1 of 1: cannot read pixels (truncated or corrupt"),
    "huge_header": (lambda: image_frame(base64.b64encode(sparse_geotiff(50000, 50000)).decode()),
                    "image 1 of 1 (50000x50000) has 2500000000"),
    "second_image_too_big": (lambda: image_frame(plain_b64(pixels(8, 8)),
                                                 big_zero_geotiff_b64(400, 300)),
                             "image 2 of 2 (300x400) has 120000"),
    "big_blob_not_an_image": (lambda: image_frame(base64.b64encode(bytes(300_000)).decode()),
                              "image 1 of 1: undecodable image"),
    "npy_pickle": (lambda: {"dataframe_split": {"columns": ["npy"], "data": [[
        base64.b64encode(b"\x93NUMPY\x01\x00v\x00{'descr': '|O', 'fortran_order': False, "
                         b"'shape': (2, 2, 4), }" + b" " * 60 + b"\n").decode()]]}},
                   "is not plain numbers"),
    "npy_too_big": (lambda: npy_frame(np.zeros((400, 300, BANDS), np.uint8)),
                    "npy array 1 of 1 (300x400) has 120000"),
    "npy_short_data": (lambda: {"dataframe_split": {"columns": ["npy"], "data": [[
        base64.b64encode(base64.b64decode(npy_b64(np.zeros((8, 8, BANDS))))[:-10]).decode()]]}},
                       "data has 2038 bytes, its header's shape (8, 8, 4) float64 needs 2048"),
    "npy_bands": (lambda: npy_frame(np.zeros((8, 8, 1), np.uint8)),
                  "has 1 band, the model expects 4"),
    "two_columns": (lambda: {"dataframe_split": {"columns": ["image", "npy"],
                                                 "data": [["x", "y"]]}},
                    "needs one column"),
    "two_inputs": (lambda: {**npy_frame(pixels(8, 8)), "inputs": [pixels(8, 8).tolist()]},
                   "must hold one input, got 'dataframe_split', 'inputs'"),
    "not_a_dataframe": (lambda: {"dataframe_split": {"rows": 3}},
                        "dataframe_split is not a dataframe in 'split' orientation"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE_REQUESTS) + sorted(BAD_REQUESTS))
def test_error_bodies_are_short_messages_without_traces_or_paths(server, case):
    make_payload, message = {**HOSTILE_REQUESTS, **BAD_REQUESTS}[case]
    payload = make_payload()
    response = invoke(server, payload)
    assert response.status_code == 400, response.text
    body = response.json()
    assert set(body) == {"error_code", "message"}, body
    assert message in body["message"]
    assert len(response.text) < 600, response.text  # never the request echoed back
    for leak in ("Traceback", "stack_trace", "site-packages", str(REPO_ROOT), "/tmp"):
        assert leak not in response.text
