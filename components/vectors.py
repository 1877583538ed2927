"""Vector labels: GeoJSON, GeoPackage or Shapefile polygons with a class attribute,
rasterized onto each scene's grid in the scene's CRS (reprojected when the layer's CRS
differs). Read with pyogrio (a whole layer in one call, as arrays) and checked with shapely:
invalid polygons are repaired (make_valid) and reported, points and lines (no area),
empty geometries, polygons without a class and polygons outside every scene are reported."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from rasterio.crs import CRS
from rasterio.errors import CRSError
from rasterio.transform import Affine
from rasterio.warp import transform_geom

from components.raster import DataError

VECTOR_SUFFIXES = {".geojson", ".gpkg", ".shp"}
EXAMPLES = 5
_POLYGONAL = {"Polygon", "MultiPolygon"}


def label_text(value) -> str | None:
    """A class attribute value as a class label: 3, 3.0 and "3" are one class."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    text = str(value).strip()
    return text or None


def natural_order(labels) -> list[str]:
    """Numbers by value, then names: "2" before "10"."""
    return sorted(labels, key=lambda s: (0, float(s), s) if _is_number(s) else (1, 0.0, s))


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _plain(reason: str) -> str:
    """shapely's reasons carry coordinates in square brackets, which console markup eats."""
    return re.sub(r"\[([^\]]*)\]", r" at \1", reason)


@dataclass(frozen=True)
class LayerInfo:
    """What a vector file's header says about the layer the labels come from."""
    path: Path
    layer: str
    crs: str | None
    features: int


def read_layer_info(path: Path, layer: str | None, attribute: str,
                    max_features: int) -> LayerInfo:
    """The labels' layer of one vector file, checked from its header alone (no feature is
    read): the layer chosen (``layer``, required when the file has several), the feature
    count and the class attribute."""
    import pyogrio

    try:
        layers = [str(name) for name in pyogrio.list_layers(path)[:, 0]]
    except Exception as err:  # pyogrio raises its own DataSourceError/DataLayerError types
        raise DataError(f"{path}: cannot read as a vector file ({err})") from None
    if not layers:
        raise DataError(f"{path}: holds no layer")
    if layer is None and len(layers) > 1:
        raise DataError(f"{path}: {len(layers)} layers ({', '.join(layers)}); set "
                        "vector_layer to the one holding the labels")
    if layer is not None and layer not in layers:
        raise DataError(f"{path}: no layer {layer!r}; its layers are {', '.join(layers)} "
                        "(set vector_layer)")
    name = layer if layer is not None else layers[0]
    try:
        info = pyogrio.read_info(path, layer=name)
    except Exception as err:
        raise DataError(f"{path}: cannot read as a vector file ({err})") from None
    if info["features"] > max_features:
        raise DataError(f"{path}: {info['features']:,} features is more than "
                        f"max_vector_features ({max_features:,})")
    fields = [str(f) for f in info["fields"]]
    if attribute not in fields:
        raise DataError(f"{path}: no class attribute {attribute!r}; its fields are "
                        f"{', '.join(fields) or 'none'} (set class_attribute)")
    return LayerInfo(path, name, info["crs"], int(info["features"]))


class VectorLayer:
    """One vector file's polygons and classes, read once and shared by every scene."""

    def __init__(self, info: LayerInfo, attribute: str) -> None:
        import pyogrio
        import shapely

        path = self.path = info.path
        self.notes: list[str] = []
        try:
            _, fids, wkb, (values,) = pyogrio.raw.read(path, layer=info.layer,
                                                       columns=[attribute], return_fids=True)
        except Exception as err:
            raise DataError(f"{path}: cannot read its features ({err})") from None
        self.crs = info.crs
        self.fids = np.asarray(fids)
        geoms = shapely.from_wkb(wkb)
        self.labels = [label_text(v) for v in values]
        empty = shapely.is_missing(geoms) | shapely.is_empty(geoms)
        self._note(empty, "have no geometry and are skipped")
        kinds = np.array([g.geom_type if g is not None else "" for g in geoms])
        invalid = ~empty & ~shapely.is_valid(geoms)
        if invalid.any():
            reasons = shapely.is_valid_reason(geoms[invalid])
            self._note(invalid, "are invalid and were repaired (make_valid)",
                       [_plain(r) for r in reasons])
            geoms[invalid] = shapely.make_valid(geoms[invalid])
        geoms = np.array([self._polygonal(g) for g in geoms], dtype=object)
        no_area = ~empty & np.array([g is None for g in geoms])
        self._note(no_area, "are not polygons (no area: points or lines) and are skipped",
                   list(kinds[no_area]))
        self.geoms = geoms
        self.area = np.array([g is not None for g in geoms])
        nameless = self.area & np.array([lab is None for lab in self.labels])
        self._note(nameless, f"have no {attribute!r} value; their area is ignored (not "
                   "background)")
        self.used = np.zeros(len(geoms), bool)
        self._projected: dict[str, np.ndarray] = {}

    @staticmethod
    def _polygonal(geom):
        import shapely

        if geom is None or geom.is_empty:
            return None
        if geom.geom_type in _POLYGONAL:
            return geom
        parts = [p for p in shapely.get_parts(geom) if p.geom_type in _POLYGONAL]
        polygons = [q for p in parts for q in shapely.get_parts(p)]
        return shapely.multipolygons(polygons) if polygons else None

    def _note(self, which: np.ndarray, what: str, details: list[str] | None = None) -> None:
        if not which.any():
            return
        index = np.flatnonzero(which)[:EXAMPLES]
        shown = [f"fid {self.fids[i]}" + (f" ({details[k]})" if details else "")
                 for k, i in enumerate(index)]
        self.notes.append(f"{self.path}: {int(which.sum())} features {what}, e.g. "
                          f"{', '.join(shown)}")

    def label_counts(self) -> Counter:
        return Counter(lab for lab, a in zip(self.labels, self.area, strict=True)
                       if a and lab is not None)

    def _in_crs(self, crs: CRS) -> np.ndarray:
        import shapely
        from shapely.geometry import mapping, shape

        key = crs.to_wkt()
        if key not in self._projected:
            try:
                same = self.crs is None or CRS.from_user_input(self.crs) == crs
            except CRSError as err:
                raise DataError(f"{self.path}: unreadable CRS ({err})") from None
            if same:
                self._projected[key] = self.geoms
            else:
                index = np.flatnonzero(self.area)
                moved = transform_geom(self.crs, crs, [mapping(self.geoms[i]) for i in index])
                out = np.full(len(self.geoms), None, dtype=object)
                out[index] = [shapely.make_valid(shape(g)) for g in moved]
                self._projected[key] = out
        return self._projected[key]

    def shapes_for(self, image: Path, crs: CRS | None, transform: Affine, width: int,
                   height: int, class_ids: dict[str, int],
                   ignore: int) -> list[tuple[dict, int]]:
        """(geometry in the scene's CRS, class id) for the polygons over one scene, in file
        order (later polygons paint over earlier ones)."""
        import shapely
        from shapely.geometry import mapping

        if crs is None:
            raise DataError(f"{image}: not georeferenced, so the polygons of {self.path} "
                            "cannot be placed on it")
        if self.crs is None and not any("has no CRS" in n for n in self.notes):
            self.notes.append(f"{self.path}: has no CRS; its coordinates are taken to be in "
                              "each scene's CRS")
        geoms = self._in_crs(crs)
        corners = [transform @ (x, y) for x in (0, width) for y in (0, height)]
        xs, ys = zip(*corners, strict=True)
        footprint = shapely.box(min(xs), min(ys), max(xs), max(ys))
        index = np.flatnonzero(self.area)
        hits = index[shapely.intersects(np.array(list(geoms[index]), dtype=object),
                                        footprint)] if len(index) else index
        self.used[hits] = True
        return [(mapping(geoms[i]), ignore if self.labels[i] is None
                 else class_ids[self.labels[i]]) for i in hits]

    def report(self) -> list[str]:
        outside = self.area & ~self.used
        self._note(outside, "lie outside every scene and label nothing")
        return self.notes
