"""Which native pixels scene-level evaluation scores: tile windows on a resampled grid back
on the scene's own grid, and the split's pixels of a scene shared between splits."""

import shutil

import numpy as np

from components.dataset_paths import PreparedDataset
from components.split_regions import native_rects, region_mask, split_scenes


def test_tile_windows_map_to_the_native_pixels_whose_centres_they_hold():
    # Tiles cut at scale 0.5: a 16 px tile at column 48 of a 64-wide grid is native 96..128.
    rects = native_rects([(48, 0, 16, 16), (56, 8, 16, 16)], tiled=(16, 64), native=(32, 128))
    assert rects.tolist() == [[0, 32, 96, 128], [16, 32, 112, 128]]  # clipped to the scene
    # A non-integer factor: 3 tiled pixels per 4 native; pixel j is in [a, b) by its centre.
    (rect,) = native_rects([(3, 0, 3, 3)], tiled=(6, 6), native=(8, 8))
    centres = (np.arange(8) + 0.5) * 6 / 8
    inside = np.flatnonzero((centres >= 3) & (centres < 6))
    assert (rect[2], rect[3]) == (inside[0], inside[-1] + 1)


def test_region_mask_keeps_split_pixels_outside_other_splits():
    include = np.array([[0, 4, 0, 4]])
    exclude = np.array([[2, 6, 2, 6]])  # an overlapping tile of another split
    keep = region_mask(include, exclude, row=1, col=1, height=4, width=4)
    expected = np.zeros((4, 4), bool)
    expected[:3, :3] = True
    expected[1:, 1:] = False
    assert (keep == expected).all()


def test_whole_test_scenes_and_shared_scenes(tiny_dataset):
    parts = split_scenes(tiny_dataset, "test")
    # The tiny dataset's random split: each scene's last tile is test, the rest is not.
    assert [p.name for p in parts] == ["scene0", "scene1", "scene2"]
    assert all(p.include == [(96, 0, 32, 32)] and len(p.exclude) == 3 for p in parts)


def test_tiles_the_split_left_out_are_never_scored(tiny_dataset, tmp_path):
    # drop_overlaps leaves val/test tiles that share ground with a train tile in no split:
    # a scene whose remaining tiles are all test is still not scored whole.
    root = tmp_path / "dataset"
    shutil.copytree(tiny_dataset.root, root)
    dataset = PreparedDataset(root)
    manifest = dataset.split_manifest
    scene0 = {t.id for t in dataset.tile_manifest.tiles if t.scene == "scene0"}
    dropped = {name: [t for t in ids if t not in scene0 or name == "test"]
               for name, ids in manifest.splits.items()}
    manifest.model_copy(update={"splits": dropped}).save(dataset.split)
    part = next(p for p in split_scenes(PreparedDataset(root), "test") if p.name == "scene0")
    assert part.include == [(96, 0, 32, 32)] and len(part.exclude) == 3
