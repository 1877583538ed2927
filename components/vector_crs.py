"""How an error tells the user to give a vector file the CRS its coordinates are in: with what
every segpipe install has (Python with rasterio and pyogrio: a Shapefile's ``.prj`` written,
any other file rewritten by pyogrio), and with GDAL's command-line tools (``ogr2ogr``), which
a segpipe install does not bring, named beside it."""

from __future__ import annotations

import shlex
from pathlib import Path

GDAL_TOOLS = "with GDAL's command-line tools"


def looks_lonlat(bounds) -> bool:
    """Coordinates that fit longitude/latitude: every x in -180..180, every y in -90..90."""
    x0, y0, x1, y1 = bounds
    return -180 <= x0 <= x1 <= 180 and -90 <= y0 <= y1 <= 90


def set_crs_advice(path: Path, crs: str, scene: Path | None = None,
                   layer: str | None = None) -> str:
    """Commands that tag ``path`` (run in its folder) with ``crs`` (``EPSG:32650``), or, for a
    CRS without a code, with the CRS of the raster ``scene``; the file's coordinates are kept.
    In a file that may hold several layers (a GeoPackage), ``layer`` alone is read and written
    under its name (its other layers are not copied, nor tagged with a CRS not theirs), and
    the advice says so."""
    layered = layer is not None and _layers(path) > 1
    only = (f" (either writes layer {layer!r} alone, under its name: set vector_labels to "
            f"fixed{path.suffix})") if layered else ""
    read_layer = f", layer={layer!r}" if layered else ""
    ogr_layer = f" {shlex.quote(layer)}" if layered else ""
    if scene is not None:
        imports, value = "import rasterio; ", f"rasterio.open({str(scene)!r}).crs.to_wkt()"
        gdal = (f"gdalsrsinfo -o wkt {shlex.quote(str(scene))} > scenes.wkt; ogr2ogr -a_srs "
                f"scenes.wkt fixed{path.suffix} {path.name}{ogr_layer}")
    else:
        imports = "from rasterio.crs import CRS; " if path.suffix.lower() == ".shp" else ""
        value = (f"CRS.from_user_input({crs!r}).to_wkt()" if path.suffix.lower() == ".shp"
                 else repr(crs))
        gdal = f"ogr2ogr -a_srs {crs} fixed{path.suffix} {path.name}{ogr_layer}"
    if path.suffix.lower() == ".shp":
        prj = path.with_suffix(".prj").name
        python = (f"write {prj} beside it: python -c \"{imports}open({prj!r}, 'w')"
                  f".write({value})\"")
    else:
        python = (f"python -c \"{imports}import pyogrio.raw as r; m, _, g, f = "
                  f"r.read({path.name!r}{read_layer}); r.write('fixed{path.suffix}', g, f, "
                  f"m['fields']{read_layer}, crs={value}, "
                  f"geometry_type=m['geometry_type'])\"")
    return f"{python}; or, {GDAL_TOOLS}, {gdal}{only}"


def _layers(path: Path) -> int:
    import pyogrio

    try:
        return len(pyogrio.list_layers(path))
    except Exception:  # the advice is for a file read before: never fail here
        return 1
