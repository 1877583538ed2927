"""Vector labels of one class with no class field (SpaceNet's buildings, Microsoft/Google
footprints, an OSM extract of one feature type): ``ingest.vector_class`` names the class of
every polygon, and a missing class attribute advises it."""

from __future__ import annotations

import json

import numpy as np
import pyogrio
import pytest
import shapely
from pydantic import ValidationError

from components.artifacts import ClassMap, SceneIndex
from components.ingest import ingest_source
from components.ingest_options import IngestOptions
from components.raster import DataError, SettingError
from components.survey import IngestWarning
from tests.components.conftest import make_image, make_labels, write_pair
from tests.components.test_discover_vectors import spacenet
from tests.components.test_vectors import FEATURES_UTM, _in_wgs84, _scenes, read_mask

SPACENET = {"image_dir": "MUL", "mask_dir": "geojson/buildings"}


def write_footprints(path, features) -> None:
    """Building polygons with SpaceNet's fields and no class field."""
    geoms = shapely.from_geojson([json.dumps(g) for _, g in features])
    ids = np.arange(1, len(features) + 1, dtype=np.int64)
    pyogrio.raw.write(path, shapely.to_wkb(geoms), field_data=[ids, np.zeros_like(ids)],
                      fields=["building_id", "partialBuilding"], crs="EPSG:4326",
                      geometry_type="Polygon")


def footprint_tiles(root, empty: tuple[int, ...] = (2,)):
    """Three SpaceNet tiles, their GeoJSON without a class field; those of ``empty`` empty
    FeatureCollections. Tile 1 holds the field and the pond, tile 2 the field and the road."""
    return spacenet(root, empty=empty, write=write_footprints)


def _masks(out) -> list[np.ndarray]:
    return [read_mask(out, s.name) for s in SceneIndex.load(out / "scenes.json").scenes]


def test_per_tile_files_without_a_class_field_are_one_class(tmp_path):
    src, out = footprint_tiles(tmp_path / "src"), tmp_path / "out"
    with pytest.warns(IngestWarning, match="1 vector label file holds no feature"):
        classes = ingest_source(src, out, IngestOptions(vector_class="building", **SPACENET))
    assert classes.names == ["background", "building"]
    assert ClassMap.load(out / "classes.json").names == ["background", "building"]
    first, second, third = _masks(out)
    assert (first == 1).sum() > 100 and set(np.unique(first)) == {0, 1}  # field and pond
    assert (first[5:15, 5:15] == 1).all()  # the 20 m pond
    assert (second == 1).any() and set(np.unique(second)) == {0, 1}
    assert (third == 0).all()  # an empty FeatureCollection: background


def test_one_file_for_every_scene_without_a_class_field(tmp_path):
    src = tmp_path / "src"
    _scenes(src)
    write_footprints(src / "footprints.geojson", _in_wgs84(FEATURES_UTM))
    out = tmp_path / "out"
    classes = ingest_source(src, out, IngestOptions(vector_labels="footprints.geojson",
                                                    vector_class="building"))
    assert classes.names == ["background", "building"]
    assert (read_mask(out, "s0")[5:15, 5:15] == 1).all()  # the pond is a building too
    assert (read_mask(out, "s1") == 1).any()


def test_only_empty_files_still_give_the_named_class(tmp_path):
    """Tiles without buildings alone: all background, but the dataset's classes are those the
    model is for, background and building."""
    src, out = footprint_tiles(tmp_path / "src", empty=(0, 1, 2)), tmp_path / "out"
    with pytest.warns(IngestWarning, match="3 vector label files hold no feature"):
        classes = ingest_source(src, out, IngestOptions(vector_class="building", **SPACENET))
    assert classes.names == ["background", "building"]
    assert len(set(c.color for c in classes.classes)) == 2
    assert all((mask == 0).all() for mask in _masks(out))


def test_a_missing_class_attribute_names_the_fields_and_advises_vector_class(tmp_path):
    src = footprint_tiles(tmp_path / "src")
    with pytest.raises(SettingError) as caught:
        ingest_source(src, tmp_path / "out", IngestOptions(**SPACENET))
    message = str(caught.value)
    assert "buildings_AOI_2_Vegas_img1.geojson: no class attribute 'class'; its fields are " \
           "building_id, partialBuilding" in message, message
    assert "set class_attribute to the field that holds the class, or vector_class to a " \
           "class name if every polygon is of one class" in message, message
    # each front end names both settings its own way
    flags = caught.value.named("--class-attribute", {"vector_class": "--vector-class"})
    assert "set --class-attribute to the field" in flags and "or --vector-class to" in flags
    assert not (tmp_path / "out").exists()


def test_vector_class_and_a_class_attribute_are_one_or_the_other():
    with pytest.raises(ValidationError, match=r"vector_class\n.*'building' makes every polygon "
                       "one class, but class_attribute 'kind' .*not both"):
        IngestOptions(vector_class="building", class_attribute="kind")
    with pytest.raises(ValidationError, match="'Background' is the ground no polygon "
                       "covers"):
        IngestOptions(vector_class="Background")
    with pytest.raises(ValidationError, match="must be a class name"):
        IngestOptions(vector_class="  ")
    assert IngestOptions(vector_class=" building ").vector_class == "building"


def test_vector_class_is_refused_for_raster_masks(tmp_path):
    write_pair(tmp_path / "src", "a", make_image(32), make_labels(32))
    with pytest.raises(DataError, match="option vector_class does not apply"):
        ingest_source(tmp_path / "src", tmp_path / "out", IngestOptions(vector_class="tea"))
