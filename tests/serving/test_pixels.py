"""The one rule for invalid pixels and the band normalization every step shares."""

from __future__ import annotations

import numpy as np
import pytest

from components.raster import invalid_pixels as data_plane_invalid
from serving.pixels import compact, invalid_as_nan, invalid_pixels, normalize_image


def test_nodata_needs_every_band_and_nan_any_band():
    pixels = np.array([[[0, 0], [0, 5]], [[7, 7], [3, 0]]], np.float32)  # (2, 2, 2) H, W, C
    pixels[1, 1, 0] = np.nan
    np.testing.assert_array_equal(invalid_pixels(pixels, 0.0), [[True, False], [False, True]])
    np.testing.assert_array_equal(invalid_pixels(pixels, None), [[False, False], [False, True]])
    np.testing.assert_array_equal(invalid_pixels(pixels, float("nan")),
                                  [[False, False], [False, True]])


@pytest.mark.parametrize("value", [np.inf, -np.inf, np.nan])
def test_non_finite_values_are_invalid_like_nan(value):
    pixels = np.ones((3, 4, 2), np.float32)
    pixels[1, 2, 1] = value
    expected = np.zeros((3, 4), bool)
    expected[1, 2] = True
    np.testing.assert_array_equal(invalid_pixels(pixels, None), expected)
    normalized = normalize_image(pixels, [1.0, 1.0], [1.0, 1.0])
    assert np.isfinite(normalized).all() and (normalized[1, 2] == 0).all()


def test_float64_beyond_float32_range_is_invalid():
    pixels = np.ones((2, 2, 1), np.float64)
    pixels[0, 1] = 1e39  # inf once the model's float32 sees it
    pixels[1, 0] = -1e300
    pixels[1, 1] = 3e38  # still a float32
    np.testing.assert_array_equal(invalid_pixels(pixels, None), [[False, True], [True, False]])
    normalized = normalize_image(pixels, [0.0], [1.0])
    assert np.isfinite(normalized).all()


def test_integer_pixels_only_have_nodata():
    pixels = np.array([[[0, 0], [65535, 1]]], np.uint16)
    np.testing.assert_array_equal(invalid_pixels(pixels, 0), [[True, False]])


def test_data_plane_band_first_arrays_follow_the_same_rule():
    rng = np.random.default_rng(0)
    bands = rng.integers(0, 3, (3, 16, 16)).astype("float32")  # many all-zero pixels
    bands[1, 2, 3] = np.nan
    bands[0, 5, 5] = np.inf
    for nodata in (0.0, None, float("nan")):
        np.testing.assert_array_equal(data_plane_invalid(bands, nodata),
                                      invalid_pixels(np.moveaxis(bands, 0, -1), nodata))
    assert invalid_pixels(bands, 0.0, band_axis=0).sum() > 2


def test_normalize_uses_band_statistics_and_leaves_the_input_alone():
    image = np.array([[[10.0, 20.0], [0.0, 0.0]]], np.float32)
    out = normalize_image(image, mean=[8, 10], std=[2, 5], nodata=0)
    np.testing.assert_allclose(out, [[[1.0, 2.0], [0.0, 0.0]]])
    assert image[0, 0, 0] == 10.0
    with pytest.raises(ValueError, match="3 bands, statistics have 2"):
        normalize_image(np.zeros((1, 1, 3)), [0, 0], [1, 1])


@pytest.mark.parametrize("dtype", ["uint8", "int8", "uint16", "int16", "uint32", "int32"])
@pytest.mark.parametrize("bands", [1, 2, 3, 4, 8])
def test_every_band_at_nodata_is_the_same_rule_for_any_integer_pixel_width(dtype, bands):
    """Integer pixels of 2-8 bytes are compared whole; the answer is the band-by-band one,
    for negative nodata too, and a nodata the dtype cannot hold marks nothing."""
    info = np.iinfo(dtype)
    rng = np.random.default_rng(bands)
    values = [0, 1, -1, int(info.max)]
    pixels = rng.choice([v for v in values if info.min <= v <= info.max],
                        (9, 7, bands)).astype(dtype)
    for nodata in (0, 1, -1, int(info.max), 70000, 2.5):
        expected = np.ones((9, 7), bool)
        for band in range(bands):
            expected &= pixels[..., band] == nodata
        np.testing.assert_array_equal(invalid_pixels(pixels, nodata), expected)
        # a strided view takes the band-by-band path and agrees
        wide = np.zeros((9, 14, bands), dtype)
        wide[:, ::2] = pixels
        np.testing.assert_array_equal(invalid_pixels(wide[:, ::2], nodata), expected)


@pytest.mark.parametrize("dtype", ["uint8", "int16", "uint16", "int32", "float32", "float64"])
def test_invalid_as_nan_normalizes_as_the_raw_pixels_with_their_nodata(dtype):
    """What an --endpoint client sends: a reader that knows no nodata finds the same invalid
    pixels and the same z-scores as one that reads the raw pixels with the scene's nodata."""
    rng = np.random.default_rng(0)
    high = 200 if dtype == "uint8" else 30000
    raw = rng.integers(0, high, (6, 7, 3)).astype(dtype)
    raw[2, 3] = 99  # the scene's nodata in every band
    raw[4, 1, 0] = 99  # in one band only: valid
    invalid = invalid_pixels(raw, 99)
    sent = invalid_as_nan(raw, invalid)
    assert sent.dtype == (np.float64 if dtype in ("int32", "float64") else np.float32)
    np.testing.assert_array_equal(invalid_pixels(sent, None), invalid)
    mean, std = [12.5, 80.0, 1000.25], [3.0, 40.5, 700.0]
    np.testing.assert_array_equal(normalize_image(sent, mean, std),
                                  normalize_image(raw, mean, std, 99))


def test_compact_windows_travel_in_the_smallest_exact_type():
    window = np.array([[[0.0, 255.0]]], np.float32)
    assert compact(window).dtype == np.uint8
    assert compact(window - 1).dtype == np.int16
    assert compact(window * 200).dtype == np.uint16
    for kept in (window + 0.5, window * 1000, np.where(window > 0, np.nan, window),
                 window.astype(np.float64)):
        assert compact(kept) is kept
    mean, std = [10.0, 2000.0], [3.0, 7.0]
    for sent in (window, window - 1, window * 200):
        np.testing.assert_array_equal(normalize_image(compact(sent), mean, std),
                                      normalize_image(sent, mean, std))


def test_per_band_nodata_groups_bands_by_their_own_value():
    # RGB tagged 0, a DSM tagged -9999, an untagged fifth band
    pixels = np.array([[0, 0, 0, 250, 1],        # every RGB band at 0: RGB's no data
                       [0, 9, 0, 250, 1],        # a dark pixel: valid
                       [9, 9, 9, -9999, 1],      # a DSM hole under valid RGB
                       [0, 0, 0, -9999, 0],      # both
                       [9, 9, 9, 250, 0]], np.float32)  # the untagged band at 0 marks nothing
    invalid = invalid_pixels(pixels, (0.0, 0.0, 0.0, -9999.0, None))
    np.testing.assert_array_equal(invalid, [True, False, True, True, False])
    # one value for every band is the one-tag rule
    shared = np.array([[0, 0, 0, 0, 0], [0, 0, 0, 250, 0]], np.float32)
    np.testing.assert_array_equal(invalid_pixels(shared, (0.0,) * 5),
                                  invalid_pixels(shared, 0.0))
    nan_tagged = np.array([[np.nan, 1, 1, 1, 1], [1, 1, 1, 1, 1]], np.float32)
    assert invalid_pixels(nan_tagged, (np.nan, None, None, None, None)).tolist() == [True, False]
