"""What a vector file's header tells before any feature is read, and the CRS advice its errors
give: commands that work with what a segpipe install has (Python with rasterio and pyogrio),
GDAL's command-line tools named beside them."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from components.ingest import ingest_source
from components.ingest_options import IngestOptions
from components.raster import DataError
from components.vector_info import read_layer_info
from tests.components.test_vectors import (
    FEATURES_UTM,
    _in_wgs84,
    _scenes,
    _write_layer,
    pond_pixels,
    read_mask,
)


def _advised_python(message: str) -> list[str]:
    """The ``python -c "..."`` command an error advises, as arguments."""
    code = re.search(r'python -c "([^"]*)"', message)
    assert code, message
    return [sys.executable, "-c", code.group(1)]


def _ingest_error(src, out, vector_labels: str) -> str:
    with pytest.raises(DataError) as caught:
        ingest_source(src, out, IngestOptions(vector_labels=vector_labels))
    return str(caught.value)


def test_an_empty_layer_needs_no_class_attribute(tmp_path):
    path = tmp_path / "tile.geojson"
    path.write_text('{"type": "FeatureCollection", "features": []}')
    info = read_layer_info(path, None, "class", 100)
    assert info.features == 0 and info.bounds is None


def test_a_shapefile_without_prj_in_longitude_latitude_says_so_and_how_to_declare_it(tmp_path):
    src = tmp_path / "src"
    _scenes(src)
    _write_layer(src / "labels.shp", _in_wgs84(FEATURES_UTM), crs=None)
    assert not (src / "labels.prj").exists()
    message = _ingest_error(src, tmp_path / "out", "labels.shp")
    assert ("(polygons x 118.009..118.011, y 27.1179..27.1188 in the scenes' CRS; scenes x "
            "600000..600256, y 2999872..3000000 in EPSG:32650); its coordinates look like "
            "longitude/latitude (EPSG:4326): declare it, write labels.prj beside it: "
            "python -c ") in message, message
    assert "or, with GDAL's command-line tools, ogr2ogr -a_srs EPSG:4326 fixed.shp " \
           "labels.shp" in message, message
    # The advice works with the Python segpipe runs on, without GDAL's tools.
    subprocess.run(_advised_python(message), cwd=src, check=True)
    assert pond_pixels(src, tmp_path / "out", "labels.shp") == 100


def test_the_set_crs_advice_for_a_geopackage_works_without_gdal_tools(tmp_path):
    src = tmp_path / "src"
    _scenes(src)
    _write_layer(src / "labels.gpkg", FEATURES_UTM, crs="EPSG:32649")
    message = _ingest_error(src, tmp_path / "out", "labels.gpkg")
    assert "its CRS is wrong: set it (python -c " in message, message
    assert "or, with GDAL's command-line tools, ogr2ogr -a_srs EPSG:32650 fixed.gpkg " \
           "labels.gpkg)" in message, message
    subprocess.run(_advised_python(message), cwd=src, check=True)
    assert pond_pixels(src, tmp_path / "out", "fixed.gpkg") == 100


def test_the_set_crs_advice_for_one_layer_of_a_geopackage_keeps_that_layer(tmp_path):
    src = tmp_path / "src"
    _scenes(src)
    _write_layer(src / "labels.gpkg", FEATURES_UTM[:1], crs="EPSG:32650", layer="aoi")
    _write_layer(src / "labels.gpkg", FEATURES_UTM, crs="EPSG:32649", layer="tea")
    with pytest.raises(DataError) as caught:
        ingest_source(src, tmp_path / "out", IngestOptions(vector_labels="labels.gpkg",
                                                           vector_layer="tea"))
    message = str(caught.value)
    assert ("ogr2ogr -a_srs EPSG:32650 fixed.gpkg labels.gpkg tea (either writes layer 'tea' "
            "alone, under its name: set vector_labels to fixed.gpkg)") in message, message
    subprocess.run(_advised_python(message), cwd=src, check=True)
    ingest_source(src, tmp_path / "fixed", IngestOptions(vector_labels="fixed.gpkg",
                                                         vector_layer="tea"))
    assert int((read_mask(tmp_path / "fixed", "s0") == 2).sum()) == 100
