"""What raw pixels mean, for every step that reads them: which pixels are invalid, how bands
are normalized, and how much block cache GDAL may hold while streaming a raster.

The one definition: the data plane (components/) and training import it from here, so tiles,
statistics, training inputs and served predictions agree. NumPy only, so it ships inside the
MLflow model and loads without Keras."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

#: GDAL's block cache would otherwise grow with the raster being streamed up to 5% of RAM.
#: Prediction needs it to hold one row of input tiles across a panel (8192 px x 256 rows x
#: 4 float32 bands = 32 MiB), or strips re-read and re-decompress tiles.
GDAL_CACHE_MB = 64

_FLOAT32_MAX = float(np.finfo(np.float32).max)


def _bands(pixels: np.ndarray, axis: int) -> list[np.ndarray]:
    """One view per band: per-band passes are several times faster than reducing over a
    short band axis (NumPy's inner loop would run over 3-4 values at a time)."""
    lead = (slice(None),) * axis
    return [pixels[(*lead, band)] for band in range(pixels.shape[axis])]


#: The nodata pixels are read with: one value for every band, or one per band (None: the band
#: has none), as a VRT stacking files of their own tags declares it (``band_nodata``).
Nodata = float | tuple[float | None, ...] | None


def invalid_pixels(pixels: np.ndarray, nodata: Nodata, band_axis: int = -1) -> np.ndarray:
    """Bool mask without the band axis: pixels where every band equals ``nodata``, or any band
    is not a finite float32 (NaN, +-inf, or a float64 beyond float32's range, which the model
    would see as inf). Per-band ``nodata``: bands are grouped by their value, and a pixel is
    invalid where every band of some group holds that group's value (a band without one is
    in no group); one value for every band is the same rule."""
    axis = band_axis % pixels.ndim
    bands = _bands(pixels, axis)
    invalid = np.zeros(bands[0].shape, dtype=bool)
    if np.issubdtype(pixels.dtype, np.floating):
        for band in bands:
            if pixels.dtype.itemsize > 4:
                # NaN compares False, so it is caught here too
                invalid |= ~(np.abs(band) <= _FLOAT32_MAX)
            else:
                invalid |= ~np.isfinite(band)
    for value, members in _nodata_groups(nodata, len(bands)):
        whole = _whole_pixels(pixels, value, axis) if len(members) == len(bands) else None
        if whole is not None:
            pixel_values, nodata_pixel = whole
            invalid |= pixel_values == nodata_pixel
            continue
        all_nodata = bands[members[0]] == value
        for member in members[1:]:
            all_nodata &= bands[member] == value
        invalid |= all_nodata
    return invalid


def _nodata_groups(nodata: Nodata, count: int) -> list[tuple[float, list[int]]]:
    """(value, the bands holding it as their nodata) for each finite value (NaN in any band
    is invalid on its own)."""
    values = tuple(nodata) if isinstance(nodata, tuple | list) else (nodata,) * count
    if len(values) != count:
        raise ValueError(f"{len(values)} nodata values for {count} bands")
    groups: dict[float, list[int]] = {}
    for band, value in enumerate(values):
        if value is not None and np.isfinite(value):
            groups.setdefault(float(value), []).append(band)
    return list(groups.items())


#: Unsigned integer types by size in bytes: a whole pixel of that many bytes seen as one item.
PIXEL_UINTS = {1: np.uint8, 2: np.uint16, 4: np.uint32, 8: np.uint64}


def _whole_pixels(pixels: np.ndarray, nodata: float,
                  band_axis: int) -> tuple[np.ndarray, np.generic] | None:
    """Integer pixels of 1-8 bytes seen as one unsigned item each, and ``nodata`` in every band
    as such an item: "every band equals nodata" is then one comparison per pixel, ten times
    faster than one per band. None where that view does not exist (float bands, whose -0.0
    equals 0.0 with other bytes; a band axis that is not last and contiguous; a nodata
    outside the dtype, which marks no pixel)."""
    item = PIXEL_UINTS.get(pixels.shape[band_axis] * pixels.itemsize)
    if (item is None or not np.issubdtype(pixels.dtype, np.integer)
            or band_axis != pixels.ndim - 1 or not pixels.flags.c_contiguous):
        return None
    limits = np.iinfo(pixels.dtype)
    if not (float(nodata).is_integer() and limits.min <= nodata <= limits.max):
        return None
    nodata_pixel = np.full(pixels.shape[-1], nodata, pixels.dtype).view(item)[0]
    return pixels.view(item)[..., 0], nodata_pixel


def float_dtype(dtype: np.dtype) -> np.dtype:
    """The float type that holds every value of ``dtype`` exactly and NaN: float32 for
    float32 and smaller and for integers of up to 16 bits, float64 for the rest."""
    dtype = np.dtype(dtype)
    if dtype.itemsize <= 2 or dtype == np.float32:
        return np.dtype(np.float32)
    return np.dtype(np.float64)


def invalid_as_nan(raw: np.ndarray, invalid: np.ndarray,
                   out: np.ndarray | None = None) -> np.ndarray:
    """(..., C) raw pixels as ``float_dtype`` with every band of each ``invalid`` pixel NaN:
    an array whose invalid pixels any reader (``invalid_pixels`` with any nodata) sees as
    such, and whose valid pixels normalize exactly as the raw ones (the arithmetic runs in
    the float type either way)."""
    return fill_invalid(raw, invalid, np.nan, out)


def fill_invalid(raw: np.ndarray, invalid: np.ndarray, fill: float | np.ndarray,
                 out: np.ndarray | None = None) -> np.ndarray:
    """``invalid_as_nan`` with ``fill`` (one value, or one per band) for the invalid pixels
    instead of NaN."""
    if out is None:
        out = np.empty(raw.shape, float_dtype(raw.dtype))
    out[...] = raw
    out[invalid] = fill
    return out


#: Integer types a float window without NaN may travel as, smallest first.
_COMPACT_TYPES = (np.uint8, np.int16, np.uint16)


def compact(window: np.ndarray) -> np.ndarray:
    """A float32 window without NaN as the smallest integer type that holds its values
    exactly (so a 16-bit scene travels in 16 bits); anything else as it is. Normalizing
    either gives the same float32 values."""
    if window.dtype != np.float32 or not window.size or np.isnan(window).any():
        return window
    low, high = float(window.min()), float(window.max())
    for dtype in _COMPACT_TYPES:
        limits = np.iinfo(dtype)
        if limits.min <= low and high <= limits.max:
            cast = window.astype(dtype)
            return cast if np.array_equal(cast, window) else window
    return window


def normalize_image(image: np.ndarray, mean: Sequence[float], std: Sequence[float],
                    nodata: Nodata = None, invalid: np.ndarray | None = None,
                    out: np.ndarray | None = None) -> np.ndarray:
    """(..., H, W, C) raw pixels -> float32 z-scores per band; invalid pixels -> 0.

    ``invalid`` is ``invalid_pixels(image, nodata)`` when the caller already has it (the
    predictor needs it for the output mask too), so it is not computed twice. ``out`` (a
    C-contiguous float32 array of the image's shape) receives the result."""
    mean_arr = np.asarray(mean, dtype=np.float32)
    std_arr = np.maximum(np.asarray(std, dtype=np.float32), 1e-6)
    bands = image.shape[-1]
    if bands != mean_arr.shape[0]:
        raise ValueError(f"image has {bands} bands, statistics have {mean_arr.shape[0]}")
    if out is None:
        out = np.empty(image.shape, np.float32)  # the caller's array is left as it was
    # Statistics repeated along whole rows: the same arithmetic as broadcasting (x - mean) /
    # std per band, in long inner loops instead of loops over the 3-4 bands of a pixel.
    width = image.shape[-2] if image.ndim > 1 else 1
    rows = out.reshape(-1, width * bands)
    source = image.reshape(rows.shape) if image.flags.c_contiguous else None
    with np.errstate(over="ignore", invalid="ignore"):  # those pixels are zeroed below
        if source is None:
            out[...] = image
            source = rows
        np.subtract(source, np.tile(mean_arr, width), out=rows)
        rows /= np.tile(std_arr, width)
    out[invalid_pixels(image, nodata) if invalid is None else invalid] = 0.0
    return out
