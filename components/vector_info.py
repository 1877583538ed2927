"""What a vector file's header says, checked before any feature is read (so before any
work, also in ``segpipe run``'s checks): which layer holds the labels, its CRS, feature
count and class attribute (none needed in a file without features: it labels nothing), and
coordinates that cannot be in the CRS the file claims."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from rasterio.crs import CRS
from rasterio.errors import CRSError

from components.raster import DataError, SettingError
from components.vector_crs import GDAL_TOOLS, set_crs_advice
from serving.decode import HEAD_BYTES, is_ogr_vrt_xml

VECTOR_SUFFIXES = {".geojson", ".gpkg", ".shp"}


@dataclass(frozen=True)
class LayerInfo:
    """What a vector file's header says about the layer the labels come from."""
    path: Path
    layer: str
    crs: str | None
    features: int
    numeric: bool  # the class attribute is a number field: class ids, not names
    bounds: tuple[float, float, float, float] | None = None  # of all features, in ``crs``

    @property
    def empty(self) -> bool:
        """No feature (so maybe no fields): every scene it labels is all background."""
        return self.features == 0


def crs_text(crs) -> str:
    """A CRS as people name it: ``EPSG:32650``, else the name in its WKT."""
    parsed = CRS.from_user_input(crs)
    epsg = parsed.to_epsg()
    if epsg:
        return f"EPSG:{epsg}"
    named = re.match(r'\s*\w+\[\s*"([^"]+)"', parsed.to_wkt())
    return named.group(1) if named else parsed.to_string()


def extent_text(bounds) -> str:
    x0, y0, x1, y1 = (f"{v:.0f}" if abs(v) >= 1000 else f"{v:.6g}" for v in bounds)
    return f"x {x0}..{x1}, y {y0}..{y1}"


def _check_coordinates(path: Path, layer: str, crs: str | None, bounds,
                       scenes_crs: str | None) -> None:
    """Coordinates far outside longitude/latitude in a geographic CRS: projected coordinates
    in a file whose CRS is missing or wrong. GDAL reads GeoJSON without a "crs" member as
    EPSG:4326, as RFC 7946 says, so UTM metres there would fail deep in the reprojection."""
    if crs is None or bounds is None or not np.all(np.isfinite(bounds)):
        return
    try:
        geographic = CRS.from_user_input(crs).is_geographic
    except CRSError as err:
        raise DataError(f"{path}: unreadable CRS ({err})") from None
    x0, y0, x1, y1 = bounds
    if not geographic or (x0 >= -180.5 and x1 <= 360.5 and y0 >= -90.5 and y1 <= 90.5):
        return
    code = scenes_crs or "EPSG:<code>"
    if_scenes = f" if they are in the scenes' {scenes_crs}" if scenes_crs else ""
    if path.suffix.lower() in (".geojson", ".json"):
        raise DataError(
            f'{path}: GeoJSON without a "crs" member is longitude/latitude (RFC 7946), but '
            f"its coordinates ({extent_text(bounds)}) are not. Name their CRS in a \"crs\" member "
            f'("crs": {{"type": "name", "properties": {{"name": "{code}"}}}}{if_scenes}), or '
            f"convert the file to longitude/latitude ({GDAL_TOOLS}: ogr2ogr -s_srs {code} "
            f"-t_srs EPSG:4326 out.geojson {path.name})")
    which = (f"if they are in the scenes' {scenes_crs}, set it" if scenes_crs
             else "set the CRS they are in")
    raise DataError(f"{path}: its CRS {crs_text(crs)} is longitude/latitude, but its "
                    f"coordinates ({extent_text(bounds)}) are not; {which} "
                    f"({set_crs_advice(path, code, layer=layer)})")


def _refuse_ogr_vrt(path: Path) -> None:
    """OGR opens a file by its bytes, whatever its name: an OGR VRT saved as .geojson would
    read any file of the machine as labels (the raster VRT check of vrt_sources.py does not
    apply to it), so labels are never read through one."""
    try:
        with open(path, "rb") as f:
            head = f.read(HEAD_BYTES)
    except OSError:
        return  # pyogrio names the problem next
    if is_ogr_vrt_xml(head):
        raise DataError(f"{path}: an OGR VRT (it names other files to read) is not read as "
                        f"labels; convert it to a GeoPackage or GeoJSON (ogr2ogr out.gpkg "
                        f"{path.name}, or pyogrio.raw.read and pyogrio.raw.write in Python)")


def read_layer_info(path: Path, layer: str | None, attribute: str | None, max_features: int,
                    scenes_crs: str | None = None) -> LayerInfo:
    """The labels' layer of one vector file, checked from its header alone (no feature is
    read): the layer chosen (``layer``, required when the file has several), the feature
    count, the class attribute (None: the polygons are of one class, ``vector_class``, and
    need none), and coordinates that cannot be in a geographic CRS the file claims.
    ``scenes_crs`` only makes messages more helpful."""
    import pyogrio

    _refuse_ogr_vrt(path)
    try:
        layers = [str(name) for name in pyogrio.list_layers(path)[:, 0]]
    except Exception as err:  # pyogrio raises its own DataSourceError/DataLayerError types
        raise DataError(f"{path}: cannot read as a vector file ({err})") from None
    if not layers:
        raise DataError(f"{path}: holds no layer")
    if layer is None and len(layers) > 1:
        raise SettingError(f"{path}: {len(layers)} layers ({', '.join(layers)}); set "
                           "{setting} to the one holding the labels", "vector_layer")
    if layer is not None and layer not in layers:
        raise SettingError(f"{path}: no layer {layer!r}; its layers are {', '.join(layers)} "
                           "(set {setting})", "vector_layer")
    name = layer if layer is not None else layers[0]
    try:
        info = pyogrio.read_info(path, layer=name, force_total_bounds=True)
    except Exception as err:
        raise DataError(f"{path}: cannot read as a vector file ({err})") from None
    if info["features"] > max_features:
        raise SettingError(f"{path}: {info['features']:,} features is more than "
                           f"{{setting}} ({max_features:,})", "max_vector_features")
    fields = [str(f) for f in info["fields"]]
    if info["features"] == 0:  # a tile without labels (SpaceNet's): all background
        return LayerInfo(path, name, info["crs"], 0, False)
    if attribute is not None and attribute not in fields:
        raise SettingError(f"{path}: no class attribute {attribute!r}; its fields are "
                           f"{', '.join(fields) or 'none'}: set {{setting}} to the field that "
                           "holds the class, or {vector_class} to a class name if every "
                           "polygon is of one class (building footprints)", "class_attribute",
                           ("vector_class",))
    _check_coordinates(path, name, info["crs"], info.get("total_bounds"), scenes_crs)
    numeric = (attribute is not None
               and np.dtype(info["dtypes"][fields.index(attribute)]).kind in "biuf")
    bounds = info.get("total_bounds")
    finite = bounds is not None and bool(np.all(np.isfinite(bounds)))
    return LayerInfo(path, name, info["crs"], int(info["features"]), numeric,
                     tuple(float(v) for v in bounds) if finite else None)
