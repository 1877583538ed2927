"""Class polygons of a mask: which classes, simplification (and a minimum area measured
after it), and RFC 7946 WGS84 output; the minimum area over whole regions across the block
grid is test_polygon_area.py's."""

from __future__ import annotations

import json

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin
from shapely.geometry import shape

from serving.polygons import PolygonError, PolygonOptions, check_options, write_polygons

NAMES = ["background", "tea", "road"]
PIXEL = 2.0  # metres: a pixel is 4 m²
BLOCK = 32


def write_mask(path, mask: np.ndarray, crs: str | None = "EPSG:32644"):
    profile = dict(driver="GTiff", width=mask.shape[1], height=mask.shape[0], count=1,
                   dtype="uint8", nodata=255)
    if crs:
        profile.update(crs=crs, transform=from_origin(600000.0, 2700000.0, PIXEL, PIXEL))
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(mask, 1)
    return path


def write_seam_mask(path):
    """64 x 64 on a 32-px block grid: a big tea field across the grid (4 px of it left of
    the seam), a 3 x 3 tea plot, a 2 x 4 road stub across the seam, an ignored corner."""
    mask = np.zeros((64, 64), np.uint8)
    mask[2:12, 28:60] = 1  # 320 px, 40 of them left of column 32
    mask[40:43, 5:8] = 1  # 9 px
    mask[50:52, 30:34] = 2  # 8 px, half on each side of the seam
    mask[60:, 60:] = 255
    return write_mask(path, mask)


@pytest.fixture
def mask_path(tmp_path):
    return write_seam_mask(tmp_path / "mask.tif")


def features(path) -> list[dict]:
    return json.loads(path.read_text())["features"]


def pixels_of(feature: dict) -> float:
    return shape(feature["geometry"]).area / PIXEL**2


def test_background_is_left_out_unless_asked_for(mask_path, tmp_path):
    out = tmp_path / "p.geojson"
    counts = write_polygons(mask_path, out, NAMES, 255, block=BLOCK)
    assert set(counts) == {"tea", "road"}
    assert {f["properties"]["class_name"] for f in features(out)} == {"tea", "road"}
    assert sum(counts.values()) == len(features(out))
    write_polygons(mask_path, out, NAMES, 255, PolygonOptions(classes=("road",)), BLOCK)
    assert sum(pixels_of(f) for f in features(out)) == 8
    with pytest.raises(PolygonError, match=r"polygon classes Tea are not the model's \(its "
                                           r"classes: background, tea, road\)"):
        write_polygons(mask_path, out, NAMES, 255, PolygonOptions(classes=("Tea",)), BLOCK)


def test_simplify_keeps_valid_polygons_with_fewer_vertices(tmp_path):
    rows, cols = np.mgrid[:64, :64]
    disc = ((rows - 32) ** 2 + (cols - 32) ** 2 < 25**2).astype(np.uint8)  # stair outline
    path = write_mask(tmp_path / "disc.tif", disc)
    plain, simple = tmp_path / "a.geojson", tmp_path / "b.geojson"
    write_polygons(path, plain, NAMES, 255)
    write_polygons(path, simple, NAMES, 255, PolygonOptions(simplify=1.5 * PIXEL))
    (before,), (after,) = features(plain), features(simple)
    vertices = [len(f["geometry"]["coordinates"][0]) for f in (before, after)]
    assert vertices[1] < vertices[0] / 3, vertices
    assert shape(after["geometry"]).is_valid
    assert abs(pixels_of(after) - pixels_of(before)) < 0.03 * pixels_of(before)


def test_min_area_is_measured_after_simplifying(tmp_path):
    """A 6 x 3 plot with two 1-px bumps is 20 px (80 m²); simplified within 2 m the bumps go
    and it is 18 px (72 m²), under a 76 m² minimum: it is left out, whole in its block or
    across the seam. A 5 x 4 plot (80 m² either way) and a field across the seam stay."""
    mask = np.zeros((64, 64), np.uint8)

    def bumped_plot(row: int, col: int) -> None:
        mask[row:row + 3, col:col + 6] = 1
        mask[row - 1, col + 2] = mask[row + 3, col + 1] = 1

    bumped_plot(5, 5)  # whole in the first block
    bumped_plot(20, 29)  # across the seam at column 32
    mask[40:45, 5:9] = 1  # 20 px, a rectangle simplifying leaves as it is
    mask[50:60, 20:50] = 2  # 300 px road across the seam: its pieces stay
    path = write_mask(tmp_path / "plots.tif", mask)
    out = tmp_path / "p.geojson"
    least = 76.0
    write_polygons(path, out, NAMES, 255, PolygonOptions(min_area=least), BLOCK)
    assert sorted(pixels_of(f) for f in features(out)) == [9, 11, 20, 20, 120, 180]
    write_polygons(path, out, NAMES, 255, PolygonOptions(min_area=least, simplify=PIXEL),
                   BLOCK)
    kept = features(out)
    assert sorted((f["properties"]["class_name"], pixels_of(f)) for f in kept) == \
        [("road", 120), ("road", 180), ("tea", 20)]
    whole = [f for f in kept if f["properties"]["class_name"] == "tea"]
    assert all(shape(f["geometry"]).area >= least for f in whole)


def test_wgs84_output_is_rfc_7946(mask_path, tmp_path):
    out = tmp_path / "p.geojson"
    write_polygons(mask_path, out, NAMES, 255, PolygonOptions(crs="EPSG:4326"), BLOCK)
    collection = json.loads(out.read_text())
    assert "crs" not in collection  # RFC 7946: WGS84 longitude, latitude
    lon, lat = collection["features"][0]["geometry"]["coordinates"][0][0]
    assert 81.9 < lon < 82.1 and 24.3 < lat < 24.5, (lon, lat)  # UTM 44N, 600 km, 2700 km
    write_polygons(mask_path, out, NAMES, 255, PolygonOptions(crs="EPSG:32645"), BLOCK)
    assert json.loads(out.read_text())["crs"]["properties"]["name"].endswith("EPSG::32645")


@pytest.mark.parametrize(("options", "crs", "message"), [
    (PolygonOptions(min_area=-1), "EPSG:32644", "cannot be negative"),
    (PolygonOptions(crs="EPSG:99999999"), "EPSG:32644", "'EPSG:99999999' is not a CRS"),
    (PolygonOptions(crs="EPSG:4326"), None, "the scene has no CRS to transform from"),
    # Metres meant, degrees given: every polygon would be dropped (or flattened).
    (PolygonOptions(min_area=100), "EPSG:4326", r"is in degrees.*minimum area \(100, degrees"),
    (PolygonOptions(simplify=2), "EPSG:4326", r"simplification tolerance \(2, degrees\)"),
])
def test_options_that_cannot_work_are_refused(options, crs, message):
    with pytest.raises(PolygonError, match=message):
        check_options(options, NAMES, crs and rasterio.crs.CRS.from_string(crs))


def test_areas_in_degrees_are_taken_when_they_are_degrees():
    check_options(PolygonOptions(min_area=1e-9, simplify=1e-5), NAMES,
                  rasterio.crs.CRS.from_string("EPSG:4326"))


def test_cli_polygon_options(logged_model, tmp_path):
    from tests.serving.conftest import write_scene
    from tests.serving.test_remote import predict

    scene = write_scene(tmp_path / "scene.tif", 80, 60)
    out = tmp_path / "tea.geojson"
    result = predict(scene, tmp_path / "m.tif", logged_model, "--polygons", str(out),
                     "--polygon-classes", "tea,water", "--min-area", "2",
                     "--simplify", "0.5", "--polygons-crs", "EPSG:4326")
    assert result.exit_code == 0, result.output
    collection = json.loads(out.read_text())
    assert "crs" not in collection
    counts = {name: sum(f["properties"]["class_name"] == name
                        for f in collection["features"]) for name in ("tea", "water")}
    assert f"wrote {out} ({sum(counts.values())} polygons: tea {counts['tea']}, water " \
           f"{counts['water']})" in result.stdout
    assert all(shape(f["geometry"]).area * 1e10 > 0 for f in collection["features"])
    for flags, message in ((["--polygons", str(out), "--polygon-classes", "Tea"],
                            "error: polygon classes Tea are not the model's (its classes: "
                            "soil, tea, water)"),
                           (["--min-area", "5"], "error: --min-area shapes the polygons: add "
                                                 "--polygons FILE.geojson"),
                           (["--polygons", str(out), "--simplify", "-1"],
                            "error: the minimum area and the simplification tolerance cannot "
                            "be negative")):
        refused = predict(scene, tmp_path / "n.tif", logged_model, *flags)
        assert refused.exit_code == 2, refused.output
        assert refused.output.strip() == message
        assert not (tmp_path / "n.tif").exists()
