"""Tiles of scenes in different CRSs are compared on one ground: no val/test tile shares
ground with a train tile whatever the scenes' CRSs, and scenes of one CRS keep their grid."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import shapely
from rasterio.transform import from_origin
from rasterio.warp import Resampling, calculate_default_transform, reproject, transform_geom

from components.artifacts import SceneInfo, TileManifest, TileRecord
from components.ingest import ingest_source
from components.raster import write_array
from components.split import SplitOptions, SplitWarning, split_tiles
from components.split_ground import (
    WORLD,
    Footprint,
    frame_line,
    ground_frame,
    shares_ground,
    tile_centres,
    tile_footprints,
)
from components.tile import TileOptions, tile_scenes
from tests.components.conftest import UTM, make_image

CHIP, STEP, PIXEL, PATCH = 32, 16, 2.0, 12  # 3x3 chips every 16 px: neighbours overlap by half
ORIGIN = (600000.0, 3000000.0)
GEOGRAPHIC = "EPSG:4326"


def _to_geographic(data: np.ndarray, transform, nodata: float, resampling: Resampling):
    """``data`` (C, H, W) on the UTM grid ``transform``, reprojected to EPSG:4326."""
    bands, height, width = data.shape
    left, top = transform.c, transform.f
    bounds = (left, top - height * PIXEL, left + width * PIXEL, top)
    dst_transform, w, h = calculate_default_transform(UTM, GEOGRAPHIC, width, height, *bounds)
    out = np.full((bands, h, w), nodata, dtype=data.dtype)
    reproject(data, out, src_transform=transform, src_crs=UTM, dst_transform=dst_transform,
              dst_crs=GEOGRAPHIC, src_nodata=nodata, dst_nodata=nodata, resampling=resampling)
    return out, dst_transform


def _chips(tmp_path: Path, geographic: set[int]) -> Path:
    """Nine chips cut from one 64 px ground (labels: blobs of class 1 on 0), every 16 px on one
    UTM grid; the chips numbered in ``geographic`` reprojected to EPSG:4326. Ingested and tiled
    at 12 px, so the tiles of neighbouring chips overlap without lining up."""
    size = CHIP + 2 * STEP
    image = make_image(size, seed=7)
    rng = np.random.default_rng(3)
    labels = np.zeros((1, size, size), np.uint8)
    for x, y in rng.integers(0, size, (12, 2)):
        labels[0, max(0, y - 4):y + 4, max(0, x - 4):x + 4] = 1
    src = tmp_path / "chips"
    for i in range(9):
        row, col = divmod(i, 3)
        window = np.s_[:, row * STEP:row * STEP + CHIP, col * STEP:col * STEP + CHIP]
        transform = from_origin(ORIGIN[0] + col * STEP * PIXEL, ORIGIN[1] - row * STEP * PIXEL,
                                PIXEL, PIXEL)
        for kind, data, nodata, resampling in (("image", image, 0, Resampling.bilinear),
                                               ("mask", labels, 255, Resampling.nearest)):
            crs, placed = UTM, transform
            data = data[window]
            if i in geographic:
                data, placed = _to_geographic(data, transform, nodata, resampling)
                crs = GEOGRAPHIC
            write_array(src / f"c{i}_{kind}.tif", data, crs, placed, nodata=nodata)
    ds = tmp_path / "ds"
    ingest_source(src, ds)
    tile_scenes(ds, ds, TileOptions(patch_size=PATCH, min_valid_fraction=0.3))
    return ds


@pytest.fixture(scope="module")
def mixed(tmp_path_factory) -> Path:
    return _chips(tmp_path_factory.mktemp("mixed"), geographic={4})


@pytest.fixture(scope="module")
def projected(tmp_path_factory) -> Path:
    return _chips(tmp_path_factory.mktemp("projected"), geographic=set())


def _ground(tile: TileRecord, scene: SceneInfo) -> shapely.Polygon:
    """The tile's in-scene ground in UTM, reprojected exactly as a GIS would check it."""
    col, row = tile.window[:2]
    w, h = min(PATCH, scene.width - col), min(PATCH, scene.height - row)
    a, _, c, _, e, f = tile.transform
    box = shapely.box(c, f + e * h, c + a * w, f)
    if scene.crs == UTM:
        return box
    outline = shapely.geometry.mapping(box.segmentize(abs(a) * 2))
    return shapely.geometry.shape(transform_geom(scene.crs, UTM, outline))


def _train_ground_shared(ds: Path, split) -> dict[str, float]:
    """For each val/test tile, the area (m²) of its ground that is also train ground."""
    manifest = TileManifest.load(ds / "tiles.json")
    scenes = {s.name: s for s in manifest.scenes}
    ground = {t.id: _ground(t, scenes[t.scene]) for t in manifest.tiles}
    train = shapely.union_all([ground[t] for t in split.splits["train"]])
    return {t: ground[t].intersection(train).area
            for name in ("val", "test") for t in split.splits[name]}


# Seeds and ratios that leave val and test a few tiles: the chips overlap by half, so most
# val/test tiles share ground with a train tile and are dropped.
@pytest.mark.parametrize(("strategy", "seed", "ratios"), [("block", 1, (0.7, 0.15, 0.15)),
                                                           ("random", 2, (0.4, 0.3, 0.3))])
def test_no_val_or_test_tile_shares_ground_with_train_whatever_the_crs(mixed, strategy, seed,
                                                                      ratios, tmp_path):
    with pytest.warns(SplitWarning):
        split = split_tiles(mixed, tmp_path / "split.json",
                            SplitOptions(strategy=strategy, seed=seed, ratios=ratios))
    shared = _train_ground_shared(mixed, split)
    assert split.splits["train"] and split.splits["val"] and split.splits["test"]
    # Less than a one-pixel strip along a tile's side: reprojection slivers, never real ground.
    strip = PATCH * PIXEL * PIXEL
    assert {t: round(a) for t, a in shared.items() if a >= strip} == {}
    assert any("EPSG:4326" in w and "EPSG:32650" in w and "reprojecting" in w
               for w in split.warnings)
    manifest = TileManifest.load(mixed / "tiles.json")
    kept = {t for ids in split.splits.values() for t in ids}
    dropped = {t.scene for t in manifest.tiles if t.id not in kept}
    assert "c4" in dropped and len(dropped) > 1  # the 4326 chip and UTM chips alike


def test_scenes_of_one_crs_keep_their_grid_beside_a_reprojected_scene(mixed, projected):
    """The UTM chips' footprints and patch centres are the same map coordinates whether or not
    one chip is in EPSG:4326; the reprojected chip lies within a pixel of where it was."""
    with_4326, utm_only = TileManifest.load(mixed / "tiles.json"), \
        TileManifest.load(projected / "tiles.json")
    assert frame_line(utm_only, ground_frame(utm_only)) is None
    frame = ground_frame(with_4326)
    assert frame.crs == UTM and len(frame.reprojected) == 1 and not frame.unplaced
    utm_tiles = {t.id for t in with_4326.tiles if not t.scene.startswith("c4")}
    for function in (tile_footprints, tile_centres):
        mixed_places = function(with_4326, frame)
        same = function(utm_only, ground_frame(utm_only))
        assert {t: mixed_places[t] for t in utm_tiles} == {t: same[t] for t in utm_tiles}
    footprints = tile_footprints(with_4326, frame)
    chip = shapely.union_all([footprints[t.id].outline for t in with_4326.tiles
                              if t.scene.startswith("c4")])
    x0, y0 = ORIGIN[0] + STEP * PIXEL, ORIGIN[1] - STEP * PIXEL
    original = shapely.box(x0, y0 - CHIP * PIXEL, x0 + CHIP * PIXEL, y0)
    assert chip.hausdorff_distance(original) < 2 * PIXEL  # the 4326 grid adds a nodata fringe
    assert abs(chip.area / original.area - 1) < 0.1


def _square(x0: float, y0: float, side: float, pixel: float = 0.0) -> Footprint:
    outline = shapely.box(x0, y0, x0 + side, y0 + side).segmentize(side / 8)
    return Footprint(WORLD, x0, y0, x0 + side, y0 + side, outline if pixel else None, pixel)


def test_reprojected_footprints_share_ground_only_a_pixel_wide_or_more():
    native = _square(0, 0, 24)
    assert shares_ground(native, _square(23.99, 0, 24), 1e-6)  # same CRS: any positive area
    assert not shares_ground(native, _square(24, 0, 24), 1e-6)
    assert not shares_ground(native, _square(23, 0, 24, pixel=2.0), 1e-6)  # a sliver
    assert shares_ground(native, _square(21.9, 0, 24, pixel=2.0), 1e-6)  # a strip
    assert shares_ground(_square(0, 0, 24, pixel=2.0), _square(12, 12, 24, pixel=2.0), 1e-6)


def test_scenes_that_cannot_be_placed_in_the_frame_are_compared_only_with_themselves():
    """A scene on the far side of the globe from an orthographic frame has no place in it:
    its tiles stay in its own pixels, and the line says so."""
    ortho = "+proj=ortho +lat_0=0 +lon_0=0 +datum=WGS84 +units=m +no_defs"
    scenes = [SceneInfo(name=f"o{i}", width=16, height=16, crs=ortho,
                        transform=(10.0, 0, 16.0 * 10 * i, 0, -10.0, 0)) for i in range(2)]
    scenes.append(SceneInfo(name="far", width=16, height=16, crs=GEOGRAPHIC,
                            transform=(0.001, 0, 179.0, 0, -0.001, 1.0)))
    tiles = [TileRecord(id=f"{s.name}_t", scene=s.name, window=(0, 0, 16, 16),
                        transform=s.transform, valid_fraction=1.0, class_counts={0: 256})
             for s in scenes]
    manifest = TileManifest(patch_size=16, stride=16, bands=1, dtype="uint8", scenes=scenes,
                            tiles=tiles)
    frame = ground_frame(manifest)
    assert frame.unplaced == ("far",) and not frame.reprojected
    assert tile_footprints(manifest, frame)["far_t"].space == "far"
    assert tile_centres(manifest, frame)["far_t"][0] == "far"
    assert tile_footprints(manifest, frame)["o1_t"].space == WORLD
    line = frame_line(manifest, frame)
    assert "1 scene (far) could not be placed" in line and "only with" in line
