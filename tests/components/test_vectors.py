"""Vector labels: polygons in GeoJSON/GeoPackage/Shapefile, another CRS, and the quirks of
real files (invalid rings, points, classless and stray polygons, unknown classes)."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pyogrio
import pytest
import rasterio
import shapely
import shapely.affinity
import shapely.geometry
from rasterio.crs import CRS
from rasterio.features import rasterize
from rasterio.transform import from_origin
from rasterio.warp import transform_geom

from components.ingest import find_pairs, ingest_source
from components.ingest_options import IngestOptions
from components.raster import DataError, SettingError, write_array
from components.survey import IngestWarning
from tests.components.conftest import UTM, make_image, make_labels, write_pair

ORIGINS = [(600000.0, 3000000.0), (600128.0, 3000000.0)]  # two 64 px scenes, 2 m pixels


def _scenes(root):
    for i, origin in enumerate(ORIGINS):
        write_array(root / "images" / f"s{i}.tif", make_image(64, seed=i), UTM,
                    from_origin(*origin, 2.0, 2.0))


def _box(x0, y0, x1, y1):
    return {"type": "Polygon", "coordinates": [[(x0, y0), (x1, y0), (x1, y1), (x0, y1),
                                                (x0, y0)]]}


# In UTM: a field over both scenes' seam, a pond inside scene 0, a road crossing scene 1.
FEATURES_UTM = [
    ("field", _box(600100.0, 2999960.0, 600160.0, 2999900.0)),
    ("pond", _box(600010.0, 2999990.0, 600030.0, 2999970.0)),
    ("road", _box(600130.0, 2999940.0, 600250.0, 2999930.0)),
]


def _expected(origin, classes):
    shapes = [(g, classes.names.index(c)) for c, g in FEATURES_UTM]
    return rasterize(shapes, out_shape=(64, 64), transform=from_origin(*origin, 2.0, 2.0),
                     fill=0, dtype="uint8")


def _write_layer(path, features, crs="EPSG:4326", driver=None, layer=None):
    geoms = shapely.from_geojson([json.dumps(g) for _, g in features])
    labels = np.array([c for c, _ in features], dtype=object)
    pyogrio.raw.write(path, shapely.to_wkb(geoms), field_data=[labels], fields=["class"],
                      crs=crs, driver=driver, geometry_type="Unknown", promote_to_multi=False,
                      layer=layer)


def _in_wgs84(features):
    return [(c, transform_geom(UTM, "EPSG:4326", g)) for c, g in features]


def read_mask(out, scene):
    with rasterio.open(out / "scenes" / f"{scene}_mask.tif") as src:
        return src.read(1)


def pond_pixels(src, out, vector_labels) -> int:
    """Ingest ``src`` with ``vector_labels``: the pixels of scene s0 that are pond (100 when
    FEATURES_UTM's polygons land where they belong)."""
    ingest_source(src, out, IngestOptions(vector_labels=vector_labels))
    return int((read_mask(out, "s0") == 2).sum())


@pytest.mark.parametrize("suffix", [".geojson", ".gpkg", ".shp"])
def test_polygons_in_another_crs_are_rasterized_onto_each_scene(tmp_path, suffix):
    src = tmp_path / "src"
    _scenes(src)
    _write_layer(src / f"labels{suffix}", _in_wgs84(FEATURES_UTM))
    out = tmp_path / "out"
    classes = ingest_source(src, out, IngestOptions(vector_labels=f"labels{suffix}",
                                                    image_dir="images"))
    assert classes.names == ["background", "field", "pond", "road"]
    for i, origin in enumerate(ORIGINS):
        agree = (read_mask(out, f"s{i}") == _expected(origin, classes)).mean()
        assert agree > 0.995, (i, agree)  # reprojection moves an edge pixel at most
    assert (read_mask(out, "s0") == 2).sum() == 100  # the 20 m pond: 10 x 10 px


def test_vector_quirks_are_reported_and_never_silently_wrong(tmp_path):
    src = tmp_path / "src"
    _scenes(src)
    bowtie = {"type": "Polygon", "coordinates": [[(600000.0, 3000000.0), (600040.0, 2999960.0),
                                                  (600040.0, 3000000.0),
                                                  (600000.0, 2999960.0),
                                                  (600000.0, 3000000.0)]]}
    features = [*FEATURES_UTM, ("field", bowtie),
                ("road", {"type": "Point", "coordinates": (600050.0, 2999950.0)}),
                (None, _box(600200.0, 2999990.0, 600220.0, 2999970.0)),
                ("field", _box(700000.0, 2000000.0, 700010.0, 1999990.0))]
    _write_layer(src / "labels.geojson", _in_wgs84(features))
    out = tmp_path / "out"
    with pytest.warns(IngestWarning) as caught:
        ingest_source(src, out, IngestOptions(vector_labels="labels.geojson"))
    text = " | ".join(str(w.message) for w in caught)
    assert "1 features are invalid and were repaired (make_valid), e.g. fid 3 " \
           "(Self-intersection at " in text
    assert "1 features are not polygons (no area: points or lines) and are skipped, e.g. " \
           "fid 4 (Point)" in text
    assert "1 features have no 'class' value; their area is ignored" in text
    assert "1 features lie outside every scene and label nothing, e.g. fid 6" in text
    assert "[" not in text
    s1 = read_mask(out, "s1")
    assert (s1[5:15, 36:46] == 255).all()  # the classless polygon: ignored, not background
    s0 = read_mask(out, "s0")
    assert (s0[7:13, 0:3] == 1).all()  # the repaired bowtie's left wing: field
    assert (s0[0:2, 8:12] == 0).all()  # between its wings: background, as drawn


def test_unknown_class_values_and_missing_attribute_are_errors(tmp_path):
    src = tmp_path / "src"
    _scenes(src)
    _write_layer(src / "labels.geojson", _in_wgs84(FEATURES_UTM))
    (src / "classes.json").write_text(json.dumps({"classes": [
        {"name": "background", "color": "#000000"}, {"name": "field", "color": "#00FF00"}]}))
    with pytest.raises(DataError, match="2 polygon classes are not in the palette or "
                       r"classes.json \(known: background, field\): 'pond' \(1 polygon\), "
                       r"'road' \(1 polygon\)"):
        ingest_source(src, tmp_path / "out", IngestOptions(vector_labels="labels.geojson"))
    with pytest.raises(DataError, match=r"labels.geojson: no class attribute 'landuse'; its "
                       "fields are class"):
        ingest_source(src, tmp_path / "out2", IngestOptions(vector_labels="labels.geojson",
                                                            class_attribute="landuse"))
    assert not (tmp_path / "out").exists() and not (tmp_path / "out2").exists()


def test_per_scene_geojson_sidecar_and_a_plain_image_is_refused(tmp_path):
    src = tmp_path / "src"
    write_array(src / "a_image.tif", make_image(64), UTM, from_origin(*ORIGINS[0], 2.0, 2.0))
    _write_layer(src / "a_mask.geojson", _in_wgs84(FEATURES_UTM[1:2]))
    classes = ingest_source(src, tmp_path / "out")
    assert classes.names == ["background", "pond"]
    assert (read_mask(tmp_path / "out", "a") == 1).sum() == 100
    plain = tmp_path / "plain"
    write_array(plain / "b_image.tif", make_image(64), None, rasterio.Affine.identity())
    _write_layer(plain / "b_mask.geojson", _in_wgs84(FEATURES_UTM[1:2]))
    with pytest.raises(DataError, match=r"b_image.tif: not georeferenced, so the polygons of "
                       r".*b_mask.geojson cannot be placed on it"):
        ingest_source(plain, tmp_path / "out2")


def test_an_ogr_vrt_saved_as_geojson_is_refused_not_read(tmp_path):
    """OGR opens a file by its bytes: XML naming a layer elsewhere on the machine, saved as
    a_mask.geojson, would read that file as the labels."""
    outside = tmp_path / "outside.geojson"
    _write_layer(outside, _in_wgs84(FEATURES_UTM[1:2]))
    src = tmp_path / "src"
    write_array(src / "a_image.tif", make_image(64), UTM, from_origin(*ORIGINS[0], 2.0, 2.0))
    (src / "a_mask.geojson").write_text(
        '<?xml version="1.0"?>\n<OGRVRTDataSource><OGRVRTLayer name="outside">'
        f"<SrcDataSource>{outside}</SrcDataSource></OGRVRTLayer></OGRVRTDataSource>\n")
    with pytest.raises(DataError, match=r"a_mask.geojson: an OGR VRT .* is not read as labels"):
        ingest_source(src, tmp_path / "out")
    assert not (tmp_path / "out" / "scenes").exists()


def test_a_file_with_several_layers_needs_the_layer_named(tmp_path):
    """A GeoPackage that also holds the study area ('aoi', drawn first): its first layer is
    not the labels, so reading it would label every pixel 'study area' without a word."""
    src = tmp_path / "src"
    _scenes(src)
    gpkg = src / "labels.gpkg"
    _write_layer(gpkg, [("study area", _box(599000.0, 3001000.0, 601000.0, 2999000.0))],
                 crs=UTM, layer="aoi")
    _write_layer(gpkg, FEATURES_UTM, crs=UTM, layer="tea")
    with pytest.raises(SettingError, match=r"labels.gpkg: 2 layers \(aoi, tea\); set "
                       "vector_layer to the one holding the labels") as caught:
        ingest_source(src, tmp_path / "out", IngestOptions(vector_labels="labels.gpkg"))
    # The setting is the error's, for each front end to name its own way.
    assert caught.value.field == "vector_layer"
    assert caught.value.named("--vector-layer").endswith("set --vector-layer to the one "
                                                         "holding the labels")
    with pytest.raises(SettingError, match=r"labels.gpkg: no layer 'roads'; its layers are aoi, "
                       r"tea \(set vector_layer\)"):
        ingest_source(src, tmp_path / "out", IngestOptions(vector_labels="labels.gpkg",
                                                           vector_layer="roads"))
    assert not (tmp_path / "out").exists()
    classes = ingest_source(src, tmp_path / "out", IngestOptions(vector_labels="labels.gpkg",
                                                                 vector_layer="tea"))
    assert classes.names == ["background", "field", "pond", "road"]
    assert (read_mask(tmp_path / "out", "s0") == 2).sum() == 100


def test_vector_layer_is_refused_for_raster_masks(tmp_path):
    write_pair(tmp_path / "src", "a", make_image(32), make_labels(32))
    with pytest.raises(DataError, match="option vector_layer does not apply"):
        ingest_source(tmp_path / "src", tmp_path / "out", IngestOptions(vector_layer="tea"))


def test_the_layer_and_class_attribute_are_checked_when_the_pairs_are_found(tmp_path):
    """find_pairs is what `segpipe run` and prepare check before any work: a wrong class
    attribute or an unchosen layer must fail there, not in the ingest step minutes later."""
    src = tmp_path / "src"
    _scenes(src)
    _write_layer(src / "labels.gpkg", FEATURES_UTM, crs=UTM, layer="tea")
    _write_layer(src / "labels.gpkg", FEATURES_UTM[:1], crs=UTM, layer="aoi")
    found = find_pairs(src, IngestOptions(vector_labels="labels.gpkg", vector_layer="tea"))
    assert [p.name for p in found.pairs] == ["s0", "s1"]
    assert found.layers[src / "labels.gpkg"].layer == "tea"
    with pytest.raises(DataError, match="labels.gpkg: 2 layers"):
        find_pairs(src, IngestOptions(vector_labels="labels.gpkg"))
    with pytest.raises(DataError, match=r"labels.gpkg: no class attribute 'landuse'; its "
                       "fields are class"):
        find_pairs(src, IngestOptions(vector_labels="labels.gpkg", vector_layer="tea",
                                      class_attribute="landuse"))


def test_geojson_without_crs_in_projected_coordinates_says_what_to_do(tmp_path):
    """A GeoJSON saved without a "crs" member is longitude/latitude (RFC 7946; GDAL reads it
    as EPSG:4326), but exporters often write the scenes' UTM metres into it."""
    src = tmp_path / "src"
    _scenes(src)
    _write_layer(src / "labels.geojson", FEATURES_UTM, crs=None)
    assert '"crs"' not in (src / "labels.geojson").read_text()
    with pytest.raises(DataError) as caught:
        ingest_source(src, tmp_path / "out", IngestOptions(vector_labels="labels.geojson"))
    assert str(caught.value) == (
        f"{src / 'labels.geojson'}: GeoJSON without a \"crs\" member is longitude/latitude "
        "(RFC 7946), but its coordinates (x 600010..600250, y 2999900..2999990) are not. "
        "Name their CRS in a \"crs\" member (\"crs\": {\"type\": \"name\", \"properties\": "
        "{\"name\": \"EPSG:32650\"}} if they are in the scenes' EPSG:32650), or convert the "
        "file to longitude/latitude (with GDAL's command-line tools: ogr2ogr -s_srs EPSG:32650 "
        "-t_srs EPSG:4326 out.geojson labels.geojson)")
    # The advice works: with the member named, the polygons land where they belong.
    data = json.loads((src / "labels.geojson").read_text())
    data["crs"] = {"type": "name", "properties": {"name": "EPSG:32650"}}
    (src / "labels.geojson").write_text(json.dumps(data))
    assert pond_pixels(src, tmp_path / "out", "labels.geojson") == 100


def test_a_layer_tagged_longitude_latitude_with_projected_coordinates_is_refused(tmp_path):
    src = tmp_path / "src"
    _scenes(src)
    _write_layer(src / "labels.gpkg", FEATURES_UTM, crs="EPSG:4326")
    with pytest.raises(DataError, match=r"labels.gpkg: its CRS EPSG:4326 is longitude/latitude, "
                       r"but its coordinates \(x 600010..600250, y 2999900..2999990\) are not; "
                       r"if they are in the scenes' EPSG:32650, set it \(python -c .*; or, "
                       r"with GDAL's command-line tools, ogr2ogr -a_srs EPSG:32650 fixed.gpkg "
                       r"labels.gpkg\)"):
        find_pairs(src, IngestOptions(vector_labels="labels.gpkg"))


def test_a_layer_tagged_with_the_wrong_utm_zone_stops_before_any_scene_is_written(tmp_path):
    """The scenes' UTM metres tagged as the neighbouring zone: reprojected, every polygon
    lands some 600 km away and the dataset would be all background."""
    src = tmp_path / "src"
    _scenes(src)
    _write_layer(src / "labels.gpkg", FEATURES_UTM, crs="EPSG:32649")
    # Found from the headers alone (the vector file's extent, the scenes' footprints), in
    # the checks `segpipe run` and `prepare` make before any work, by the ingest's own rule.
    with pytest.raises(DataError) as early:
        find_pairs(src, IngestOptions(vector_labels="labels.gpkg"))
    with pytest.raises(DataError) as caught:
        ingest_source(src, tmp_path / "out", IngestOptions(vector_labels="labels.gpkg"))
    assert str(early.value) == str(caught.value)
    assert str(caught.value) == (
        f"{src / 'labels.gpkg'}: none of its 3 features overlaps any of the 2 scenes: its CRS "
        "is EPSG:32649, the scenes' EPSG:32650 (polygons x 600010..600250, y 2999900..2999990 "
        "in EPSG:32649; scenes x 600000..600256, y 2999872..3000000 in EPSG:32650); if its "
        "coordinates are in EPSG:32650, its CRS is wrong: set it (python -c \"import "
        "pyogrio.raw as r; m, _, g, f = r.read('labels.gpkg'); r.write('fixed.gpkg', g, f, "
        "m['fields'], crs='EPSG:32650', geometry_type=m['geometry_type'])\"; or, with GDAL's "
        "command-line tools, ogr2ogr -a_srs EPSG:32650 fixed.gpkg labels.gpkg)")
    assert not (tmp_path / "out").exists()
    # In the right CRS but for other ground: no CRS advice.
    far = [(c, shapely.geometry.mapping(shapely.affinity.translate(shapely.geometry.shape(g),
                                                                    50000)))
           for c, g in FEATURES_UTM]
    _write_layer(src / "far.gpkg", far, crs=UTM)
    with pytest.raises(DataError, match=r"far.gpkg: none of its 3 features overlaps any of the "
                       r"2 scenes: its CRS is EPSG:32650, the scenes' EPSG:32650 .*; its "
                       "polygons lie elsewhere: check that the file belongs to these scenes"):
        ingest_source(src, tmp_path / "out", IngestOptions(vector_labels="far.gpkg"))


# An Albers projection without an EPSG code, under two WKT names (as two GIS tools save it).
_ALBERS = CRS.from_proj4("+proj=aea +lat_0=20 +lon_0=117 +lat_1=25 +lat_2=47 +x_0=0 +y_0=0 "
                         "+datum=NAD83 +units=m +no_defs").to_wkt()
ALBERS = _ALBERS.replace('PROJCS["unknown"', 'PROJCS["NAD83 / Custom Albers"', 1)
ALBERS_RENAMED = _ALBERS.replace('PROJCS["unknown"', 'PROJCS["NAD83 / Survey Albers"', 1)


def _moved(features, dx=50000.0):
    return [(c, shapely.geometry.mapping(shapely.affinity.translate(shapely.geometry.shape(g),
                                                                     dx)))
            for c, g in features]


def test_no_overlap_names_a_crs_without_code_whole_and_compares_crs_not_names(tmp_path):
    """Scenes and layer in one Albers CRS saved under two names, the polygons for other
    ground: the CRS is right (so no advice to change it), and both names are shown whole."""
    src = tmp_path / "src"
    for i, origin in enumerate(ORIGINS):
        write_array(src / "images" / f"s{i}.tif", make_image(64, seed=i), ALBERS,
                    from_origin(*origin, 2.0, 2.0))
    _write_layer(src / "labels.gpkg", _moved(FEATURES_UTM), crs=ALBERS_RENAMED)
    with pytest.raises(DataError) as caught:
        ingest_source(src, tmp_path / "out", IngestOptions(vector_labels="labels.gpkg"))
    message = str(caught.value)
    assert ("its CRS is NAD83 / Survey Albers, the scenes' NAD83 / Custom Albers (polygons x "
            "650010..650250, y 2999900..2999990 in NAD83 / Survey Albers; scenes x "
            "600000..600256, y 2999872..3000000 in NAD83 / Custom Albers); its polygons lie "
            "elsewhere: check that the file belongs to these scenes") in message, message
    # In UTM metres tagged EPSG:32650 over these Albers scenes: a CRS without a code is set
    # from a scene's WKT.
    _write_layer(src / "utm.gpkg", FEATURES_UTM, crs=UTM)
    with pytest.raises(DataError) as caught:
        ingest_source(src, tmp_path / "out", IngestOptions(vector_labels="utm.gpkg"))
    assert str(caught.value).endswith(
        "; if its coordinates are in NAD83 / Custom Albers, its CRS is wrong: set it "
        f"(python -c \"import rasterio; import pyogrio.raw as r; m, _, g, f = "
        f"r.read('utm.gpkg'); r.write('fixed.gpkg', g, f, m['fields'], "
        f"crs=rasterio.open('{src / 'images' / 's0.tif'}').crs.to_wkt(), "
        f"geometry_type=m['geometry_type'])\"; or, with GDAL's command-line tools, "
        f"gdalsrsinfo -o wkt {src / 'images' / 's0.tif'} > scenes.wkt; ogr2ogr -a_srs "
        "scenes.wkt fixed.gpkg utm.gpkg)"), str(caught.value)


def test_no_overlap_of_a_layer_without_crs_says_its_coordinates_are_the_scenes(tmp_path):
    src = tmp_path / "src"
    _scenes(src)
    _write_layer(src / "labels.gpkg", _moved(FEATURES_UTM), crs=None)
    with pytest.raises(DataError) as caught:
        ingest_source(src, tmp_path / "out", IngestOptions(vector_labels="labels.gpkg"))
    message = str(caught.value)
    assert " in none" not in message
    assert ("(polygons x 650010..650250, y 2999900..2999990 in the scenes' CRS; scenes x "
            "600000..600256, y 2999872..3000000 in EPSG:32650); if its coordinates are in "
            "another CRS, set it (python -c \"import pyogrio.raw as r; m, _, g, f = "
            "r.read('labels.gpkg'); r.write('fixed.gpkg', g, f, m['fields'], "
            "crs='EPSG:<code>', geometry_type=m['geometry_type'])\"; or, with GDAL's "
            "command-line tools, ogr2ogr -a_srs EPSG:<code> fixed.gpkg labels.gpkg); else its "
            "polygons lie elsewhere: check that the file belongs to these scenes") in message, \
        message


def test_most_polygons_outside_every_scene_warns_naming_both_crs(tmp_path):
    """Some polygons over the scenes, most elsewhere: a wider labelled area is normal, so it
    is a warning, but one that points at the CRS."""
    src = tmp_path / "src"
    _scenes(src)
    away = [(c, shapely.geometry.mapping(shapely.affinity.translate(shapely.geometry.shape(g),
                                                                     0, 50000)))
            for c, g in FEATURES_UTM]
    _write_layer(src / "labels.gpkg", _in_wgs84([*FEATURES_UTM[1:2], *away]))
    with pytest.warns(IngestWarning) as caught:
        ingest_source(src, tmp_path / "out", IngestOptions(vector_labels="labels.gpkg"))
    text = " | ".join(str(w.message) for w in caught)
    assert ("labels.gpkg: 3 features lie outside every scene and label nothing (most of its 4 "
            "polygons: if they should cover the scenes, check its CRS, EPSG:4326; the scenes' "
            "is EPSG:32650), e.g. fid 2, fid 3, fid 4") in text
    assert "1 scene has no polygon over it and is all background" in text


def _write_codes(path, codes, geoms, dtype="int64"):
    """A layer whose class attribute is a number field, as GIS tools write class codes."""
    pyogrio.raw.write(path, shapely.to_wkb(shapely.from_geojson([json.dumps(g) for g in geoms])),
                      field_data=[np.array(codes, dtype=dtype)], fields=["class"], crs=UTM,
                      geometry_type="Polygon")


# A tea field over both scenes, a clearing (code 0) cut out of it in scene 0, a road in s1.
CODED = [(1, _box(600100.0, 2999960.0, 600160.0, 2999900.0)),
         (0, _box(600110.0, 2999950.0, 600120.0, 2999940.0)),
         (7, _box(600130.0, 2999940.0, 600250.0, 2999930.0))]


def test_integer_class_codes_are_class_ids_and_zero_is_background(tmp_path):
    src = tmp_path / "src"
    _scenes(src)
    _write_codes(src / "labels.gpkg", [c for c, _ in CODED], [g for _, g in CODED])
    out = tmp_path / "out"
    classes = ingest_source(src, out, IngestOptions(vector_labels="labels.gpkg"))
    assert classes.names == ["background", "class_1", "class_7"]
    expected = {0: 0, 1: 1, 7: 2}
    for i, origin in enumerate(ORIGINS):
        want = rasterize([(g, expected[c]) for c, g in CODED], out_shape=(64, 64),
                         transform=from_origin(*origin, 2.0, 2.0), fill=0, dtype="uint8")
        assert (read_mask(out, f"s{i}") == want).all(), i
    s0 = read_mask(out, "s0")
    assert (s0[25:30, 55:60] == 0).all()  # the clearing: background, like uncovered ground
    assert set(np.unique(s0)) == {0, 1}


def test_integer_codes_take_names_from_classes_json_or_options(tmp_path):
    src = tmp_path / "src"
    _scenes(src)
    _write_codes(src / "labels.gpkg", [c for c, _ in CODED], [g for _, g in CODED], "int32")
    (src / "classes.json").write_text(json.dumps({"classes": [
        {"id": 1, "name": "tea", "color": "#00FF00"}, {"id": 7, "name": "road"}]}))
    classes = ingest_source(src, tmp_path / "a", IngestOptions(vector_labels="labels.gpkg"))
    assert classes.names == ["background", "tea", "road"]
    assert classes.classes[1].color == "#00FF00"
    (src / "classes.json").unlink()
    classes = ingest_source(src, tmp_path / "b", IngestOptions(
        vector_labels="labels.gpkg", class_values={0: 0, 1: 1, 7: 1},
        class_names=["ground", "tea or road"]))
    assert classes.names == ["ground", "tea or road"]
    assert set(np.unique(read_mask(tmp_path / "b", "s1"))) == {0, 1}
    classes = ingest_source(src, tmp_path / "c", IngestOptions(vector_labels="labels.gpkg",
                                                               ignore_values=[7]))
    assert classes.names == ["background", "class_1"]
    assert (read_mask(tmp_path / "c", "s1") == 255).sum() == 5 * 60  # the 10 x 120 m road


def test_unknown_or_fractional_codes_are_errors(tmp_path):
    src = tmp_path / "src"
    _scenes(src)
    _write_codes(src / "labels.gpkg", [c for c, _ in CODED], [g for _, g in CODED])
    (src / "classes.json").write_text(json.dumps({"classes": [{"id": 1, "name": "tea"}]}))
    with pytest.raises(DataError, match=r"1 polygon class code is not a known class value "
                       r"\(known: 1\): 7 \(1 polygon in .*labels.gpkg\)"):
        ingest_source(src, tmp_path / "out", IngestOptions(vector_labels="labels.gpkg"))
    with pytest.raises(DataError, match="class_values gives no id to 0"):
        ingest_source(src, tmp_path / "out", IngestOptions(
            vector_labels="labels.gpkg", class_values={1: 0, 7: 1}))
    _write_codes(src / "real.gpkg", [1.0, 0.0, 2.5], [g for _, g in CODED], "float64")
    with pytest.raises(DataError, match=r"real.gpkg: 'class' is 2.5 in fid 3 \(1 features "
                       r"hold fractions\); a numeric class attribute holds class ids"):
        ingest_source(src, tmp_path / "out", IngestOptions(vector_labels="real.gpkg"))


def test_uncovered_ground_is_background_wherever_the_palette_lists_it(tmp_path):
    src = tmp_path / "src"
    _scenes(src)
    _write_layer(src / "labels.gpkg", FEATURES_UTM[1:2], crs=UTM)
    classes = ingest_source(src, tmp_path / "out", IngestOptions(
        vector_labels="labels.gpkg", palette=[{"name": "pond", "color": "#0000FF"},
                                              {"name": "background", "color": "#000000"}]))
    assert classes.names == ["pond", "background"]
    s0 = read_mask(tmp_path / "out", "s0")
    assert (s0 == 0).sum() == 100 and (s0 == 1).sum() == 64 * 64 - 100


def test_a_folder_with_vector_labels_but_no_option_says_to_set_it(tmp_path):
    src = tmp_path / "src"
    _scenes(src)
    _write_layer(src / "labels.gpkg", FEATURES_UTM, crs=UTM)
    with pytest.raises(DataError, match=r"no image/label pairs found among 3 files "
                       r"\(extensions .gpkg, .tif\); .*; the source holds vector labels "
                       r"\(labels.gpkg\): set vector_labels: labels.gpkg$"):
        ingest_source(src, tmp_path / "out")


def test_vector_labels_in_an_archive_of_one_folder_resolve_like_its_scenes(tmp_path):
    """A zip of a folder (gpkg/scenes/*.tif, gpkg/labels.gpkg): the scenes are found at any
    depth, so 'labels.gpkg' is looked up in that folder too; a wrong name lists the vector
    files there are."""
    folder = tmp_path / "gpkg"
    _scenes(folder)
    _write_layer(folder / "labels.gpkg", FEATURES_UTM, crs=UTM)
    archive = tmp_path / "poly.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for path in sorted(folder.rglob("*")):
            zf.write(path, path.relative_to(tmp_path).as_posix())
    for given in ("labels.gpkg", "gpkg/labels.gpkg"):
        out = tmp_path / given.replace("/", "_")
        classes = ingest_source(archive, out, IngestOptions(vector_labels=given))
        assert classes.names == ["background", "field", "pond", "road"]
        assert (read_mask(out, "s0") == 2).sum() == 100
    with pytest.raises(DataError, match=r"^vector_labels 'tea.gpkg': no such file in the "
                       r"source \(its vector files: gpkg/labels.gpkg\)$"):
        ingest_source(archive, tmp_path / "out", IngestOptions(vector_labels="tea.gpkg"))
