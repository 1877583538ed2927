"""Split: no scene or block in two splits, seeded, non-empty, stratified, warnings."""

from __future__ import annotations

import pytest
import rasterio

from components.artifacts import TileManifest
from components.ingest import ingest_source
from components.raster import DataError, write_array
from components.split import SplitOptions, SplitWarning, split_tiles
from components.tile import TileOptions, tile_scenes
from tests.components.conftest import UTM, make_image, make_labels


@pytest.fixture
def tiled(sample_source, tmp_path):
    ds = tmp_path / "ds"
    ingest_source(sample_source, ds)
    tile_scenes(ds, ds, TileOptions(patch_size=16, min_valid_fraction=0.3))
    return ds


def _tile_split(split):
    return {t: name for name, ids in split.splits.items() for t in ids}


def test_scene_split_is_leak_free_seeded_and_non_empty(tiled, tmp_path):
    manifest = TileManifest.load(tiled / "tiles.json")
    split = split_tiles(tiled, tmp_path / "split.json", SplitOptions(strategy="scene", seed=3))
    where = _tile_split(split)
    assert set(where) == {t.id for t in manifest.tiles}
    for scene in {t.scene for t in manifest.tiles}:
        assert len({where[t.id] for t in manifest.tiles if t.scene == scene}) == 1
    assert all(split.splits[name] for name in ("train", "val", "test"))  # 3 scenes, 1 each
    again = split_tiles(tiled, tmp_path / "again.json", SplitOptions(strategy="scene", seed=3))
    assert again.splits == split.splits


def test_block_split_uses_world_blocks_across_adjacent_scenes(tiled, tmp_path):
    manifest = TileManifest.load(tiled / "tiles.json")
    split = split_tiles(tiled, tmp_path / "split.json",
                        SplitOptions(strategy="block", block_size=32, seed=0))
    where = _tile_split(split)
    blocks = {}
    x0, y0 = 500000.0, 4500000.0  # the sample grid's top-left corner
    for t in manifest.tiles:
        x = t.transform[2] + t.transform[0] * 8 - x0
        y = y0 - (t.transform[5] + t.transform[4] * 8)
        blocks.setdefault((x // 16.0, y // 16.0), set()).add(where[t.id])  # 32 px * 0.5 m
    assert all(len(s) == 1 for s in blocks.values())
    assert len(blocks) > 3 and all(split.splits.values())


def test_random_split_follows_ratios_and_warns_on_missing_class(tiled, tmp_path):
    n = len(TileManifest.load(tiled / "tiles.json").tiles)
    split = split_tiles(tiled, tmp_path / "r.json",
                        SplitOptions(strategy="random", ratios=(0.5, 0.25, 0.25)))
    assert abs(len(split.splits["train"]) - n / 2) <= 2
    one_block = {"strategy": "block", "block_size": 10_000, "ratios": (0.8, 0.1, 0.1)}
    with pytest.raises(DataError, match="split 'val' is empty: only 1 blocks.*allow_empty"):
        split_tiles(tiled, tmp_path / "s.json", SplitOptions(**one_block))
    assert not (tmp_path / "s.json").exists()
    with pytest.warns(SplitWarning, match="split 'test' is empty"):
        lonely = split_tiles(tiled, tmp_path / "s.json",
                             SplitOptions(**one_block, allow_empty_splits=True))
    assert not lonely.splits["test"]
    assert any("'test' is empty" in w and "allow_empty_splits" in w for w in lonely.warnings)


def test_bad_ratios_are_rejected():
    with pytest.raises(ValueError, match="sum to 1"):
        SplitOptions(ratios=(0.5, 0.5, 0.5))


def test_overlapping_scenes_never_share_ground_across_splits(tmp_path):
    # Four 32 px chips every 16 px on one grid, overlapping by half like exported GIS chips.
    src = tmp_path / "chips"
    for i in range(4):
        transform = rasterio.transform.from_origin(600000.0 + 32.0 * i, 3000000.0, 2.0, 2.0)
        for kind, data in (("image", make_image(32, seed=i)), ("mask", make_labels(32, (0, 1)))):
            write_array(src / f"c{i}_{kind}.tif", data, UTM, transform)
    ds = tmp_path / "ds"
    ingest_source(src, ds)
    manifest = tile_scenes(ds, ds, TileOptions(patch_size=16))
    with pytest.warns(SplitWarning, match="dropped .* share ground"):
        split = split_tiles(ds, ds / "split.json", SplitOptions(strategy="scene"))
    where = _tile_split(split)
    kept = [t for t in manifest.tiles if t.id in where]
    assert len(kept) < len(manifest.tiles) and split.splits["train"]
    for a in kept:
        for b in kept:
            if where[a.id] != where[b.id]:
                assert (abs(a.transform[2] - b.transform[2]) >= 32.0
                        or abs(a.transform[5] - b.transform[5]) >= 32.0)
    block = split_tiles(ds, ds / "b.json", SplitOptions(strategy="block", block_size=32))
    assert not any("dropped" in w for w in block.warnings)  # 64 m blocks hold whole overlaps


def test_rare_class_reaches_every_split(tmp_path):
    from components.artifacts import SceneInfo, TileRecord

    scenes, tiles = [], []
    for i in range(9):
        scenes.append(SceneInfo(name=f"s{i}", width=16, height=16, crs=None,
                                transform=(1, 0, 0, 0, 1, 0)))
        counts = {0: 200, 1: 56} if i in (2, 5, 7) else {0: 256}
        tiles.append(TileRecord(id=f"s{i}_t", scene=f"s{i}", window=(0, 0, 16, 16),
                                transform=(1, 0, 0, 0, 1, 0), valid_fraction=1.0,
                                class_counts=counts))
    TileManifest(patch_size=16, stride=16, bands=1, dtype="uint8", scenes=scenes,
                 tiles=tiles).save(tmp_path / "tiles.json")
    for seed in range(5):
        split = split_tiles(tmp_path, tmp_path / "split.json", SplitOptions(seed=seed))
        for ids in split.splits.values():
            assert any(t in {"s2_t", "s5_t", "s7_t"} for t in ids)
        assert not split.warnings
