"""Split: no scene or block in two splits, seeded, non-empty, stratified, warnings."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import rasterio

from components.artifacts import TileManifest
from components.ingest import ingest_source
from components.raster import DataError, write_array
from components.split import SplitOptions, SplitWarning, split_for_training, split_tiles
from components.split_advice import pipeline_split_problem
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
    with pytest.raises(DataError,
                       match="splits 'val' and 'test' are empty: only 1 block for.*allow_empty"):
        split_tiles(tiled, tmp_path / "s.json", SplitOptions(**one_block))
    assert not (tmp_path / "s.json").exists()
    with pytest.warns(SplitWarning, match="'test' are empty"):
        lonely = split_tiles(tiled, tmp_path / "s.json",
                             SplitOptions(**one_block, allow_empty_splits=True))
    assert not lonely.splits["test"]
    assert any("'test' are empty" in w and "allow_empty_splits" in w for w in lonely.warnings)
    # ... which `segpipe run` cannot tune or score on: it says so in one line, with the why.
    manifest = TileManifest.load(tiled / "tiles.json")
    problem = pipeline_split_problem(lonely, manifest, None)
    assert problem.startswith("segpipe run tunes on the val split, which is empty: only 1 block")
    assert "segpipe prepare" in problem and "(accepted" not in problem
    assert pipeline_split_problem(split, manifest, None) is None
    with pytest.warns(SplitWarning), pytest.raises(DataError) as refused:
        split_for_training(tiled, tmp_path / "t.json",
                           SplitOptions(**one_block, allow_empty_splits=True))
    assert str(refused.value) == problem


def test_bad_ratios_are_rejected():
    with pytest.raises(ValueError, match="sum to 1"):
        SplitOptions(ratios=(0.5, 0.5, 0.5))


def _half_overlapping_chips(tmp_path: Path) -> Path:
    """Four 32 px chips every 16 px on one grid, overlapping by half like exported GIS chips:
    the ingested dataset."""
    src = tmp_path / "chips"
    for i in range(4):
        transform = rasterio.transform.from_origin(600000.0 + 32.0 * i, 3000000.0, 2.0, 2.0)
        for kind, data in (("image", make_image(32, seed=i)), ("mask", make_labels(32, (0, 1)))):
            write_array(src / f"c{i}_{kind}.tif", data, UTM, transform)
    ds = tmp_path / "ds"
    ingest_source(src, ds)
    return ds


def test_overlapping_scenes_never_share_ground_across_splits(tmp_path):
    ds = _half_overlapping_chips(tmp_path)
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


def test_the_advice_on_dropped_tiles_fits_the_strategy(tmp_path):
    """Tiles overlapping by half: a block split drops those at block edges and says what
    would keep them under 'block' itself, not to use 'block'; a scene split is told of it."""
    src = tmp_path / "scene"
    for kind, data in (("image", make_image(64)), ("mask", make_labels(64, (0, 1)))):
        write_array(src / f"s_{kind}.tif", data, UTM,
                    rasterio.transform.from_origin(600000.0, 3000000.0, 2.0, 2.0))
    ds = tmp_path / "ds"
    ingest_source(src, ds)
    tile_scenes(ds, ds, TileOptions(patch_size=16, stride=8))
    block = split_tiles(ds, ds / "block.json", SplitOptions(strategy="block", block_size=16,
                                                            allow_empty_splits=True))
    (line,) = [w for w in block.warnings if w.startswith("dropped")]
    assert "strategy 'block'" not in line
    assert line.endswith(
        "val/test tiles that share ground with tiles of another split (the tiles overlap: "
        "stride 8 < patch_size 16, so tiles at block edges share ground with the next "
        "block's); tile without overlap (stride = patch_size), or take larger blocks "
        "(block_size 16 px now) to drop fewer")
    random = split_tiles(ds, ds / "random.json", SplitOptions(strategy="random",
                                                              allow_empty_splits=True))
    (line,) = [w for w in random.warnings if w.startswith("dropped")]
    assert line.endswith("use strategy 'block', which keeps shared ground in one split, or "
                         "tiles without overlap (stride = patch_size)")
    assert "block size" not in line and "block_size" not in line


def test_a_scene_split_is_not_told_to_tile_without_overlap(tmp_path):
    """A scene split keeps a scene's tiles together, so only tiles overlapping other scenes
    are dropped: the advice is about the scenes, not the stride (stride = patch_size would
    drop them all the same)."""
    ds = _half_overlapping_chips(tmp_path)
    tile_scenes(ds, ds, TileOptions(patch_size=16))  # stride = patch_size already
    with pytest.warns(SplitWarning):
        split = split_tiles(ds, ds / "split.json", SplitOptions(strategy="scene"))
    (line,) = [w for w in split.warnings if w.startswith("dropped")]
    assert line.endswith("val/test tiles that share ground with tiles of another split (the "
                         "scenes overlap: a scene's tiles share ground with other scenes' "
                         "tiles); use strategy 'block', which keeps shared ground in one split")
    assert "stride" not in line


def _one_tile_scenes(folder, counts: list[dict[int, int]]) -> None:
    """tiles.json of one 16 px tile per scene ``s<i>`` (tile ``s<i>_t``), with these class
    pixel counts (the rest of the 256 pixels unlabelled)."""
    from components.artifacts import SceneInfo, TileRecord

    scenes = [SceneInfo(name=f"s{i}", width=16, height=16, crs=None,
                        transform=(1, 0, 0, 0, 1, 0)) for i in range(len(counts))]
    tiles = [TileRecord(id=f"s{i}_t", scene=f"s{i}", window=(0, 0, 16, 16),
                        transform=(1, 0, 0, 0, 1, 0), valid_fraction=sum(c.values()) / 256,
                        class_counts=c) for i, c in enumerate(counts)]
    TileManifest(patch_size=16, stride=16, bands=1, dtype="uint8", scenes=scenes,
                 tiles=tiles).save(folder / "tiles.json")


def test_rare_class_reaches_every_split(tmp_path):
    _one_tile_scenes(tmp_path, [{0: 200, 1: 56} if i in (2, 5, 7) else {0: 256}
                                for i in range(9)])
    for seed in range(5):
        split = split_tiles(tmp_path, tmp_path / "split.json", SplitOptions(seed=seed))
        for ids in split.splits.values():
            assert any(t in {"s2_t", "s5_t", "s7_t"} for t in ids)
        assert not split.warnings


def test_rare_class_is_spread_by_the_ratios_not_piled_into_train(tmp_path):
    """10 of 40 scenes hold a rare class: val and test get their share of it (2 each at
    0.6/0.2/0.2), not one scene each with the rest in train."""
    rare = {f"s{i}_t" for i in range(0, 40, 4)}
    _one_tile_scenes(tmp_path, [{0: 236, 1: 20} if f"s{i}_t" in rare else {0: 256}
                                for i in range(40)])
    for seed in range(3):
        split = split_tiles(tmp_path, tmp_path / "split.json",
                            SplitOptions(seed=seed, ratios=(0.6, 0.2, 0.2)))
        held = {name: len(rare & set(ids)) for name, ids in split.splits.items()}
        assert held == {"train": 6, "val": 2, "test": 2}
        assert {name: len(ids) for name, ids in split.splits.items()} == \
            {"train": 24, "val": 8, "test": 8}


def _crops_of_one_image(root, folders: int = 8, grid: int = 3, size: int = 32):
    """Each folder: one photo cut into a grid x grid of touching crops, as published
    datasets ship them (no CRS, one PNG per crop). The photos have broad shapes, texture
    and sensor noise."""
    from PIL import Image

    full = grid * size
    yy, xx = np.mgrid[0:full, 0:full] / full
    for k in range(folders):
        rng = np.random.default_rng(k)

        def waves(count, cycles, amplitude, rng=rng):
            return sum(amplitude * np.sin(2 * np.pi * (fx * xx + fy * yy) + rng.uniform(0, 6))
                       for fx, fy in [rng.uniform(-cycles, cycles, 2) for _ in range(count)])
        field = waves(3, 1.5, 1.0)
        texture = waves(6, 8, 0.3)
        photo = np.stack([(field + texture) * 25 + 128 + 10 * c for c in range(3)],
                         axis=-1) + rng.normal(0, 3, (full, full, 3))
        labels = (field > 0).astype(np.uint8) + (field > 1.2)
        for r in range(grid):
            for c in range(grid):
                part = np.s_[r * size:(r + 1) * size, c * size:(c + 1) * size]
                for sub, array in (("images", np.clip(photo[part], 0, 255).astype(np.uint8)),
                                   ("masks", labels[part])):
                    folder = root / sub / f"site{k}"
                    folder.mkdir(parents=True, exist_ok=True)
                    Image.fromarray(array).save(folder / f"crop_{r}_{c}.png")
    return root


@pytest.fixture(scope="module")
def crops(tmp_path_factory):
    root = tmp_path_factory.mktemp("crops")
    _crops_of_one_image(root / "src")
    ds = root / "ds"
    ingest_source(root / "src", ds)
    tile_scenes(ds, ds, TileOptions(patch_size=32))
    return ds


def _folder_splits(ds, split):
    manifest = TileManifest.load(ds / "tiles.json")
    where = _tile_split(split)
    folders = {}
    for t in manifest.tiles:
        source = manifest.scene(t.scene).source
        folders.setdefault(source.rsplit("/", 1)[0], set()).add(where[t.id])
    return folders


def test_touching_crops_are_found_and_the_scene_split_keeps_them_together(crops):
    manifest = TileManifest.load(crops / "tiles.json")
    found = missed = 0
    for scene in manifest.scenes:
        site, r, c = re.fullmatch(r"images/(site\d)/crop_(\d)_(\d)\.png", scene.source).groups()
        r, c = int(r), int(c)
        expected = {f"{site}__crop_{r + dr}_{c + dc}" for dr, dc in
                    ((0, 1), (0, -1), (1, 0), (-1, 0)) if 0 <= r + dr < 3 and 0 <= c + dc < 3}
        assert set(scene.neighbours) <= expected, scene.name  # never a stranger
        found += len(expected & set(scene.neighbours))
        missed += len(expected - set(scene.neighbours))
    assert found / (found + missed) > 0.9, (found, missed)
    with pytest.warns(SplitWarning, match=r"kept 8 groups of 9 scenes \(72 in all\) in one "
                      "split each: each group's scenes look like crops of one image"):
        split = split_tiles(crops, crops / "scene.json", SplitOptions(strategy="scene"))
    folders = _folder_splits(crops, split)
    assert len(folders) == 8 and all(len(s) == 1 for s in folders.values())
    assert all(split.splits.values())
    assert not any("lie in different splits" in w for w in split.warnings)


def test_a_strategy_that_separates_crops_warns_with_advice_that_works(crops, tmp_path):
    with pytest.warns(SplitWarning, match=r"pairs of scenes look like crops of one image .* "
                      r"lie in different splits.*use strategy 'scene' \(the default\).* or "
                      r"strategy 'group' with group_by 'parent' \(8 folders\)"):
        split_tiles(crops, tmp_path / "random.json", SplitOptions(strategy="random"))


@pytest.mark.parametrize("group_by", ["parent", r"(site\d+)/", "groups.csv"])
def test_group_split_keeps_every_original_image_in_one_split(crops, group_by, tmp_path):
    if group_by == "groups.csv":
        manifest = TileManifest.load(crops / "tiles.json")
        rows = ["scene,group"] + [f"{s.source},{s.source.split('/')[1]}"
                                  for s in manifest.scenes]
        (tmp_path / "groups.csv").write_text("\n".join(rows) + "\n")
        group_by = str(tmp_path / "groups.csv")
    split = split_tiles(crops, tmp_path / "split.json",
                        SplitOptions(strategy="group", group_by=group_by))
    folders = _folder_splits(crops, split)
    assert len(folders) == 8 and all(len(s) == 1 for s in folders.values())
    assert all(split.splits.values()) and split.group_by == group_by
    assert not any("crops of one image" in w for w in split.warnings)


def test_group_by_is_checked_when_the_options_are_made(crops, tmp_path):
    with pytest.raises(ValueError, match="needs a capturing group"):
        SplitOptions(strategy="group", group_by=r"site\d+")
    with pytest.raises(DataError, match=r"72 scenes have no group: group_by '\(nowhere\)' "
                       "matches none of images/site0/crop_0_0.png"):
        split_tiles(crops, tmp_path / "s.json",
                    SplitOptions(strategy="group", group_by="(nowhere)"))


def test_overlap_drops_use_the_in_scene_part_of_edge_tiles(tmp_path):
    # Two 40 px scenes side by side: 32 px tiles at column 32 are padded past the scene
    # edge, where the padded square would reach into the next scene; the real pixels don't.
    src = tmp_path / "chips"
    for i in range(2):
        transform = rasterio.transform.from_origin(600000.0 + 80.0 * i, 3000000.0, 2.0, 2.0)
        for kind, data in (("image", make_image(40, seed=i)),
                           ("mask", make_labels(40, (0, 1)))):
            write_array(src / f"c{i}_{kind}.tif", data, UTM, transform)
    ds = tmp_path / "ds"
    ingest_source(src, ds)
    tile_scenes(ds, ds, TileOptions(patch_size=32, min_valid_fraction=0.0))
    split = split_tiles(ds, ds / "split.json", SplitOptions(strategy="scene",
                                                            ratios=(0.5, 0.5, 0.0)))
    assert not any("dropped" in w for w in split.warnings)
    assert len(split.splits["train"]) == 4 and len(split.splits["val"]) == 4


def test_classes_every_unit_holds_leave_the_tile_ratios_alone(tmp_path):
    """No class is missing from any scene: the split keeps to the tile ratios, whatever the
    scenes' pixel shares (stratifying on a class every unit has would skew them)."""
    import numpy as np

    rng = np.random.default_rng(0)
    counts = []
    for _ in range(20):
        labelled = int(rng.integers(20, 256))
        water = int(rng.integers(1, labelled))
        counts.append({0: labelled - water, 1: water})
    _one_tile_scenes(tmp_path, counts)
    for seed in range(4):
        split = split_tiles(tmp_path, tmp_path / "split.json",
                            SplitOptions(seed=seed, ratios=(0.6, 0.2, 0.2)))
        assert {name: len(ids) for name, ids in split.splits.items()} == \
            {"train": 12, "val": 4, "test": 4}
