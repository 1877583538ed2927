"""The server's base64: decoded straight from the request's string and encoded straight from
the result's memory (no whole copies on the way), with the same bytes and refusals as the
standard library's."""

from __future__ import annotations

import base64
import binascii
import io

import numpy as np
import pytest

from serving.decode import RequestError, decode_base64
from serving.encode import decode_npy_answer, encode_npy

PAYLOAD = bytes(range(256)) * 41 + b"tail"


@pytest.mark.parametrize("text", [
    base64.b64encode(PAYLOAD).decode(),
    base64.b64encode(PAYLOAD),
    "data:application/octet-stream;base64," + base64.b64encode(PAYLOAD).decode(),
    b"data:image/png;base64," + base64.b64encode(PAYLOAD),
    "",
])
def test_valid_base64_decodes_as_the_standard_library_does(text):
    expected = base64.b64decode(text.split("," if isinstance(text, str) else b",")[-1],
                                validate=True)
    assert decode_base64(text, "image 1 of 1") == expected


@pytest.mark.parametrize("text", ["not base64!", "QUJD\nRA==", "QUJDRA=", "QUJDRA==QQ==",
                                  "QUJDé===", b"QU JD"])
def test_invalid_base64_is_refused_as_validate_true_refuses_it(text):
    with pytest.raises((binascii.Error, ValueError)):
        base64.b64decode(text, validate=True)
    with pytest.raises(RequestError, match=r"^npy array 2 of 3: not valid base64 \(starts "):
        decode_base64(text, "npy array 2 of 3")


def test_a_value_that_is_not_text_is_refused():
    with pytest.raises(RequestError, match="image 1 of 1: expected a base64 string, got int"):
        decode_base64(12, "image 1 of 1")


def _numpy_save_b64(array: np.ndarray) -> str:
    buffer = io.BytesIO()
    np.save(buffer, np.ascontiguousarray(array), allow_pickle=False)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


@pytest.mark.parametrize("array", [
    np.zeros((0,), np.uint8), np.array(3.5, np.float32), np.arange(2, dtype=np.uint8),
    np.random.default_rng(0).integers(0, 255, (1001, 999), dtype=np.uint8),
    np.asfortranarray(np.random.default_rng(1).random((300, 200))),
    np.random.default_rng(2).random((1100, 1100, 3)).astype(np.float32),  # several pieces
], ids=lambda a: f"{a.dtype}{a.shape}")
def test_encode_npy_writes_what_numpy_save_and_b64encode_write(array):
    encoded = encode_npy(array)
    assert encoded == _numpy_save_b64(array)
    np.testing.assert_array_equal(decode_npy_answer(encoded), array)
