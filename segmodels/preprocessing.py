"""Band normalization shared by training (tf.data) and serving (pyfunc), so both see the
same numbers. Pure NumPy."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def invalid_pixels(image: np.ndarray, nodata: float | None) -> np.ndarray:
    """HxW bool: pixels where every band is nodata, or any band is NaN."""
    invalid = np.zeros(image.shape[:-1], dtype=bool)
    if np.issubdtype(image.dtype, np.floating):
        invalid |= np.isnan(image).any(axis=-1)
    if nodata is not None and not np.isnan(nodata):
        invalid |= (image == nodata).all(axis=-1)
    return invalid


def normalize_image(image: np.ndarray, mean: Sequence[float], std: Sequence[float],
                    nodata: float | None = None, invalid: np.ndarray | None = None) -> np.ndarray:
    """(..., H, W, C) raw pixels -> float32 z-scores per band; nodata/NaN pixels -> 0.

    ``invalid`` is ``invalid_pixels(image, nodata)`` when the caller already has it (the
    predictor needs it for the output mask too), so it is not computed twice."""
    mean_arr = np.asarray(mean, dtype=np.float32)
    std_arr = np.maximum(np.asarray(std, dtype=np.float32), 1e-6)
    if image.shape[-1] != mean_arr.shape[0]:
        raise ValueError(f"image has {image.shape[-1]} bands, statistics have {mean_arr.shape[0]}")
    out = image.astype(np.float32)  # always a copy: the caller's array is left as it was
    out -= mean_arr
    out /= std_arr
    out[invalid_pixels(image, nodata) if invalid is None else invalid] = 0.0
    return out
