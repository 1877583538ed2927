"""Vector labels: GeoJSON, GeoPackage or Shapefile polygons with a class attribute (or all of
one class, ``ingest.vector_class``), rasterized onto each scene's grid in the scene's CRS
(reprojected when the layer's CRS differs). The layer is chosen and checked from its header
first (``components.vector_info``), then read with pyogrio (a whole layer in one call, as
arrays) and checked with shapely: invalid polygons are repaired (make_valid) and reported,
points and lines (no area), empty geometries and polygons without a class are reported;
polygons outside every scene are reported, and a layer none of whose polygons overlaps any
scene is an error."""

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
from components.vector_crs import looks_lonlat, set_crs_advice
from components.vector_info import LayerInfo, crs_text, extent_text

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


def _plain(reason: str) -> str:
    """shapely's reasons carry coordinates in square brackets, which console markup eats."""
    return re.sub(r"\[([^\]]*)\]", r" at \1", reason)


@dataclass
class _SceneCrs:
    """One CRS among the scenes a layer was placed on."""
    crs: CRS
    image: Path  # the first scene in it
    extent: tuple[float, float, float, float]  # of all its scenes


class VectorLayer:
    """One vector file's polygons and classes, read once and shared by every scene."""

    def __init__(self, info: LayerInfo, attribute: str, vector_class: str | None = None) -> None:
        import pyogrio
        import shapely

        path = self.path = info.path
        self.notes: list[str] = []
        try:
            _, fids, wkb, columns = pyogrio.raw.read(
                path, layer=info.layer, columns=[] if vector_class else [attribute],
                return_fids=True)
        except Exception as err:
            raise DataError(f"{path}: cannot read its features ({err})") from None
        # a file without features may lack the attribute: no column, no label
        values = (np.full(len(fids), vector_class, dtype=object) if vector_class
                  else columns[0] if columns else np.array([], dtype=object))
        self.crs, self.empty, self.layer = info.crs, info.empty, info.layer
        self.fids = np.asarray(fids)
        geoms = shapely.from_wkb(wkb)
        self.numeric = info.numeric
        self.labels = (self._codes(values, attribute) if info.numeric
                       else [label_text(v) for v in values])
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
        no_area = ~empty & np.array([g is None for g in geoms], dtype=bool)
        self._note(no_area, "are not polygons (no area: points or lines) and are skipped",
                   list(kinds[no_area]))
        self.geoms = geoms
        self.area = np.array([g is not None for g in geoms], dtype=bool)
        nameless = self.area & np.array([lab is None for lab in self.labels], dtype=bool)
        self._note(nameless, f"have no {attribute!r} value; their area is ignored (not "
                   "background)")
        self.used = np.zeros(len(geoms), bool)
        self._projected: dict[str, np.ndarray] = {}
        self._placed: dict[Path, tuple[CRS, np.ndarray]] = {}
        # The scenes' CRS (WKT) -> the CRS, its first scene and the scenes' joint extent.
        self._scenes: dict[str, _SceneCrs] = {}
        self._scene_count = 0
        self._polygons: int | None = None  # the header's count, for an extent_only layer

    @classmethod
    def extent_only(cls, info: LayerInfo) -> VectorLayer | None:
        """A stand-in for the layer made of its header's extent alone (no feature read), for
        checks before any work: when the extent overlaps no scene (``place`` then
        ``check_overlap``, the ingest's own rule), no polygon does. None without an extent."""
        import shapely

        if info.bounds is None or info.features == 0:
            return None
        layer = cls.__new__(cls)
        layer.path, layer.crs, layer.numeric, layer.notes = info.path, info.crs, info.numeric, []
        x0, y0, x1, y1 = info.bounds
        # Densified edges, so the reprojected outline keeps the extent's curved sides.
        box = shapely.segmentize(shapely.box(x0, y0, x1, y1),
                                 max(x1 - x0, y1 - y0, 1e-9) / 32)
        layer.fids, layer.labels, layer.layer = np.array([0]), [None], info.layer
        layer.geoms, layer.area = np.array([box], dtype=object), np.array([True])
        layer.used = np.zeros(1, bool)
        layer._projected, layer._placed, layer._scenes, layer._scene_count = {}, {}, {}, 0
        layer._polygons = info.features
        return layer

    def _codes(self, values: np.ndarray, attribute: str) -> list[int | None]:
        """A number field's values as class ids (None where missing); a fraction is no id."""
        numbers = np.asarray(values, dtype=np.float64)
        missing = np.isnan(numbers)
        fraction = ~missing & (numbers != np.round(numbers))
        if fraction.any():
            i = int(np.flatnonzero(fraction)[0])
            raise DataError(f"{self.path}: {attribute!r} is {numbers[i]:g} in fid "
                            f"{self.fids[i]} ({int(fraction.sum())} features hold fractions); "
                            "a numeric class attribute holds class ids, whole numbers (class "
                            "names belong in a text attribute)")
        return [None if m else int(v) for v, m in zip(values, missing, strict=True)]

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
                try:
                    moved = transform_geom(self.crs, crs,
                                           [mapping(self.geoms[i]) for i in index])
                except Exception as err:  # rasterio raises GDAL's CPLE_* error types
                    raise DataError(f"{self.path}: cannot reproject its polygons from "
                                    f"{crs_text(self.crs)} to {crs_text(crs)} ({err})") from None
                out = np.full(len(self.geoms), None, dtype=object)
                out[index] = [shapely.make_valid(shape(g)) for g in moved]
                self._projected[key] = out
        return self._projected[key]

    def place(self, image: Path, crs: CRS | None, transform: Affine, width: int,
              height: int) -> int:
        """Find the polygons over one scene (kept for ``shapes_for``); return how many."""
        import shapely

        if crs is None and not self.area.any():  # nothing to place: all background
            self._placed[image] = (crs, np.flatnonzero(self.area))
            return 0
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
        self._placed[image] = (crs, hits)
        seen = self._scenes.setdefault(crs.to_wkt(), _SceneCrs(crs, image, footprint.bounds))
        x0, y0, x1, y1 = seen.extent
        seen.extent = (min(x0, min(xs)), min(y0, min(ys)), max(x1, max(xs)), max(y1, max(ys)))
        self._scene_count += 1
        return len(hits)

    def shapes_for(self, image: Path, class_ids: dict, ignore: int) -> list[tuple[dict, int]]:
        """(geometry in the scene's CRS, class id) for the polygons ``place`` found over one
        scene, in file order (later polygons paint over earlier ones)."""
        from shapely.geometry import mapping

        crs, hits = self._placed.pop(image)
        if not len(hits):
            return []
        geoms = self._in_crs(crs)
        return [(mapping(geoms[i]), ignore if self.labels[i] is None
                 else class_ids[self.labels[i]]) for i in hits]

    def _crs_names(self) -> tuple[str, str]:
        own = crs_text(self.crs) if self.crs else "none (read in each scene's CRS)"
        return own, ", ".join(crs_text(s.crs) for s in self._scenes.values())

    def _scene_crs_differs(self) -> bool:
        """The layer has a CRS and it is none of the scenes' (rasterio's CRS equality: one
        CRS under two WKT names is the same CRS, two CRSs of one name are not)."""
        if self.crs is None:
            return False
        own = CRS.from_user_input(self.crs)
        return not any(own == s.crs for s in self._scenes.values())

    def _set_crs_advice(self) -> str:
        """How to tag the layer with the scenes' CRS: by code, else copied from a scene."""
        target = next(iter(self._scenes.values()))
        return set_crs_advice(self.path, crs_text(target.crs), layer=self.layer,
                              scene=None if target.crs.to_epsg() else target.image)

    def check_overlap(self) -> None:
        """Polygons, none of them over a scene: the layer's CRS is wrong (another UTM zone,
        swapped axes) or the file is for other ground. Every scene would be all background
        and the model would train on nothing, so this stops before any scene is written."""
        import shapely

        polygons = int(self.area.sum())
        if polygons == 0 or self.used.any() or not self._scenes:
            return
        what = "polygons"
        if self._polygons is not None:  # the header's extent stood for them
            polygons, what = self._polygons, "features"
        own, theirs = self._crs_names()
        scenes = ("its scene" if self._scene_count == 1
                  else f"any of the {self._scene_count} scenes")
        extents = "; ".join(f"scenes {extent_text(s.extent)} in {crs_text(s.crs)}"
                            for s in self._scenes.values())
        mine = extent_text(bounds := shapely.total_bounds(self.geoms[self.area]))
        if self.crs is None:
            where = "in the scenes' CRS"
            lonlat = looks_lonlat(bounds) and not any(s.crs.is_geographic
                                                      for s in self._scenes.values())
            fix = set_crs_advice(self.path, "EPSG:4326" if lonlat else "EPSG:<code>",
                                 layer=self.layer)
            advice = (f"its coordinates look like longitude/latitude (EPSG:4326): declare it, "
                      f"{fix}" if lonlat else f"if its coordinates are in another CRS, set it "
                      f"({fix}); else its polygons lie elsewhere: check that the file belongs "
                      "to these scenes")
        else:
            where = f"in {own}"
            target = crs_text(next(iter(self._scenes.values())).crs)
            advice = (f"if its coordinates are in {target}, its CRS is wrong: set it "
                      f"({self._set_crs_advice()})" if self._scene_crs_differs() else
                      "its polygons lie elsewhere: check that the file belongs to these scenes")
        raise DataError(f"{self.path}: none of its {polygons} {what} overlaps {scenes}: its "
                        f"CRS is {own}, the scenes' {theirs} (polygons {mine} {where}; "
                        f"{extents}); {advice}")

    def report(self) -> list[str]:
        outside = self.area & ~self.used
        polygons = int(self.area.sum())
        what = "lie outside every scene and label nothing"
        if outside.sum() * 2 > polygons:
            own, theirs = self._crs_names()
            what += (f" (most of its {polygons} polygons: if they should cover the scenes, "
                     f"check its CRS, {own}; the scenes' is {theirs})")
        self._note(outside, what)
        return self.notes
