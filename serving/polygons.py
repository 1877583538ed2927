"""Class polygons of a mask GeoTIFF as GeoJSON, block by block (memory stays bounded for
masks of any size): which classes, a minimum area, simplification and the output CRS.

Polygons are cut at the BLOCK grid; a minimum area applies to whole regions, not to the
pieces the grid cuts (serving/polygon_area.py). With simplification the area is measured on
the simplified outline too (holes subtracted, as on the pixel outline): a region that
simplifying takes under the minimum is left out, so no whole region comes out smaller than
asked. Areas and tolerances are in the mask CRS's units (m² and m for UTM), in pixels for a
mask without georeferencing.
"""

from __future__ import annotations

import json
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
from serving.polygon_area import BlockCut, block_margin, least_area, pixel_area
from serving.quiet import plain_images_quiet

#: Class names polygonized only when asked for by name (the ingest step names the ground no
#: label covers "background").
BACKGROUND_NAMES = frozenset({"background", "_background_"})
BLOCK = 2048
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
    if mask_crs is not None and mask_crs.is_geographic and (options.min_area >= 1
                                                            or options.simplify >= 1):
        # In degrees, 1 is ~100 km: such a value was meant in metres, and would silently
        # drop (or flatten) every polygon.
        raise PolygonError(f"the scene's CRS ({mask_crs.to_string()}) is in degrees, and so are "
                           f"the minimum area ({options.min_area:g}, degrees squared) and the "
                           f"simplification tolerance ({options.simplify:g}, degrees): give "
                           "them in degrees (1e-9 square degrees is ~10 m² near the "
                           "equator), or reproject the scene to a projected CRS")
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
    # A mask of a plain image has no georeferencing, said once already (the scene's).
    with plain_images_quiet():
        src = rasterio.open(mask_path)
    with src, atomic_path(out_path) as tmp, open(tmp, "w") as out:
        check_options(options, class_names, src.crs)
        least = least_area(src, options.min_area)
        target = options.crs and rasterio.crs.CRS.from_user_input(options.crs)
        header = {"type": "FeatureCollection"}
        crs = _crs_member(target or src.crs)
        if crs and not (target and target.to_epsg() == 4326):
            header["crs"] = crs
        out.write(json.dumps(header)[:-1] + ', "features": [\n')
        written = 0
        for polygons in _chunks(_polygons(src, wanted, ignore_index, options, block),
                                options.simplify, least, src.crs, target):
            for geometry, class_id in polygons:
                feature = {"type": "Feature", "geometry": geometry,
                           "properties": {"class_id": class_id,
                                          "class_name": class_names[class_id]}}
                out.write((",\n" if written else "") + json.dumps(feature))
                written += 1
                counts[class_names[class_id]] += 1
        out.write("\n]}\n")
    return counts


def _to_crs(polygons: list[tuple[dict, int]], src_crs, target) -> list[tuple[dict, int]]:
    """GeoJSON polygons in ``target``: one call for a block's vertices (a call per polygon,
    as rasterio.warp.transform_geom makes, took as long as polygonizing)."""
    xs, ys = [], []
    for geometry, _ in polygons:
        for ring in geometry["coordinates"]:
            xs.extend(x for x, _ in ring)
            ys.extend(y for _, y in ring)
    if not xs:
        return polygons
    tx, ty = rasterio.warp.transform(src_crs, target, xs, ys)
    moved, start = [], 0
    for geometry, class_id in polygons:
        rings = []
        for ring in geometry["coordinates"]:
            end = start + len(ring)
            rings.append(list(zip(tx[start:end], ty[start:end], strict=True)))
            start = end
        moved.append(({"type": "Polygon", "coordinates": rings}, class_id))
    return moved


#: Polygons simplified or transformed in one call: a call per polygon cost as much as
#: polygonizing, and a whole block's (up to a million polygons) would all be held at once.
CHUNK = 4096


def _chunks(polygons: Iterator[tuple], tolerance: float, least: float, src_crs,
            target) -> Iterator[list[tuple[dict, int]] | Iterator[tuple[dict, int]]]:
    """The kept polygons as GeoJSON, simplified and in ``target``, CHUNK at a time; as they
    come when there is neither to do."""
    if tolerance <= 0 and not target:
        yield (_geojson(part, class_id) for part, class_id in polygons)
        return
    chunk: list = []
    for item in polygons:
        chunk.append(item)
        if len(chunk) == CHUNK:
            yield _finished(chunk, tolerance, least, src_crs, target)
            chunk = []
    if chunk:
        yield _finished(chunk, tolerance, least, src_crs, target)


def _finished(parts: list, tolerance: float, least: float, src_crs,
              target) -> list[tuple[dict, int]]:
    polygons = _simplified(parts, tolerance, least) if tolerance > 0 else \
        [_geojson(part, class_id) for part, class_id in parts]
    return _to_crs(polygons, src_crs, target) if target else polygons


def _geojson(part, class_id: int) -> tuple[dict, int]:
    from shapely.geometry import mapping

    return (part if isinstance(part, dict) else mapping(part)), class_id


def _polygons(src, wanted: list[int], ignore_index: int, options: PolygonOptions,
              block: int) -> Iterator[tuple[object, int]]:
    """(GeoJSON geometry, or a shapely polygon where cut at a block, and class id) of the
    kept polygons, block by block."""
    area = pixel_area(src)
    least = least_area(src, options.min_area)
    margin = block_margin(src, options.min_area)
    shaped = margin > 0
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
            transform = src.window_transform(outer)
            found = rasterio.features.shapes(data, mask=selected[data], transform=transform)
            if not shaped:
                for geometry, value in found:
                    yield geometry, int(value)
                continue
            cut = BlockCut(inner, outer, transform, src)
            for geometry, value in found:
                for part in cut.kept(geometry, least, area, options.simplify):
                    yield part, int(value)


def _simplified(parts: list, tolerance: float, least: float) -> list[tuple[dict, int]]:
    """Polygons (GeoJSON or shapely) as GeoJSON simplified within ``tolerance``, in one
    call, each polygon on its own (so each stays valid). A GeoJSON part is a whole region
    (``_polygons``): left out when simplified under ``least`` (an area); the pieces of regions
    cut at a block were measured whole by ``BlockCut.kept``."""
    import shapely
    from shapely.geometry import mapping, shape

    whole = [isinstance(part, dict) for part, _ in parts]
    geometries = np.array([shape(part) if is_whole else part
                           for (part, _), is_whole in zip(parts, whole, strict=True)],
                          dtype=object)
    geometries = shapely.simplify(geometries, tolerance, preserve_topology=True)
    too_small = (shapely.area(geometries) < least) & np.array(whole, bool)
    return [(mapping(g), class_id)
            for g, (_, class_id), dropped in zip(geometries, parts, too_small, strict=True)
            if not (g.is_empty or dropped)]
