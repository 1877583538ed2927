"""Tile: windows, padding, overlap, valid-fraction filter, resampling, georeference."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio

from components.artifacts import ClassInfo, ClassMap, TileManifest
from components.dataset_paths import read_tile, tile_paths
from components.raster import DataError, write_array
from components.scene_tiles import grid_offsets
from components.tile import TileOptions, tile_scenes
from tests.components.conftest import UTM, make_image, make_labels


def ingested(tmp_path, image, mask, nodata=None, name="s"):
    root = tmp_path / "ingested"
    (root / "scenes").mkdir(parents=True)
    transform = rasterio.transform.from_origin(600000.0, 3000000.0, 2.0, 2.0)
    write_array(root / "scenes" / f"{name}_image.tif", image, UTM, transform, nodata)
    write_array(root / "scenes" / f"{name}_mask.tif", mask, UTM, transform, 255)
    ClassMap(classes=[ClassInfo(id=i, name=f"c{i}", color="#000000") for i in range(2)]
             ).save(root / "classes.json")
    return root


def test_grid_offsets_cover_the_axis():
    assert grid_offsets(64, 32, 32) == [0, 32]
    assert grid_offsets(70, 32, 32) == [0, 32, 64]
    assert grid_offsets(64, 32, 16) == [0, 16, 32]
    assert grid_offsets(10, 32, 32) == [0]


def test_tiles_carry_window_transform_and_pixels(tmp_path):
    image, mask = make_image(64), make_labels(64, (0, 1))
    root = ingested(tmp_path, image, mask)
    manifest = tile_scenes(root, tmp_path / "ds", TileOptions(patch_size=32))
    assert len(manifest.tiles) == 4 and manifest.dtype == "uint16" and manifest.bands == 4
    tile = next(t for t in manifest.tiles if t.window[:2] == (32, 0))
    image_path, _ = tile_paths(tmp_path / "ds" / "tiles", tile.id)
    with rasterio.open(image_path) as src:
        assert src.crs.to_epsg() == 32650
        assert src.transform.c == 600000.0 + 64.0 and src.transform.f == 3000000.0
        assert tuple(src.transform)[:6] == tile.transform
    tile_image, tile_mask = read_tile(tmp_path / "ds" / "tiles", tile.id)
    np.testing.assert_array_equal(np.moveaxis(tile_image, -1, 0), image[:, :32, 32:])
    assert tile.class_counts == {1: 32 * 32}
    assert TileManifest.load(tmp_path / "ds" / "tiles.json") == manifest


def test_small_scene_is_padded_not_dropped_and_edges_padded(tmp_path):
    root = ingested(tmp_path, make_image(20), make_labels(20, (0, 1)), nodata=0)
    manifest = tile_scenes(root, tmp_path / "ds", TileOptions(patch_size=32,
                                                               min_valid_fraction=0.9))
    assert len(manifest.tiles) == 1 and manifest.tiles[0].valid_fraction == 1.0
    image, mask = read_tile(tmp_path / "ds" / "tiles", manifest.tiles[0].id)
    assert image.shape == (32, 32, 4) and (image[20:] == 0).all() and (mask[20:] == 255).all()
    assert (mask[:20, :20] != 255).all()


def test_nodata_and_nan_tiles_below_min_valid_fraction_are_dropped(tmp_path):
    image = make_image(64, dtype="float32")
    image[:, :32, :32] = np.nan          # top-left tile all NaN
    image[:, 32:, :24] = -1.0            # bottom-left tile 75% nodata
    root = ingested(tmp_path, image, make_labels(64, (0, 1)), nodata=-1.0)
    manifest = tile_scenes(root, tmp_path / "ds", TileOptions(patch_size=32,
                                                               min_valid_fraction=0.5))
    kept = sorted(t.window[:2] for t in manifest.tiles)
    assert kept == [(32, 0), (32, 32)]
    manifest = tile_scenes(root, tmp_path / "ds", TileOptions(patch_size=32,
                                                               min_valid_fraction=0.2))
    left = next(t for t in manifest.tiles if t.window[:2] == (0, 32))
    assert left.valid_fraction == pytest.approx(0.25)
    _, mask = read_tile(tmp_path / "ds" / "tiles", left.id)
    assert (mask[:, :24] == 255).all() and left.class_counts == {0: 8 * 32}


def test_stride_overlap_and_scale(tmp_path):
    root = ingested(tmp_path, make_image(64), make_labels(64, (0, 1)))
    overlapping = tile_scenes(root, tmp_path / "a", TileOptions(patch_size=32, stride=16))
    assert len(overlapping.tiles) == 9 and overlapping.stride == 16
    half = tile_scenes(root, tmp_path / "b", TileOptions(patch_size=32, scale=0.5))
    assert len(half.tiles) == 1 and half.scenes[0].width == 32
    assert half.tiles[0].transform[0] == pytest.approx(4.0)  # 2 m pixels -> 4 m
    _, mask = read_tile(tmp_path / "b" / "tiles", half.tiles[0].id)
    assert set(np.unique(mask)) == {0, 1}  # nearest resampling keeps ids exact


def test_every_tile_maps_back_onto_the_scene_through_its_transform(tmp_path):
    image = make_image(50, dtype="int16")
    root = ingested(tmp_path, image, make_labels(50, (0, 1)))
    manifest = tile_scenes(root, tmp_path / "ds", TileOptions(patch_size=16, stride=12,
                                                               min_valid_fraction=0.0))
    scene = rasterio.Affine(*manifest.scenes[0].transform)
    for tile in manifest.tiles:
        col, row = ~scene @ (tile.transform[2], tile.transform[5])
        col, row = round(col), round(row)
        assert (col, row) == tile.window[:2]
        tile_image, tile_mask = read_tile(tmp_path / "ds" / "tiles", tile.id)
        h, w = min(16, 50 - row), min(16, 50 - col)
        np.testing.assert_array_equal(np.moveaxis(tile_image, -1, 0)[:, :h, :w],
                                      image[:, row:row + h, col:col + w])
        assert (tile_mask[h:] == 255).all() and (tile_mask[:, w:] == 255).all()
    assert {t.window[:2] for t in manifest.tiles} == {(c, r) for r in (0, 12, 24, 36)
                                                      for c in (0, 12, 24, 36)}


def test_edge_tiles_are_measured_against_their_in_scene_area(tmp_path):
    # 80 px scene, 64 px tiles: the edge tiles hold 16 columns/rows of the scene. Measured
    # against a whole tile they would be 25% valid and dropped at 0.5, losing those pixels.
    mask = make_labels(80, (0, 1))
    mask[:40, :40] = 255  # a quarter of the scene is unlabelled
    root = ingested(tmp_path, make_image(80), mask)
    manifest = tile_scenes(root, tmp_path / "ds", TileOptions(patch_size=64,
                                                               min_valid_fraction=0.5))
    fractions = {t.window[:2]: t.valid_fraction for t in manifest.tiles}
    assert fractions == {(0, 0): pytest.approx(1 - 40 * 40 / 64 ** 2), (64, 0): 1.0,
                         (0, 64): 1.0, (64, 64): 1.0}
    labelled = sum(sum(t.class_counts.values()) for t in manifest.tiles)
    assert labelled == 80 * 80 - 40 * 40  # every labelled pixel lands in a tile


def test_tiles_without_a_labelled_pixel_are_never_kept(tmp_path):
    mask = make_labels(64, (0, 1))
    mask[:32, :32] = 255  # labels ignored, image valid
    root = ingested(tmp_path, make_image(64), mask)
    manifest = tile_scenes(root, tmp_path / "ds", TileOptions(patch_size=32,
                                                               min_valid_fraction=0.0))
    assert sorted(t.window[:2] for t in manifest.tiles) == [(0, 32), (32, 0), (32, 32)]


def test_target_gsd_resamples_each_scene_to_metres_per_pixel(tmp_path):
    root = tmp_path / "ingested"
    (root / "scenes").mkdir(parents=True)
    for name, pixel in (("fine", 1.0), ("coarse", 4.0)):
        size = int(64 / pixel)
        transform = rasterio.transform.from_origin(600000.0, 3000000.0, pixel, pixel)
        write_array(root / "scenes" / f"{name}_image.tif", make_image(size), UTM, transform)
        write_array(root / "scenes" / f"{name}_mask.tif", make_labels(size, (0, 1)), UTM,
                    transform, 255)
    ClassMap(classes=[ClassInfo(id=i, name=f"c{i}", color="#000000") for i in range(2)]
             ).save(root / "classes.json")
    manifest = tile_scenes(root, tmp_path / "ds", TileOptions(patch_size=16, target_gsd=2.0))
    assert manifest.target_gsd == 2.0
    scenes = {s.name: s for s in manifest.scenes}
    assert (scenes["fine"].width, scenes["fine"].scale) == (32, 0.5)
    assert (scenes["coarse"].width, scenes["coarse"].scale) == (32, 2.0)
    assert {t.transform[0] for t in manifest.tiles} == {2.0}
    with pytest.raises(ValueError, match="scale or target_gsd, not both"):
        TileOptions(scale=0.5, target_gsd=2.0)


def test_target_gsd_on_a_scene_without_projected_crs_names_it(tmp_path):
    root = ingested(tmp_path, make_image(32), make_labels(32, (0, 1)), name="plain")
    write_array(root / "scenes" / "plain_image.tif", make_image(32), "EPSG:4326",
                rasterio.transform.from_origin(100.0, 30.0, 0.001, 0.001))
    with pytest.raises(DataError, match="scene plain: target_gsd needs a projected CRS "
                       r"\(metres\), but the scene has EPSG:4326"):
        tile_scenes(root, tmp_path / "ds", TileOptions(patch_size=16, target_gsd=2.0))


def test_identical_tiles_of_overlapping_georeferenced_scenes_are_kept_once(tmp_path):
    """Tea chips overlap by half, pixel for pixel: 44 tiles were 19 distinct footprints.
    Scene 'b' is the right half of 'a' plus new ground; 'later' is 'a's ground on another
    date (other pixels): its tiles stay."""
    root = tmp_path / "ingested"
    (root / "scenes").mkdir(parents=True)
    ground, labels = make_image(96), make_labels(96, (0, 1))
    origin = rasterio.transform.from_origin
    for name, cols, x0, seed in (("a", slice(0, 64), 600000.0, None),
                                 ("b", slice(32, 96), 600064.0, None),
                                 ("later", slice(0, 64), 600000.0, 5)):
        image = ground[:, :64, cols] if seed is None else make_image(64, seed=seed)
        transform = origin(x0, 3000000.0, 2.0, 2.0)
        write_array(root / "scenes" / f"{name}_image.tif", image, UTM, transform)
        write_array(root / "scenes" / f"{name}_mask.tif", labels[:64, cols], UTM, transform,
                    255)
    ClassMap(classes=[ClassInfo(id=i, name=f"c{i}", color="#000000") for i in range(2)]
             ).save(root / "classes.json")
    with pytest.warns(UserWarning, match=r"^12 tiles, 2 identical to others dropped: 10 "
                                         r"distinct"):
        manifest = tile_scenes(root, tmp_path / "ds", TileOptions(patch_size=32))
    assert manifest.duplicates_dropped == 2 and len(manifest.tiles) == 10
    footprints = {}
    for tile in manifest.tiles:
        footprints.setdefault(tile.transform, []).append(tile.scene)
    # Each ground square once per distinct content: a's and b's shared half once, 'later'
    # beside it.
    assert sorted(map(sorted, footprints.values())) == sorted(
        [["a", "later"], ["a", "later"], ["a", "later"], ["a", "later"], ["b"], ["b"]])
    kept = {t.id for t in manifest.tiles}
    on_disk = {p.name.removesuffix("_image.tif")
               for p in (tmp_path / "ds" / "tiles").glob("*_image.tif")}
    assert on_disk == kept
    assert TileManifest.load(tmp_path / "ds" / "tiles.json").duplicates_dropped == 2


def test_tiles_in_degrees_of_other_pixel_sizes_are_not_one_footprint(tmp_path):
    """EPSG:4326 pixels of 8.6e-6° and 9.4e-6° from one origin cover other ground: the same
    pixels and labels there are two tiles, not a duplicate (both agreed to 6 decimals)."""
    root = tmp_path / "ingested"
    (root / "scenes").mkdir(parents=True)
    image, labels = make_image(32), make_labels(32, (0, 1))
    for name, pixel in (("fine", 8.6e-6), ("coarse", 9.4e-6)):
        transform = rasterio.transform.from_origin(80.5, 6.9, pixel, pixel)
        write_array(root / "scenes" / f"{name}_image.tif", image, "EPSG:4326", transform)
        write_array(root / "scenes" / f"{name}_mask.tif", labels, "EPSG:4326", transform, 255)
    ClassMap(classes=[ClassInfo(id=i, name=f"c{i}", color="#000000") for i in range(2)]
             ).save(root / "classes.json")
    manifest = tile_scenes(root, tmp_path / "ds", TileOptions(patch_size=32))
    assert manifest.duplicates_dropped == 0
    assert sorted(t.scene for t in manifest.tiles) == ["coarse", "fine"]
