"""When two georeferenced rasters hold the same ground with the same pixels: the one rule
behind keeping repeated ground once, by the tile step (identical tiles dropped,
components/tile_duplicates.py) and by scene-level scoring (the overlap of two scenes scored
once, components/scene_repeats.py).

Two rasters are on one pixel grid when they have the same CRS and one's transform is the
other's moved by whole pixels (compared to ``DECIMALS`` places: float noise of a transform
composed with a window offset is well below a millimetre); their shared footprint is then a
window of each. That window holds the same data when its image pixels (all bands, same dtype)
and its labels are the same bytes in both. Rasters without a CRS (plain PNG/JPEG scenes) are
never on a shared grid. Another date or sensor of the same ground has other pixels, so it is
more data and stays."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np
from rasterio.transform import Affine

DECIMALS = 6


def footprint_key(crs: str, transform: Sequence[float]) -> tuple:
    """Equal for rasters of one CRS whose transforms agree to ``DECIMALS`` places: of one size,
    they cover the same pixels of the same ground."""
    return crs, tuple(round(float(v), DECIMALS) for v in tuple(transform)[:6])


def grid_offset(crs_a: str | None, transform_a: Sequence[float], crs_b: str | None,
                transform_b: Sequence[float]) -> tuple[int, int] | None:
    """(row, col) of raster b's first pixel on raster a's grid when both are on one pixel grid
    (same CRS, b's transform a's moved by whole pixels); None otherwise: a missing or other
    CRS, another pixel size or rotation, a grid shifted by a fraction of a pixel."""
    if not crs_a or crs_a != crs_b:
        return None
    a, b = Affine(*tuple(transform_a)[:6]), Affine(*tuple(transform_b)[:6])
    if a.is_degenerate:
        return None
    col, row = ~a @ (b.c, b.f)
    col, row = round(col), round(row)
    if footprint_key(crs_a, a @ Affine.translation(col, row)) != footprint_key(crs_b, b):
        return None
    return row, col


def _content(image: np.ndarray, mask: np.ndarray) -> tuple:
    return (image.dtype.str, image.shape, image.tobytes(), mask.dtype.str, mask.shape,
            mask.tobytes())


def content_digest(image: np.ndarray, mask: np.ndarray) -> str:
    """Equal for windows whose image pixels and labels are the same bytes (``same_content``),
    to group many windows of one footprint without holding them."""
    digest = hashlib.sha256()
    for part in _content(image, mask):
        digest.update(part if isinstance(part, bytes) else repr(part).encode())
    return digest.hexdigest()


def same_content(image_a: np.ndarray, mask_a: np.ndarray, image_b: np.ndarray,
                 mask_b: np.ndarray) -> bool:
    """The two windows' image pixels and labels are the same bytes (of the same dtype and
    shape)."""
    return _content(image_a, mask_a) == _content(image_b, mask_b)
