"""Raster helpers shared by the data-plane steps: opening with clear errors, strip-wise
iteration (so no step holds a whole scene in memory), GeoTIFF profiles and validity masks."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path

import numpy as np
import rasterio
from rasterio.errors import NotGeoreferencedWarning, RasterioIOError
from rasterio.windows import Window

from serving.pixels import GDAL_CACHE_MB  # noqa: F401  re-exported for the data-plane steps
from serving.pixels import invalid_pixels as _invalid_pixels

# (stage, done, total): steps report progress through this so the CLI can draw a bar.
ProgressCallback = Callable[[str, int, int], None]

# Rows per strip when a step streams a whole scene: bounded memory, few GDAL calls.
STRIP_ROWS = 256


class DataError(ValueError):
    """Bad input data; the message names the file and the problem."""


@contextmanager
def open_raster(path: str | Path) -> Iterator[rasterio.io.DatasetReader]:
    """Open ``path`` for reading; unreadable files raise ``DataError`` naming the file."""
    try:
        with warnings.catch_warnings():
            # Plain JPEG/PNG scenes are legitimately not georeferenced.
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            src = rasterio.open(path)
    except RasterioIOError as err:
        raise DataError(f"{path}: cannot read as a raster ({err})") from err
    with src:
        yield src


def strip_windows(width: int, height: int, rows: int = STRIP_ROWS) -> Iterator[Window]:
    for row in range(0, height, rows):
        yield Window(0, row, width, min(rows, height - row))


def invalid_pixels(bands: np.ndarray, nodata: float | None) -> np.ndarray:
    """(C, H, W) -> (H, W) bool: serving.pixels' rule (every band nodata, or any band not a
    finite float32), which serving and training apply too."""
    return _invalid_pixels(bands, nodata, band_axis=0)


def geotiff_profile(width: int, height: int, count: int, dtype: str, crs, transform,
                    nodata: float | None = None) -> dict:
    """A tiled, compressed GeoTIFF profile; tiled so later window reads touch few blocks."""
    profile = {
        "driver": "GTiff", "width": width, "height": height, "count": count,
        "dtype": dtype, "crs": crs, "transform": transform, "nodata": nodata,
        # zstd level 1: about as fast as no compression, and as small as deflate.
        "compress": "zstd", "zstd_level": 1,
    }
    if width >= 256 and height >= 256:
        profile.update(tiled=True, blockxsize=256, blockysize=256)
    return profile


def write_array(path: str | Path, array: np.ndarray, crs, transform,
                nodata: float | None = None, quiet: bool = True) -> None:
    """Write a (C, H, W) or (H, W) array as GeoTIFF (small rasters: tiles, tests).

    ``quiet`` silences rasterio's warning for plain (not georeferenced) images; worker
    threads pass False because warning filters are process-global and not thread-safe
    (their caller silences it once around the pool)."""
    bands = array[None] if array.ndim == 2 else array
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    profile = geotiff_profile(bands.shape[2], bands.shape[1], bands.shape[0],
                              str(bands.dtype), crs, transform, nodata)
    with warnings.catch_warnings() if quiet else nullcontext():
        if quiet:
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with rasterio.open(path, "w", **profile) as dst:
            dst.write(bands)


def crs_string(crs) -> str | None:
    if crs is None:
        return None
    epsg = crs.to_epsg()
    return f"EPSG:{epsg}" if epsg else crs.to_wkt()
