"""Resampled reads of float rasters with holes: every invalid pixel (non-finite, or its band's
nodata) left out of the resampling kernels.

GDAL's convolution kernels (Lanczos, cubic, bilinear: IMAGE_RESAMPLING) leave a band's
nodata pixels out when the nodata is a number, but not when it is NaN (GDAL 3.10: seen in
resampled RasterIO, OSGeo/gdal#14353 for overviews): a NaN pixel enters the weighted sum and
turns every model pixel whose kernel reaches it into NaN, several pixels around each hole.
The mask of a scene declaring NaN would then differ from the same scene declaring -9999, and
a NaN pixel in a scene declaring a number would spread as well. So a read whose result holds
a non-finite value is done again on a copy of its source pixels in memory, the invalid ones
replaced by a number declared as the copy's nodata (and so are the pixels the file's own
mask hides, which the copy does not carry), and that number turned back into the
band's own nodata (NaN for a band without a numeric one) in the result: the same values and
the same holes as GDAL gives the scene declaring a number."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from rasterio.enums import MaskFlags, Resampling
from rasterio.io import MemoryFile
from rasterio.transform import Affine
from rasterio.windows import Window

from serving.bands import band_dtype, read_bands

#: The widest kernel radius GDAL's resampling uses, in destination pixels (Lanczos: 3).
_KERNEL_RADIUS = 3


def read_resampled(dataset, indexes: Sequence[int], window: Window, shape: tuple[int, int],
                   resampling: Resampling, out: np.ndarray | None = None) -> np.ndarray:
    """(bands, *shape) of ``window`` (fractional pixels) of ``dataset``'s bands ``indexes``,
    resampled with ``resampling``; into ``out`` when given (a view of that shape). Invalid
    pixels are left out of the kernels, NaN nodata too (module docstring)."""
    if out is None:
        out = np.empty((len(indexes), *shape), band_dtype(dataset))
    read_bands(dataset, list(indexes), out=out, window=window, resampling=resampling)
    if (resampling == Resampling.nearest or _unscaled(window, shape) or out.dtype.kind != "f"
            or np.isfinite(out).all()):
        return out
    source, inside = _source_window(dataset, window, shape)
    raw = read_bands(dataset, list(indexes), window=source)
    tags = [dataset.nodatavals[index - 1] for index in indexes]
    sentinel = _sentinel(raw, tags)
    hidden = _hidden(dataset, indexes, source)
    for band, tag, hides in zip(raw, tags, hidden, strict=True):
        band[~np.isfinite(band)] = sentinel
        if tag is not None and math.isfinite(tag):
            band[band == tag] = sentinel
        if hides is not None:
            band[hides] = sentinel
    # Any transform but the identity, which rasterio would warn about: reads are in pixels.
    profile = {"driver": "GTiff", "width": source.width, "height": source.height,
               "count": len(indexes), "dtype": raw.dtype.name, "nodata": sentinel,
               "transform": Affine.translation(source.col_off, source.row_off + 1)}
    with MemoryFile() as memfile:
        with memfile.open(**profile) as copy:
            copy.write(raw)
        with memfile.open() as copy:
            copy.read(out=out, window=inside, resampling=resampling)
    for band, tag in zip(out, tags, strict=True):
        if tag != sentinel:
            band[band == sentinel] = tag if tag is not None and math.isfinite(tag) else np.nan
    return out


def _hidden(dataset, indexes: Sequence[int], source: Window) -> list[np.ndarray | None]:
    """Per band read, the pixels of ``source`` its per-dataset mask (a mask band of GDAL's
    own, or an alpha band) hides, None where it has none: GDAL leaves them out of its kernels,
    and the copy, which carries no mask, must too. One mask read serves every band."""
    flags = [dataset.mask_flag_enums[index - 1] for index in indexes]
    masked = [index for index, band_flags in zip(indexes, flags, strict=True)
              if MaskFlags.per_dataset in band_flags]
    if not masked:
        return [None] * len(indexes)
    hides = dataset.read_masks(masked[0], window=source) == 0
    return [hides if MaskFlags.per_dataset in band_flags else None for band_flags in flags]


def _unscaled(window: Window, shape: tuple[int, int]) -> bool:
    """Whether ``window`` is read pixel for pixel (whole pixels, ``shape`` its size)."""
    return (window.height, window.width) == shape and float(window.row_off).is_integer() \
        and float(window.col_off).is_integer()


def _source_window(dataset, window: Window,
                   shape: tuple[int, int]) -> tuple[Window, Window]:
    """The whole pixels around ``window`` that its kernels reach (clipped to the raster, as
    GDAL clips them), and ``window`` relative to them."""
    margins = []
    for length, size in ((window.height, shape[0]), (window.width, shape[1])):
        margins.append(math.ceil(_KERNEL_RADIUS * max(1.0, length / size)) + 2)
    row0 = max(0, math.floor(window.row_off) - margins[0])
    col0 = max(0, math.floor(window.col_off) - margins[1])
    row1 = min(dataset.height, math.ceil(window.row_off + window.height) + margins[0])
    col1 = min(dataset.width, math.ceil(window.col_off + window.width) + margins[1])
    source = Window(col0, row0, col1 - col0, row1 - row0)
    inside = Window(window.col_off - col0, window.row_off - row0, window.width, window.height)
    return source, inside


def _sentinel(raw: np.ndarray, tags: list[float | None]) -> float:
    """The number the copy declares as nodata: the bands' own when they share a finite one
    (the result is then GDAL's for the scene as it is), else the lowest value of the type,
    or its highest where a valid pixel holds that."""
    if tags[0] is not None and math.isfinite(tags[0]) and all(tag == tags[0] for tag in tags):
        return float(tags[0])
    limits = np.finfo(raw.dtype)
    lowest = float(limits.min)
    return float(limits.max) if (raw == lowest).any() else lowest
