"""Vector labels published one file per image (SpaceNet: ``MUL/MUL_AOI_2_Vegas_imgN.tif`` +
``geojson/buildings/buildings_AOI_2_Vegas_imgN.geojson``, tiles without buildings shipped
as empty FeatureCollections): they pair with their images as raster labels do, and are
never read as one file for every scene."""

from __future__ import annotations

import json

import numpy as np
import pytest
from rasterio.transform import from_origin

from components.artifacts import SceneIndex
from components.discover import discover_pairs
from components.ingest import ingest_source
from components.ingest_options import IngestOptions
from components.raster import DataError, write_array
from components.survey import IngestWarning
from tests.components.conftest import UTM, make_image
from tests.components.test_vectors import FEATURES_UTM, _in_wgs84, _write_layer, read_mask

# Three 64 px scenes side by side (2 m pixels); the first two hold buildings, the third none.
ORIGINS = [(600000.0, 3000000.0), (600128.0, 3000000.0), (600256.0, 3000000.0)]
EMPTY = '{"type": "FeatureCollection", "features": []}'


def spacenet(root, image_prefix="MUL_", label_prefix="buildings_", empty=(2,),
             write=_write_layer):
    """SpaceNet's layout: per-tile images and per-tile GeoJSON in EPSG:4326 (written by
    ``write``, with a class field by default); the files of the tiles in ``empty`` (the last)
    are empty FeatureCollections."""
    for i, origin in enumerate(ORIGINS):
        scene = f"AOI_2_Vegas_img{i + 1}"
        write_array(root / "MUL" / f"{image_prefix}{scene}.tif", make_image(64, seed=i), UTM,
                    from_origin(*origin, 2.0, 2.0))
        label = root / "geojson" / "buildings" / f"{label_prefix}{scene}.geojson"
        label.parent.mkdir(parents=True, exist_ok=True)
        if i in empty:
            label.write_text(EMPTY)
        else:  # the features over this tile only (the field crosses tiles 1 and 2)
            write(label, _in_wgs84(FEATURES_UTM[:2] if i == 0 else FEATURES_UTM[::2]))
    return root


def test_per_tile_geojson_pairs_by_name_and_an_empty_file_is_all_background(tmp_path):
    src = spacenet(tmp_path / "src")
    out = tmp_path / "out"
    with pytest.warns(IngestWarning) as caught:
        classes = ingest_source(src, out, IngestOptions(image_dir="MUL",
                                                        mask_dir="geojson/buildings"))
    index = SceneIndex.load(out / "scenes.json")
    assert [(s.source, s.label) for s in index.scenes] == [
        (f"MUL/MUL_AOI_2_Vegas_img{i}.tif",
         f"geojson/buildings/buildings_AOI_2_Vegas_img{i}.geojson") for i in (1, 2, 3)]
    assert classes.names == ["background", "field", "pond", "road"]
    masks = {s.name: read_mask(out, s.name) for s in index.scenes}
    first, second, empty = masks.values()
    assert (first == 2).sum() == 100 and not (first == 3).any()  # its own file's pond
    assert (second == 3).any() and not (second == 2).any()  # its own road, no pond
    assert (empty == 0).all()  # no feature: uncovered ground, background
    notes = " ".join(str(w.message) for w in caught)
    assert "1 vector label file holds no feature" in notes, notes
    assert "class attribute" not in notes


def test_an_empty_file_of_an_image_without_georeferencing_is_all_background(tmp_path):
    """No polygon to place: the image's missing CRS does not matter."""
    src = spacenet(tmp_path / "src")
    write_array(src / "MUL" / "MUL_AOI_2_Vegas_img3.tif", make_image(64, seed=2), None, None)
    with pytest.warns(IngestWarning):
        ingest_source(src, tmp_path / "out", IngestOptions(image_dir="MUL",
                                                           mask_dir="geojson/buildings"))
    assert (read_mask(tmp_path / "out", "MUL_AOI_2_Vegas_img3") == 0).all()


def test_a_class_attribute_missing_where_there_are_features_is_still_an_error(tmp_path):
    src = spacenet(tmp_path / "src")
    with pytest.raises(DataError, match=r"buildings_AOI_2_Vegas_img1.geojson: no class "
                       r"attribute 'kind'; its fields are class"):
        ingest_source(src, tmp_path / "out", IngestOptions(
            image_dir="MUL", mask_dir="geojson/buildings", class_attribute="kind"))


def test_an_empty_vector_labels_file_reads_as_all_background(tmp_path):
    src = tmp_path / "src"
    for i, origin in enumerate(ORIGINS[:2]):
        write_array(src / "scenes" / f"s{i}.tif", make_image(64, seed=i), UTM,
                    from_origin(*origin, 2.0, 2.0))
    (src / "labels.geojson").write_text(EMPTY)
    with pytest.warns(IngestWarning, match="1 vector label file holds no feature, so 2 scenes "
                      "are all background"):
        classes = ingest_source(src, tmp_path / "out",
                                IngestOptions(vector_labels="labels.geojson"))
    assert classes.names == ["background"]
    assert (read_mask(tmp_path / "out", "s0") == 0).all()


def test_pair_by_beside_one_vector_file_for_all_is_said_unused(tmp_path):
    src = tmp_path / "src"
    write_array(src / "scenes" / "s0.tif", make_image(64), UTM, from_origin(*ORIGINS[0], 2, 2))
    (src / "labels.geojson").write_text(EMPTY)
    notes = discover_pairs(src, ["masks"], vector_labels="labels.geojson",
                           pair_by=r"_(\d+)$").notes
    assert notes == ["pair_by '_(\\d+)$' is not used: vector_labels 'labels.geojson' labels "
                     "every image"]


@pytest.mark.parametrize("image_prefix", ["MUL_", "SN_"])
def test_per_tile_vector_files_are_never_advised_as_one_vector_labels_file(tmp_path,
                                                                           image_prefix):
    src = spacenet(tmp_path / "src", image_prefix=image_prefix)
    with pytest.raises(DataError) as caught:
        ingest_source(src, tmp_path / "out")
    message = str(caught.value)
    assert "set vector_labels" not in message, message
    assert ("3 vector files look like labels of one image each (e.g. geojson/buildings/"
            "buildings_AOI_2_Vegas_img1.geojson): set image_dir: MUL and mask_dir: "
            "geojson/buildings") in message, message
    if image_prefix == "SN_":  # the names differ by prefixes no rule knows: say how to pair
        assert "pair_by: '^(?:SN_|buildings_)(.+)$'" in message, message


@pytest.mark.parametrize("image_prefix", ["MUL_", "SN_"])
def test_vector_labels_naming_one_of_many_per_tile_files_is_an_error(tmp_path, image_prefix):
    """Following the old advice labelled every tile from one tile's file, silently."""
    src = spacenet(tmp_path / "src", image_prefix=image_prefix)
    chosen = "geojson/buildings/buildings_AOI_2_Vegas_img1.geojson"
    with pytest.raises(DataError) as caught:
        ingest_source(src, tmp_path / "out", IngestOptions(vector_labels=chosen))
    message = str(caught.value)
    assert message.startswith(f"vector_labels {chosen!r} would label all 3 images, but it and "
                              "2 more vector files look like labels of one image each"), message
    assert "set image_dir: MUL and mask_dir: geojson/buildings" in message, message
    assert not (tmp_path / "out").exists()


def test_one_vector_file_beside_unrelated_ones_is_still_read_for_every_scene(tmp_path):
    """An area of interest or a second survey beside the labels is no per-image label."""
    src = tmp_path / "src"
    for i, origin in enumerate(ORIGINS[:2]):
        write_array(src / "scenes" / f"s{i}.tif", make_image(64, seed=i), UTM,
                    from_origin(*origin, 2.0, 2.0))
    _write_layer(src / "labels.geojson", _in_wgs84(FEATURES_UTM))
    (src / "aoi.geojson").write_text(json.dumps({"type": "FeatureCollection", "features": []}))
    classes = ingest_source(src, tmp_path / "out", IngestOptions(vector_labels="labels.geojson"))
    assert classes.names == ["background", "field", "pond", "road"]
    assert np.isin(read_mask(tmp_path / "out", "s1"), [1, 3]).any()


def test_one_vector_file_beside_per_tile_ones_warns_that_they_are_not_read(tmp_path):
    src = spacenet(tmp_path / "src")
    _write_layer(src / "all_buildings.geojson", _in_wgs84(FEATURES_UTM))
    with pytest.warns(IngestWarning, match=r"vector_labels 'all_buildings.geojson' labels "
                      r"every image, but 3 other vector files look like labels of one image "
                      r"each \(e.g. geojson/buildings/buildings_AOI_2_Vegas_img1.geojson\), "
                      r"and are not read; if they are the labels, set image_dir: MUL and "
                      r"mask_dir: geojson/buildings instead"):
        ingest_source(src, tmp_path / "out", IngestOptions(vector_labels="all_buildings.geojson"))
