"""The session's real `segpipe serve` process: param pixel_size has the server resample an
array to the model's gsd, and the dataframe answers carry a ``warnings`` column when an
input is not what the model learnt from."""

from __future__ import annotations

import numpy as np

from tests.serving.conftest import LOGGED_GSD
from tests.serving.test_server import (
    from_npy,
    geotiff_b64,
    image_frame,
    invoke,
    npy_frame,
    pixels,
    plain_b64,
)


def mask_of(response) -> np.ndarray:
    import base64

    from rasterio.io import MemoryFile

    assert response.status_code == 200, response.text
    value = response.json()["predictions"][0]["mask"]
    if response.request.body and b'"npy"' in response.request.body:
        return from_npy(value)
    with MemoryFile(base64.b64decode(value)) as mem, mem.open() as mask:
        return mask.read(1)


def test_pixel_size_has_an_array_resampled_as_a_georeferenced_image(server):
    """The model was trained at 1 m: 0.5 m pixels sent as .npy with pixel_size 0.5 get the
    mask the same pixels get as a GeoTIFF in UTM at 0.5 m."""
    image = pixels(64, 48, seed=7).astype(np.uint16)
    geotiff = mask_of(invoke(server, image_frame(geotiff_b64(image))))
    sized = mask_of(invoke(server, {**npy_frame(image), "params": {"pixel_size": 0.5}}))
    plain = invoke(server, npy_frame(image))
    np.testing.assert_array_equal(sized, geotiff)
    assert (mask_of(plain) != geotiff).any()
    assert plain.json()["predictions"][0]["warnings"] == [
        f"npy array 1 of 1 carries no pixel size: it is predicted at its own pixel size, not at "
        f"the {LOGGED_GSD:g} m per pixel the model was trained at; pass its metres per pixel "
        f"(param pixel_size) to have it resampled"]
    # the tensor route has the model's dtype, float32 here (resampled without rounding)
    tensor = invoke(server, {"inputs": [image.tolist()], "params": {"pixel_size": 0.5}})
    as_float = invoke(server, {**npy_frame(image.astype(np.float32)),
                               "params": {"pixel_size": 0.5}})
    np.testing.assert_array_equal(np.asarray(tensor.json()["predictions"][0]),
                                  mask_of(as_float))


def test_pixel_size_is_checked(server):
    for value, message in ((0, "param pixel_size must be a positive number of metres"),
                           ("1 m", "param pixel_size must be a double")):
        response = invoke(server, {**npy_frame(pixels(8, 8)), "params": {"pixel_size": value}})
        assert response.status_code == 400, response.text
        assert message in response.json()["message"]
    both = invoke(server, {**npy_frame(pixels(8, 8)),
                           "params": {"pixel_size": 1.0, "resample": False}})
    assert both.status_code == 400
    assert both.json()["message"] == ("param pixel_size asks for resampling, param resample "
                                      "is false")


def test_a_pixel_size_that_shrinks_the_input_to_nothing_is_a_400(server):
    """The other extreme of resampling: a 1 mm pixel_size for a model trained at 1 m shrinks a
    64x48 array to a twentieth of a pixel; refused as too many pixels is, not predicted
    stretched over one."""
    response = invoke(server, {**npy_frame(pixels(48, 64)), "params": {"pixel_size": 0.001}})
    assert response.status_code == 400, response.text
    assert response.json()["message"] == (
        f"param pixel_size 0.001: npy array 1 of 1 (64x48) shrinks to under half a pixel a "
        f"side at the model's resolution ({LOGGED_GSD:g} m per pixel); the limit for an input "
        f"this size is 0.01042 m per pixel")


def test_answers_warn_about_an_8_bit_input_and_an_image_without_metres(server):
    """The model learnt from float32 pixels around 500: an 8-bit array is warned about, in its
    own row; an input the model knows says nothing (no column at all)."""
    eight_bit = pixels(16, 16).clip(0, 255).astype(np.uint8)
    wide = pixels(16, 16).astype(np.uint16)
    response = invoke(server, {**npy_frame(wide, eight_bit), "params": {"pixel_size": 1.0}})
    assert response.status_code == 200, response.text
    rows = response.json()["predictions"]
    assert rows[0]["warnings"] == []
    assert rows[1]["warnings"] == [
        "npy array 2 of 2 is uint8, but the model was trained on float32 pixels (band means 500): "
        "values of another range than training's give a wrong mask; predict the original "
        "float32 data if you have it"]
    quiet = invoke(server, {**npy_frame(wide), "params": {"pixel_size": 1.0}})
    assert set(quiet.json()["predictions"][0]) == {"mask"}
    png = invoke(server, image_frame(plain_b64(pixels(16, 16))))
    assert png.status_code == 200, png.text
    assert png.json()["predictions"][0]["warnings"] == [
        "image 1 of 1 has no georeferencing, so its pixel size is unknown: it is predicted at its "
        f"own pixel size, not at the {LOGGED_GSD:g} m per pixel the model was trained at; "
        "give its metres per pixel (param pixel_size) or georeference it in a projected CRS "
        "to have it resampled"]


def test_windows_a_client_cut_from_a_scene_are_not_warned_about(server):
    """``resample=false`` windows come from a client that checked the whole scene (``segpipe
    predict --endpoint``) and sends each window in the smallest type that holds it: a dark
    window of a float32 scene travels as uint8 and is no 8-bit export."""
    eight_bit = pixels(16, 16).clip(0, 255).astype(np.uint8)
    response = invoke(server, {**npy_frame(eight_bit),
                               "params": {"resample": False, "overlap": 0}})
    assert response.status_code == 200, response.text
    assert set(response.json()["predictions"][0]) == {"mask"}
