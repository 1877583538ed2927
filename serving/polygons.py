"""Class polygons of a mask GeoTIFF as GeoJSON, block by block (memory stays bounded for
masks of any size): which classes, a minimum area, simplification and the output CRS.

Polygons are cut at the BLOCK grid. A minimum area applies to whole regions, not to the
pieces the grid cuts: each block is polygonized with a margin around it of as many pixels as
the area holds (at most MAX_MARGIN), so a region smaller than the area lies whole inside the
margin wherever it touches the block, and is left out; a larger one is kept, and clipped to
the block. Areas and tolerances are in the mask CRS's units (m² and m for UTM), in pixels
for a mask without georeferencing.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
import rasterio.crs
import rasterio.errors
import rasterio.features
import rasterio.warp
from rasterio.windows import Window

from serving.atomic import atomic_path

#: Class names polygonized only when asked for by name (the ingest step names the ground no
#: label covers "background").
BACKGROUND_NAMES = frozenset({"background", "_background_"})
BLOCK = 2048
#: Widest margin (pixels) a block is read with for the minimum area; regions of more pixels
#: that reach beyond it are kept whatever their area.
MAX_MARGIN = 1024
WGS84 = "EPSG:4326"


class PolygonError(ValueError):
    """Polygon options that do not fit the model or the mask; the message says which."""


@dataclass(frozen=True)
class PolygonOptions:
    classes: tuple[str, ...] | None = None  # None: every class but the background
    min_area: float = 0.0  # in the mask CRS's units squared (pixels without georeferencing)
    simplify: float = 0.0  # tolerance in the mask CRS's units (0: the pixel outlines)
    crs: str | None = None  # output CRS ("EPSG:4326"); None: the mask's


def polygon_classes(class_names: list[str], wanted: tuple[str, ...] | None) -> list[int]:
    """Class ids to polygonize: ``wanted`` by name, or every class not named background."""
    if wanted is None:
        return [i for i, name in enumerate(class_names)
                if name.lower() not in BACKGROUND_NAMES]
    if unknown := [name for name in wanted if name not in class_names]:
        raise PolygonError(f"polygon classes {', '.join(unknown)} are not the model's "
                           f"(its classes: {', '.join(class_names)})")
    return sorted({class_names.index(name) for name in wanted})


def check_options(options: PolygonOptions, class_names: list[str], mask_crs) -> None:
    """PolygonError for what cannot be done, before any work."""
    polygon_classes(class_names, options.classes)
    if options.min_area < 0 or options.simplify < 0:
        raise PolygonError("the minimum area and the simplification tolerance cannot be "
                           "negative")
    if options.crs is not None:
        try:
            rasterio.crs.CRS.from_user_input(options.crs)
        except rasterio.errors.CRSError:
            raise PolygonError(f"polygons CRS {options.crs!r} is not a CRS (try "
                               f"{WGS84})") from None
        if mask_crs is None:
            raise PolygonError(f"polygons CRS {options.crs}: the scene has no CRS to "
                               f"transform from")


def _crs_member(crs) -> dict | None:
    if crs is None:
        return None
    epsg = crs.to_epsg()
    name = f"urn:ogc:def:crs:EPSG::{epsg}" if epsg else crs.to_wkt()
    return {"type": "name", "properties": {"name": name}}


def write_polygons(mask_path: Path, out_path: Path, class_names: list[str],
                   ignore_index: int, options: PolygonOptions = PolygonOptions(),
                   block: int = BLOCK) -> dict[str, int]:
    """Vectorize a mask GeoTIFF into GeoJSON features with ``class_id`` and ``class_name``,
    in the mask's CRS or ``options.crs`` (EPSG:4326 is written as RFC 7946 GeoJSON: no
    ``crs`` member, longitude first). Returns the feature count per class name."""
    wanted = polygon_classes(class_names, options.classes)
    counts = dict.fromkeys((class_names[i] for i in wanted), 0)
    with rasterio.open(mask_path) as src, atomic_path(out_path) as tmp, \
            open(tmp, "w") as out:
        check_options(options, class_names, src.crs)
        target = options.crs and rasterio.crs.CRS.from_user_input(options.crs)
        header = {"type": "FeatureCollection"}
        crs = _crs_member(target or src.crs)
        if crs and not (target and target.to_epsg() == 4326):
            header["crs"] = crs
        out.write(json.dumps(header)[:-1] + ', "features": [\n')
        polygons = _polygons(src, wanted, ignore_index, options, block)
        for written, (geometry, class_id) in enumerate(polygons):
            if target:
                geometry = rasterio.warp.transform_geom(src.crs, target, geometry)
            feature = {"type": "Feature", "geometry": geometry,
                       "properties": {"class_id": class_id,
                                      "class_name": class_names[class_id]}}
            out.write((",\n" if written else "") + json.dumps(feature))
            counts[class_names[class_id]] += 1
        out.write("\n]}\n")
    return counts


def _polygons(src, wanted: list[int], ignore_index: int, options: PolygonOptions,
              block: int) -> Iterator[tuple[dict, int]]:
    """(GeoJSON geometry, class id) of every kept polygon, block by block."""
    pixel_area = abs(src.transform.determinant) or 1.0
    min_pixels = options.min_area / pixel_area
    margin = min(MAX_MARGIN, math.ceil(min_pixels)) if min_pixels > 0 else 0
    shaped = margin > 0 or options.simplify > 0
    selected = np.zeros(256, bool)
    selected[wanted] = True
    selected[ignore_index] = False
    for row in range(0, src.height, block):
        for col in range(0, src.width, block):
            inner = Window(col, row, min(block, src.width - col), min(block, src.height - row))
            r0, c0 = max(0, row - margin), max(0, col - margin)
            outer = Window(c0, r0, min(src.width, col + inner.width + margin) - c0,
                           min(src.height, row + inner.height + margin) - r0)
            data = src.read(1, window=outer)
            keep = selected[data]
            transform = src.window_transform(outer)
            for geometry, value in rasterio.features.shapes(data, mask=keep,
                                                            transform=transform):
                if not shaped:
                    yield geometry, int(value)
                    continue
                for part in _kept(geometry, (inner, outer), transform, src, options,
                                  pixel_area):
                    yield part, int(value)


def _kept(geometry: dict, windows: tuple[Window, Window], transform, src,
          options: PolygonOptions, pixel_area: float) -> Iterator[dict]:
    """The parts of one region inside the inner window that pass the minimum area,
    simplified. A region is whole unless it reaches the outer window's edge inside the
    mask (then it has more pixels than the margin and is kept)."""
    from shapely.geometry import box, mapping, shape

    inner, outer = windows
    polygon = shape(geometry)
    if polygon.area < options.min_area and not _reaches_edge(polygon, outer, transform, src):
        return
    rows = inner.row_off - outer.row_off, inner.row_off - outer.row_off + inner.height
    cols = inner.col_off - outer.col_off, inner.col_off - outer.col_off + inner.width
    corners = [transform * (c, r) for c in cols for r in rows]
    xs, ys = [x for x, _ in corners], [y for _, y in corners]
    area = box(min(xs), min(ys), max(xs), max(ys))
    if not polygon.intersects(area):
        return
    if not polygon.within(area):
        polygon = polygon.intersection(area)
    for part in getattr(polygon, "geoms", [polygon]):
        if part.geom_type != "Polygon" or part.area < 0.5 * pixel_area:
            continue  # the block's edge touched, or a float sliver of the cut
        if options.simplify > 0:
            part = part.simplify(options.simplify, preserve_topology=True)
        if not part.is_empty:
            yield mapping(part)


def _reaches_edge(polygon, outer: Window, transform, src) -> bool:
    """Whether a region touches a side of ``outer`` that is not the mask's own edge."""
    from shapely.geometry import LineString

    sides = []
    w, h = outer.width, outer.height
    if outer.row_off > 0:
        sides.append(((0, 0), (w, 0)))
    if outer.row_off + h < src.height:
        sides.append(((0, h), (w, h)))
    if outer.col_off > 0:
        sides.append(((0, 0), (0, h)))
    if outer.col_off + w < src.width:
        sides.append(((w, 0), (w, h)))
    return any(polygon.intersects(LineString([transform * a, transform * b]))
               for a, b in sides)
