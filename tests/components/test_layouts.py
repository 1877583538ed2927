"""Layouts of published datasets: folders of any name, odd names, suffixed stems, and the
train/val/test split a dataset already gives (folders or list files)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from components.artifacts import SceneIndex, SplitManifest, TileManifest
from components.ingest import ingest_source
from components.ingest_options import IngestOptions
from components.prepare import PrepareOptions, prepare_dataset
from components.raster import DataError
from components.split import SplitOptions, split_tiles
from components.tile import TileOptions, tile_scenes
from tests.components.test_masks import class_ids, ingested_ids, save_photo


def save_ids(path, seed):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(class_ids(seed=seed) * 10).save(path)


@pytest.mark.parametrize(("image_dir", "mask_dir", "image_name", "mask_name"), [
    ("train", "label", "0001.jpg", "0001.png"),
    ("img", "ann", "a b (1).png", "a b (1).png"),
    ("images/2017", "masks/2017", "sub/x.tif", "sub/x.png"),
    ("Tiles Ünïcode", "GT", "z_sat.jpg", "z_mask.png"),
])
def test_image_and_mask_folders_of_any_name(tmp_path, image_dir, mask_dir, image_name,
                                            mask_name):
    src = tmp_path / "src"
    save_photo(src / image_dir / image_name, 0)
    save_ids(src / mask_dir / mask_name, 0)
    save_photo(src / "other" / "ignored.png", 9)  # not in image_dir: not a scene
    out = tmp_path / "out"
    classes = ingest_source(src, out, IngestOptions(image_dir=image_dir, mask_dir=mask_dir))
    index = SceneIndex.load(out / "scenes.json")
    assert [s.source for s in index.scenes] == [f"{image_dir}/{image_name}"]
    assert index.scenes[0].label == f"{mask_dir}/{mask_name}"
    assert classes.names == ["background", "class_10", "class_20", "class_30"]
    np.testing.assert_array_equal(ingested_ids(out, index.scenes[0].name), class_ids(seed=0))


def test_a_missing_named_folder_is_an_error_listing_what_is_there(tmp_path):
    save_photo(tmp_path / "src" / "train" / "a.png", 0)
    with pytest.raises(DataError, match=r"mask_dir 'labels': no such folder in the source "
                       r"\(its folders: train\)"):
        ingest_source(tmp_path / "src", tmp_path / "out",
                      IngestOptions(image_dir="train", mask_dir="labels"))
    with pytest.raises(ValueError, match="image_dir must be a path inside the source"):
        IngestOptions(image_dir="../elsewhere")


def _given_dataset(root, lists: bool):
    """Six scenes: in train/val/test folders, or in one folder with list files."""
    for i, split in enumerate(["train", "train", "train", "train", "val", "test"]):
        folder = root / (split if not lists else "all")
        save_photo(folder / "images" / f"s{i}.png", i)
        save_ids(folder / "masks" / f"s{i}.png", i)
        if lists:
            with open(root / "all" / f"{split}.txt", "a") as f:
                f.write(f"s{i}\n")
    return root


@pytest.mark.parametrize("lists", [False, True], ids=["folders", "list-files"])
def test_given_split_is_used_as_is(tmp_path, lists):
    src = _given_dataset(tmp_path / "src", lists)
    summary = prepare_dataset(src, tmp_path / "ds", PrepareOptions(
        tile=TileOptions(patch_size=16), split=SplitOptions(strategy="given")))
    manifest = TileManifest.load(tmp_path / "ds" / "tiles.json")
    by_scene = {s.name: s for s in manifest.scenes}
    assert {s.given_split for s in manifest.scenes} == {"train", "val", "test"}
    split = SplitManifest.load(tmp_path / "ds" / "split.json")
    for name, ids in split.splits.items():
        for tile_id in ids:
            scene = next(t.scene for t in manifest.tiles if t.id == tile_id)
            assert by_scene[scene].given_split == name
    assert summary.splits["val"].scenes == 1 and summary.splits["test"].scenes == 1


def test_given_split_without_a_split_for_every_scene_is_an_error(tmp_path):
    src = tmp_path / "src"
    for i in range(3):
        save_photo(src / "images" / f"s{i}.png", i)
        save_ids(src / "masks" / f"s{i}.png", i)
    ds = tmp_path / "ds"
    ingest_source(src, ds)
    tile_scenes(ds, ds, TileOptions(patch_size=16))
    with pytest.raises(DataError, match="strategy 'given': 3 of 3 scenes have no split from "
                       "the dataset.*images/s0.png"):
        split_tiles(ds, ds / "split.json", SplitOptions(strategy="given"))


def test_a_scene_listed_in_two_splits_gets_none_and_only_given_names_it(tmp_path):
    src = _given_dataset(tmp_path / "src", lists=True)
    with open(src / "all" / "val.txt", "a") as f:
        f.write("s0\n")  # also in train.txt
    ds = tmp_path / "ds"
    ingest_source(src, ds)  # the lists do not hold up an ingest that does not use them
    given = {s.name: s.given_split for s in SceneIndex.load(ds / "scenes.json").scenes}
    assert given["s0"] is None and given["s1"] == "train" and given["s4"] == "val"
    tile_scenes(ds, ds, TileOptions(patch_size=16))
    with pytest.raises(DataError, match="1 of 6 scenes has no split from the dataset .*two "
                       "lists do.*e.g. images/s0.png"):  # relative to the one folder "all"
        split_tiles(ds, ds / "split.json", SplitOptions(strategy="given"))


def test_split_lists_that_name_tiles_of_the_scenes_are_described_in_the_given_error(tmp_path):
    """LandCover.ai's train/val/test.txt name the tiles its split.py cuts, not the
    orthophotos in images/: the error says what the lists hold against the scenes."""
    src = tmp_path / "src"
    for i, stem in enumerate(["M-33-20-D-c-4-2", "N-33-60-D-c-4-2"]):
        save_photo(src / "images" / f"{stem}.tif", i)
        save_ids(src / "masks" / f"{stem}.tif", i)
    for split, ks in [("train", [0, 1]), ("val", [2]), ("test", [3])]:
        (src / f"{split}.txt").write_text("".join(f"M-33-20-D-c-4-2_{k}\n" for k in ks))
    ds = tmp_path / "ds"
    ingest_source(src, ds)
    tile_scenes(ds, ds, TileOptions(patch_size=16))
    with pytest.raises(DataError, match=r"2 of 2 scenes have no split from the dataset .*; "
                       r"split lists found in the top folder \(train.txt, val.txt, test.txt: "
                       r"4 entries\) name 0 of 2 scenes: entries such as M-33-20-D-c-4-2_0, "
                       r"M-33-20-D-c-4-2_1 name no scene; scenes left out have stems such as "
                       r"M-33-20-D-c-4-2, N-33-60-D-c-4-2 \(the entries begin with scene "
                       r"stems: they name tiles cut from the scenes"):
        split_tiles(ds, ds / "split.json", SplitOptions(strategy="given"))


def _train_and_val_only(root):
    """LoveDA's labelled splits: Train and Val folders (its Test has no labels)."""
    for i in range(8):
        split = "Val" if i >= 6 else "Train"
        save_photo(root / split / "images_png" / f"{i}.png", i)
        save_ids(root / split / "masks_png" / f"{i}.png", i)
    return root


def test_given_without_a_test_advises_given_names_which_scores_on_val_and_carves_val(
        tmp_path):
    ds = tmp_path / "ds"
    ingest_source(_train_and_val_only(tmp_path / "src"), ds)
    tile_scenes(ds, ds, TileOptions(patch_size=16))
    with pytest.raises(DataError, match=r"split 'test' is empty: the dataset gives no scene "
                       r"to it. Use given_names .*\{val: test\}.*, a strategy that splits by "
                       r"ratios .*, or allow_empty_splits") as err:
        split_tiles(ds, ds / "split.json", SplitOptions(strategy="given"))
    assert "other ratios" not in str(err.value)
    split = split_tiles(ds, ds / "split.json", SplitOptions(
        strategy="given", given_names={"val": "test"}, ratios=(0.5, 0.5, 0.0)))
    manifest = TileManifest.load(ds / "tiles.json")
    given = {s.name: s.given_split for s in manifest.scenes}
    scenes = {name: {next(t.scene for t in manifest.tiles if t.id == i) for i in ids}
              for name, ids in split.splits.items()}
    assert scenes["test"] == {"6", "7"}  # the dataset's val
    assert len(scenes["val"]) == 3 and len(scenes["train"]) == 3  # its train, by the ratios
    assert {given[s] for s in scenes["train"] | scenes["val"]} == {"train"}


def test_given_names_apply_to_the_given_strategy_only():
    with pytest.raises(ValueError, match="given_names applies to strategy 'given' only"):
        SplitOptions(strategy="scene", given_names={"val": "test"})
    with pytest.raises(ValueError, match="leaves no split of the dataset's for train"):
        SplitOptions(strategy="given", given_names={"train": "val"})


def test_a_carved_split_with_ratio_0_is_said_to_have_ratio_0(tmp_path):
    ds = tmp_path / "ds"
    ingest_source(_train_and_val_only(tmp_path / "src"), ds)
    tile_scenes(ds, ds, TileOptions(patch_size=16))
    with pytest.raises(DataError, match=r"split 'val' is empty: ratio 0 carves nothing off "
                       r"the given train for it\. Use other ratios"):
        split_tiles(ds, ds / "split.json", SplitOptions(
            strategy="given", given_names={"val": "test"}, ratios=(0.85, 0.0, 0.15)))


def test_splits_a_dataset_lacks_are_advised_to_be_carved_from_its_train(tmp_path):
    """DeepGlobe gives a train split only: mapping its missing val and test to train carves
    both from it, where other ratios would fill nothing."""
    src = tmp_path / "src"
    for i in range(6):
        save_photo(src / "train" / "images" / f"{i}.png", i)
        save_ids(src / "train" / "masks" / f"{i}.png", i)
    ds = tmp_path / "ds"
    ingest_source(src, ds)
    tile_scenes(ds, ds, TileOptions(patch_size=16))
    with pytest.raises(DataError, match=r"splits 'val' and 'test' are empty: the dataset "
                       r"gives no scene to them\."):
        split_tiles(ds, ds / "split.json", SplitOptions(strategy="given"))
    with pytest.raises(DataError, match=r"split 'test' is empty: the dataset gives no scene "
                       r"to it under given_names\. Use given_names mapping the splits the "
                       r"dataset lacks to train \(--given-names val=train --given-names "
                       r"test=train\)") as err:
        split_tiles(ds, ds / "split.json", SplitOptions(strategy="given",
                                                        given_names={"val": "test"}))
    assert "other ratios" not in str(err.value)
    split = split_tiles(ds, ds / "split.json", SplitOptions(
        strategy="given", given_names={"val": "train", "test": "train"},
        ratios=(0.5, 0.25, 0.25)))
    assert all(split.splits[name] for name in ("train", "val", "test"))
