"""When two georeferenced rasters hold the same ground with the same pixels: the one rule
behind keeping repeated ground once, by the tile step (identical tiles dropped,
components/tile_duplicates.py) and by scene-level scoring (the overlap of two scenes scored
once, components/scene_repeats.py).

Two rasters are on one pixel grid when they have the same CRS, the same pixel size and
rotation (to a relative ``REL_TOL``: float noise, whatever the CRS's units, metres or
degrees) and one's origin lies a whole number of the other's pixels away (to ``PIXEL_TOL``
of a pixel); their shared footprint is then a window of each. Compared in pixels, not CRS
units: a tolerance in CRS units would be a millimetre in UTM but most of a pixel in degrees
(8.6e-6° and 9.4e-6° pixels would be one grid). That window holds the same data when its
image pixels (all bands, same dtype) and its labels are the same in both. Rasters without a
CRS (plain PNG/JPEG scenes) are never on a shared grid. Another date or sensor of the same
ground has other pixels, so it is more data and stays."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence

import numpy as np
from rasterio.transform import Affine

#: Pixel sizes and rotations of one grid agree to this fraction of the pixel size.
REL_TOL = 1e-9
#: Origins of one grid lie whole pixels apart to this fraction of a pixel.
PIXEL_TOL = 1e-3


def _linear(transform: Affine) -> tuple[float, float, float, float]:
    return transform.a, transform.b, transform.d, transform.e


def same_pixel_size(transform_a: Sequence[float], transform_b: Sequence[float]) -> bool:
    """The two transforms have one pixel size and rotation, to ``REL_TOL`` of the pixel."""
    a, b = Affine(*tuple(transform_a)[:6]), Affine(*tuple(transform_b)[:6])
    scale = max(map(abs, _linear(a) + _linear(b)))
    return all(math.isclose(x, y, rel_tol=REL_TOL, abs_tol=REL_TOL * scale)
               for x, y in zip(_linear(a), _linear(b), strict=True))


def pixel_size_key(transform: Sequence[float]) -> tuple[float, ...]:
    """Pixel size and rotation to 9 significant digits (``REL_TOL``), rotation relative to
    the pixel size: equal for transforms that may share a grid (``same_pixel_size``)."""
    linear = _linear(Affine(*tuple(transform)[:6]))
    scale = max(map(abs, linear)) or 1.0
    return float(f"{scale:.9g}"), *(round(v / scale, 9) for v in linear)


def _whole(value: float) -> bool:
    return abs(value - round(value)) <= PIXEL_TOL


def footprint_key(crs: str, transform: Sequence[float]) -> tuple:
    """Equal for rasters of one CRS and pixel size (``pixel_size_key``) whose origins round
    to one pixel of that grid (grid coordinates: origin / pixel size): the rasters that may
    cover the same pixels, those whose ``grid_offset`` is (0, 0) do (a key rounded to
    ``PIXEL_TOL`` would split noisy twins at a rounding edge; whole pixels split only grids
    half a pixel apart, never one grid)."""
    t = Affine(*tuple(transform)[:6])
    if t.is_degenerate:
        return crs, tuple(transform)[:6]
    col, row = ~Affine(t.a, t.b, 0.0, t.d, t.e, 0.0) @ (t.c, t.f)
    return crs, pixel_size_key(t), round(col), round(row)


def grid_offset(crs_a: str | None, transform_a: Sequence[float], crs_b: str | None,
                transform_b: Sequence[float]) -> tuple[int, int] | None:
    """(row, col) of raster b's first pixel on raster a's grid when both are on one pixel grid
    (same CRS and pixel size, b's origin whole pixels of a's away); None otherwise: a missing
    or other CRS, another pixel size or rotation, a grid shifted by a fraction of a pixel."""
    if not crs_a or crs_a != crs_b:
        return None
    a, b = Affine(*tuple(transform_a)[:6]), Affine(*tuple(transform_b)[:6])
    if a.is_degenerate or not same_pixel_size(a, b):
        return None
    col, row = ~a @ (b.c, b.f)
    if not (_whole(col) and _whole(row)):
        return None
    return round(row), round(col)


def content_digest(image: np.ndarray, mask: np.ndarray) -> str:
    """Equal for windows whose image pixels and labels are the same bytes (of one dtype and
    shape), to group many windows of one footprint without holding them (tiles, read whole
    and small)."""
    digest = hashlib.sha256()
    for array in (image, mask):
        digest.update(repr((array.dtype.str, array.shape)).encode())
        digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()


def same_content(image_a: np.ndarray, mask_a: np.ndarray, image_b: np.ndarray,
                 mask_b: np.ndarray) -> bool:
    """The two windows' image pixels and labels are equal, of one dtype and shape (NaN, a
    float image's nodata, equal to NaN, as the same bytes are in ``content_digest``).
    Compared on the arrays as given, views included: no copy of their bytes."""
    for a, b in ((image_a, image_b), (mask_a, mask_b)):
        if a.dtype != b.dtype or a.shape != b.shape:
            return False
        if not np.array_equal(a, b, equal_nan=a.dtype.kind in "fc"):
            return False
    return True
