"""The minimum area of class polygons (serving/polygons.py), applied to whole regions
though the BLOCK grid cuts them: each block is polygonized with a margin around it of as many
pixels as the area holds (at most MAX_MARGIN), so a region smaller than the area lies whole
inside the margin wherever it touches the block, and is left out; a larger one is kept, and
clipped to the block. A region that reaches past the margin may be bigger than it shows, so
it is kept."""

from __future__ import annotations

import math
from collections.abc import Iterator

from rasterio.windows import Window

#: Widest margin (pixels) a block is read with for the minimum area; regions of more pixels
#: that reach beyond it are kept whatever their area.
MAX_MARGIN = 1024


def pixel_area(src) -> float:
    """One pixel's area in the mask CRS's units squared (1 without georeferencing)."""
    return abs(src.transform.determinant) or 1.0


def least_area(src, min_area: float) -> float:
    """The smallest area a region keeps: regions are whole pixels, so an area equal to
    ``min_area`` but for rounding passes."""
    return min_area - 1e-6 * pixel_area(src) if min_area > 0 else 0.0


def block_margin(src, min_area: float) -> int:
    """Pixels read around each block so that a region under ``min_area`` is seen whole
    (0: no minimum, no margin)."""
    min_pixels = min_area / pixel_area(src)
    return min(MAX_MARGIN, math.ceil(min_pixels)) if min_pixels > 0 else 0


def area_bounds(rings: list) -> tuple[float, tuple[float, float, float, float]]:
    """Area and (min x, min y, max x, max y) of a GeoJSON polygon's closed rings, in plain
    Python: most regions have a few vertices, and building a shapely polygon for each of
    several hundred thousand took longer than polygonizing them."""
    area = 0.0
    ox, oy = rings[0][0]  # products of map coordinates (1e12 in UTM) would lose the area
    for index, ring in enumerate(rings):
        shifted = [(x - ox, y - oy) for x, y in ring]
        twice = sum(x0 * y1 - x1 * y0
                    for (x0, y0), (x1, y1) in zip(shifted, shifted[1:], strict=False))
        area += abs(twice) / 2 if index == 0 else -abs(twice) / 2
    xs = [x for x, _ in rings[0]]
    ys = [y for _, y in rings[0]]
    return area, (min(xs), min(ys), max(xs), max(ys))


class BlockCut:
    """One block (``inner``) polygonized with its margin (``outer``): which regions pass the
    minimum area, and their parts inside the block."""

    def __init__(self, inner: Window, outer: Window, transform, src):
        from shapely.geometry import box

        def corners(window: Window, origin: Window) -> tuple[float, float, float, float]:
            rows = window.row_off - origin.row_off, window.row_off - origin.row_off + window.height
            cols = window.col_off - origin.col_off, window.col_off - origin.col_off + window.width
            points = [transform * (c, r) for c in cols for r in rows]
            xs, ys = [x for x, _ in points], [y for _, y in points]
            return min(xs), min(ys), max(xs), max(ys)

        self.inner = corners(inner, outer)
        self.area = box(*self.inner)
        self.bounds = corners(outer, outer)
        # sides of ``outer`` inside the mask (a region touching one may go on beyond it):
        # min x, min y, max x, max y, as bounds are; which of them are the mask's own edge
        north_up = transform.e < 0
        top, bottom = outer.row_off > 0, outer.row_off + outer.height < src.height
        self.open_sides = (outer.col_off > 0, bottom if north_up else top,
                           outer.col_off + outer.width < src.width, top if north_up else bottom)
        self.tolerance = 1e-6 * max(abs(transform.a), abs(transform.e), 1e-12)

    def _reaches_edge(self, bounds: tuple[float, ...]) -> bool:
        return any(is_open and abs(b - edge) <= self.tolerance
                   for is_open, b, edge in zip(self.open_sides, bounds, self.bounds,
                                               strict=True))

    def kept(self, geometry: dict, least_area: float, pixel_area: float,
             tolerance: float) -> Iterator:
        """The parts inside the block of one region that passes the minimum area (a region
        reaching a side of the margin that is inside the mask goes on beyond it, so it is
        kept): the GeoJSON itself when the region lies in the block (measured again once
        simplified, by serving/polygons.py), else shapely polygons, of a region whose
        outline simplified within ``tolerance`` passes too."""
        import shapely
        from shapely.geometry import shape

        area, bounds = area_bounds(geometry["coordinates"])
        if area < least_area and not self._reaches_edge(bounds):
            return
        low_x, low_y, high_x, high_y = self.inner
        tol = self.tolerance
        if (bounds[2] <= low_x + tol or bounds[0] >= high_x - tol
                or bounds[3] <= low_y + tol or bounds[1] >= high_y - tol):
            return  # outside the block, or touching it along an edge only
        if (bounds[0] >= low_x - tol and bounds[2] <= high_x + tol
                and bounds[1] >= low_y - tol and bounds[3] <= high_y + tol):
            yield geometry
            return
        region = shape(geometry)
        if tolerance > 0 and not self._reaches_edge(bounds) and shapely.area(
                shapely.simplify(region, tolerance, preserve_topology=True)) < least_area:
            return  # seen whole, and simplifying takes it under the minimum
        polygon = region.intersection(self.area)
        for part in getattr(polygon, "geoms", [polygon]):
            if part.geom_type == "Polygon" and part.area >= 0.5 * pixel_area:
                yield part  # not the block's edge touched, nor a float sliver of the cut
