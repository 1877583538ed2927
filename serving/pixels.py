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


def invalid_pixels(pixels: np.ndarray, nodata: float | None, band_axis: int = -1) -> np.ndarray:
    """Bool mask without the band axis: pixels where every band equals ``nodata``, or any band
    is not a finite float32 (NaN, +-inf, or a float64 beyond float32's range, which the model
    would see as inf)."""
    axis = band_axis % pixels.ndim
    invalid = np.zeros(pixels.shape[:axis] + pixels.shape[axis + 1:], dtype=bool)
    if np.issubdtype(pixels.dtype, np.floating):
        if pixels.dtype.itemsize > 4:
            # NaN compares False, so it is caught here too
            invalid |= ~(np.abs(pixels) <= _FLOAT32_MAX).all(axis=axis)
        else:
            invalid |= ~np.isfinite(pixels).all(axis=axis)
    if nodata is not None and np.isfinite(nodata):
        invalid |= (pixels == nodata).all(axis=axis)
    return invalid


def normalize_image(image: np.ndarray, mean: Sequence[float], std: Sequence[float],
                    nodata: float | None = None, invalid: np.ndarray | None = None) -> np.ndarray:
    """(..., H, W, C) raw pixels -> float32 z-scores per band; invalid pixels -> 0.

    ``invalid`` is ``invalid_pixels(image, nodata)`` when the caller already has it (the
    predictor needs it for the output mask too), so it is not computed twice."""
    mean_arr = np.asarray(mean, dtype=np.float32)
    std_arr = np.maximum(np.asarray(std, dtype=np.float32), 1e-6)
    if image.shape[-1] != mean_arr.shape[0]:
        raise ValueError(f"image has {image.shape[-1]} bands, statistics have {mean_arr.shape[0]}")
    with np.errstate(over="ignore", invalid="ignore"):  # those pixels are zeroed below
        out = image.astype(np.float32)  # always a copy: the caller's array is left as it was
        out -= mean_arr
        out /= std_arr
    out[invalid_pixels(image, nodata) if invalid is None else invalid] = 0.0
    return out
