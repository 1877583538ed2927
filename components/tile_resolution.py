"""The tiles' resolution: each scene's resampling factor, and the ground sample distance
(metres per pixel) the tiles share, which the served model resamples its inputs to.

A network learns objects at the size they have in its tiles, so a scene of another pixel
size is resampled to the tiles' before it is predicted. The tiles have one resolution when
``tile.target_gsd`` sets it, or when every scene is georeferenced in a projected CRS at one
pixel size (sizes within ``SAME_SIZE`` of each other): that size divided by the scene's
resampling factor (``tile.scale``). Scenes of several pixel sizes without target_gsd give
tiles of several resolutions, and plain images or geographic CRSs (degrees) have no size in
metres: then none is recorded (``TileManifest.gsd`` is None) and serving resamples inputs by
``scale`` alone."""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable
from typing import NamedTuple

from rasterio.errors import CRSError

from components.raster import DataError, crs_string

#: Pixel sizes (per axis) that differ by less than this share are one resolution: scenes
#: warped one by one get sizes a few parts in 10,000 apart; 1% is far below what changes
#: what a network sees.
SAME_SIZE = 0.01

#: Model pixels per scene pixel for one scene, decided by the caller instead of the tile
#: options (``segpipe evaluate`` tiles a source as the model's serving code resamples it).
SceneFactor = Callable[[object], float]


class ResolutionWarning(UserWarning):
    """The scenes have no one resolution for the served model to resample inputs to."""


class PixelSize(NamedTuple):
    """A pixel's width, height and the side of a square of its area, in metres (the side
    is what serving compares: ``serving.resolution.resample_factor``)."""

    x: float
    y: float
    side: float

    def resampled(self, sx: float, sy: float) -> PixelSize:
        return PixelSize(self.x / sx, self.y / sy, self.side / math.sqrt(sx * sy))


def pixel_size(img) -> PixelSize | None:
    """An open scene's pixel size in metres; None for plain images and CRSs without linear
    units (geographic: degrees)."""
    crs = img.crs
    if crs is None or not crs.is_projected:
        return None
    try:
        metres = crs.linear_units_factor[1]
    except CRSError:
        return None
    t = img.transform
    return PixelSize(math.hypot(t.a, t.d) * metres, math.hypot(t.b, t.e) * metres,
                     math.sqrt(abs(t.a * t.e - t.b * t.d)) * metres)


def scene_factors(img, where: str, scale: float, target_gsd: float | None,
                  factor: SceneFactor | None = None) -> tuple[float, float]:
    """Model pixels per scene pixel along x and y: ``factor(img)`` when given, else
    ``target_gsd`` for a scene in a projected CRS (an error naming ``where`` otherwise),
    else ``scale``."""
    if factor is not None:
        f = factor(img)
        return f, f
    if target_gsd is None:
        return scale, scale
    size = pixel_size(img)
    if size is None:
        if img.crs is not None and img.crs.is_projected:
            raise DataError(f"{where}: target_gsd needs a CRS with linear units "
                            f"({crs_string(img.crs)})")
        raise DataError(f"{where}: target_gsd needs a projected CRS (metres), but the scene "
                        f"has {crs_string(img.crs) or 'no CRS'}; use scale instead")
    return size.x / target_gsd, size.y / target_gsd


def _spread(values: list[float]) -> bool:
    return max(values) > min(values) * (1 + SAME_SIZE)


def tiles_gsd(sizes: dict[str, PixelSize | None],
              target_gsd: float | None) -> tuple[float | None, str | None]:
    """The tiles' metres per pixel (``sizes``: each scene's tile pixel, None without a
    projected CRS, by the name the user knows the scene by), and a line saying why there is
    none when the scenes are georeferenced but have no one resolution."""
    if target_gsd is not None:
        return target_gsd, None
    known = [size for size in sizes.values() if size is not None]
    if not known:
        return None, None  # plain images or degrees: no pixel has a size in metres
    if len(known) < len(sizes):
        lacking = sorted(name for name, size in sizes.items() if size is None)
        named = ", ".join(lacking[:3]) + (", ..." if len(lacking) > 3 else "")
        return None, (f"{len(lacking)} of {len(sizes)} scenes ({named}) have no projected "
                      "CRS: the model records no training resolution, so serving resamples "
                      "every input by tile.scale alone, whatever its pixel size")
    if _spread([s.x for s in known]) or _spread([s.y for s in known]):
        sides = [s.side for s in known]
        return None, (f"the scenes' pixel sizes differ ({min(sides):.4g} to "
                      f"{max(sides):.4g} m per tile pixel): the model records no training "
                      "resolution, so serving predicts every input at its own pixel size "
                      "(times tile.scale); set tile.target_gsd (metres per pixel) to resample "
                      "every scene, and every input, to one")
    return statistics.median_low(s.side for s in known), None
