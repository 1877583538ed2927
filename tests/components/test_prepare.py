"""prepare: the four steps into one dataset folder that appears only when complete."""

from __future__ import annotations

from pathlib import Path

import pytest
import rasterio

from components.artifacts import NormStats, SplitManifest, TileManifest
from components.dataset_paths import DatasetPaths, PreparedDataset, tile_paths
from components.ingest_options import IngestOptions
from components.prepare import PrepareOptions, prepare_dataset
from components.raster import DataError
from components.split import SplitOptions, split_for_training
from components.split_advice import pipeline_split_problem
from components.tile import TileOptions
from tests.components.conftest import make_image, make_labels, write_pair


def _assert_leak_free(root, unit):
    manifest = TileManifest.load(DatasetPaths(root).tiles_manifest)
    split = SplitManifest.load(DatasetPaths(root).split)
    where = {t: name for name, ids in split.splits.items() for t in ids}
    units = {}
    for t in manifest.tiles:
        units.setdefault(unit(t), set()).add(where[t.id])
    assert all(len(s) == 1 for s in units.values())
    return manifest, split


def test_prepare_builds_a_complete_dataset(sample_source, tmp_path):
    out = tmp_path / "dataset"
    summary = prepare_dataset(sample_source, out, PrepareOptions(tile=TileOptions(patch_size=32)))
    paths = DatasetPaths(out)
    for path in (paths.classes, paths.tiles_manifest, paths.split, paths.stats):
        assert path.exists()
    manifest, split = _assert_leak_free(out, lambda t: t.scene)
    assert sum(s.tiles for s in summary.splits.values()) == len(manifest.tiles)
    assert summary.splits["train"].tiles == NormStats.load(paths.stats).tile_count
    assert summary.classes[4] == "building"
    assert sum(summary.splits["train"].class_shares.values()) == pytest.approx(1.0)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_failed_prepare_leaves_previous_dataset_and_no_partial_one(sample_source, tmp_path):
    out = tmp_path / "dataset"
    prepare_dataset(sample_source, out, PrepareOptions(tile=TileOptions(patch_size=32)))
    before = (out / "tiles.json").read_bytes()
    (sample_source / "scene01_mask.tif").write_bytes(b"broken")
    with pytest.raises(DataError, match="scene01_mask.tif: cannot read"):
        prepare_dataset(sample_source, out, PrepareOptions(tile=TileOptions(patch_size=16)))
    assert (out / "tiles.json").read_bytes() == before
    fresh = tmp_path / "fresh"
    with pytest.raises(DataError):
        prepare_dataset(sample_source, fresh)
    assert not fresh.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dataset", "sample"]


def test_prepare_tea_plantations_keeps_crs_and_blocks(tea_plantations, tmp_path):
    out = tmp_path / "tea"
    options = PrepareOptions(tile=TileOptions(patch_size=128),
                             split=SplitOptions(strategy="block", block_size=256, seed=0))
    summary = prepare_dataset(tea_plantations, out, options)
    manifest = TileManifest.load(out / "tiles.json")
    split = SplitManifest.load(out / "split.json")
    # The chips overlap on the ground (256 px chips every 128 px), so leakage is judged by
    # world footprints: no two tiles in different splits may share ground.
    where = {t: name for name, ids in split.splits.items() for t in ids}
    for a in manifest.tiles:
        for b in manifest.tiles:
            if where[a.id] != where[b.id]:
                dx = abs(a.transform[2] - b.transform[2])
                dy = abs(a.transform[5] - b.transform[5])
                assert dx >= 256.0 or dy >= 256.0, (a.id, b.id)
    # 11 chips x 4 tiles, but the overlapping chips hold the same ground with the same
    # pixels: each footprint is kept once (one pair differs by a labelled pixel: kept).
    assert len(manifest.tiles) == 11 * 4 - 24 and manifest.duplicates_dropped == 24
    assert len({t.transform for t in manifest.tiles}) == 19 and all(split.splits.values())
    assert {s.crs for s in manifest.scenes} == {"EPSG:32650"}
    assert summary.bands == 4 and manifest.dtype == "int16"
    tile = manifest.tiles[5]
    with rasterio.open(tile_paths(out / "tiles", tile.id)[0]) as src:
        assert src.crs.to_epsg() == 32650 and tuple(src.transform)[:6] == tile.transform
    source = tea_plantations / "images" / f"{tile.scene}.tif"
    with rasterio.open(source) as src:
        col, row = tile.window[:2]
        assert tuple(src.transform @ (col, row)) == pytest.approx(tile.transform[2::3])


def test_default_block_size_shrinks_until_every_split_gets_blocks(tea_plantations, tmp_path):
    # 4-patch blocks cut this small area into 2 blocks, too few for train/val/test.
    out = tmp_path / "tea"
    options = PrepareOptions(tile=TileOptions(patch_size=128),
                             split=SplitOptions(strategy="block", seed=0))
    prepare_dataset(tea_plantations, out, options)
    split = SplitManifest.load(out / "split.json")
    assert split.block_size == 128
    assert all(split.splits.values()), {k: len(v) for k, v in split.splits.items()}


def test_whole_chip_tiles_of_overlapping_chips_are_refused_with_advice(tea_plantations,
                                                                       tmp_path):
    # One 256 px tile per chip, chips every 128 px: every tile shares ground with tiles of
    # other blocks, whatever the blocks. The error says which setting lines them up.
    options = PrepareOptions(split=SplitOptions(strategy="block", seed=0))
    with pytest.raises(DataError, match="splits 'val' and 'test' are empty: every tile it "
                       r"would hold .* other blocks .* edges: patch_size 128 \(the scenes "
                       r"lie on a 128 px grid\) lines"):
        prepare_dataset(tea_plantations, tmp_path / "tea", options)
    assert not (tmp_path / "tea").exists()


def test_the_example_config_prepares_a_small_survey_after_the_one_edit_it_names(
        tea_plantations, tmp_path):
    """example.yaml needed three edits on the 11 tea chips (block 1024 made one block, stride
    192 straddled chips 128 px apart, patch 256). Now the block size is chosen from the
    survey's extent and the stride is the patch: only the patch size, which the error
    names, is left; the summary says which block size was chosen."""
    import yaml

    from components.prepare import PrepareOptions

    example = Path(__file__).resolve().parents[2] / "pipelines" / "configs" / "example.yaml"
    data = yaml.safe_load(example.read_text())["data"]
    with pytest.raises(DataError, match=r"patch_size 128 \(the scenes lie on a 128 px grid"):
        prepare_dataset(tea_plantations, tmp_path / "a", PrepareOptions.model_validate(data))
    data["tile"]["patch_size"] = 128
    summary = prepare_dataset(tea_plantations, tmp_path / "b", PrepareOptions.model_validate(data))
    assert summary.layout == "128 px tiles, stride 128; block split, 128 px blocks"
    assert SplitManifest.load(tmp_path / "b" / "split.json").block_size == 128
    assert all(split.tiles for split in summary.splits.values())


def test_prepare_refuses_to_replace_a_folder_that_is_not_a_dataset(sample_source, tmp_path):
    precious = tmp_path / "documents"
    precious.mkdir()
    (precious / "thesis.txt").write_text("keep me")
    with pytest.raises(DataError, match="documents: exists, is not empty and is not a segpipe"):
        prepare_dataset(sample_source, precious)
    assert (precious / "thesis.txt").read_text() == "keep me"
    with pytest.raises(DataError, match="must lie outside the source"):
        prepare_dataset(sample_source, sample_source / "dataset")


def test_prepare_plain_png_scenes_with_a_palette(tmp_path):
    import json

    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    colors = np.array([(0, 0, 0), (255, 0, 0), (0, 0, 255)], np.uint8)
    for sub in ("images", "masks"):
        (tmp_path / "src" / sub).mkdir(parents=True)
    for i in range(3):
        ids = rng.integers(0, 3, (4, 4)).repeat(12, axis=0).repeat(12, axis=1)
        Image.fromarray(rng.integers(0, 255, (48, 48, 3)).astype(np.uint8)).save(
            tmp_path / "src" / "images" / f"photo{i}.png")
        Image.fromarray(colors[ids]).save(tmp_path / "src" / "masks" / f"photo{i}.png")
    (tmp_path / "src" / "classes.json").write_text(json.dumps({"classes": [
        {"title": "other", "color": "#000000"}, {"title": "car", "color": "#FF0000"},
        {"title": "water", "color": "#0000FF"}]}))
    options = PrepareOptions(tile=TileOptions(patch_size=16),
                             split=SplitOptions(strategy="block", block_size=32))
    summary = prepare_dataset(tmp_path / "src", tmp_path / "ds", options)
    assert summary.classes == ["other", "car", "water"] and summary.bands == 3
    manifest = TileManifest.load(tmp_path / "ds" / "tiles.json")
    assert {s.crs for s in manifest.scenes} == {None} and manifest.dtype == "uint8"
    _assert_leak_free(tmp_path / "ds", lambda t: (t.scene, (t.window[0] + 8) // 32,
                                                  (t.window[1] + 8) // 32))


def test_tea_plantations_every_labelled_pixel_lands_in_a_tile(tea_plantations, tmp_path):
    # 100 px tiles on 256 px chips: the corner tiles hold 56 x 56 pixels of the scene.
    out = tmp_path / "tea"
    prepare_dataset(tea_plantations, out, PrepareOptions(
        tile=TileOptions(patch_size=100),
        split=SplitOptions(strategy="block", block_size=200, seed=0)))
    manifest = TileManifest.load(out / "tiles.json")
    assert len(manifest.tiles) == 11 * 9
    assert sum(sum(t.class_counts.values()) for t in manifest.tiles) == 11 * 256 * 256
    assert {s.source for s in manifest.scenes} == {
        f"images/{p.name}" for p in (tea_plantations / "images").glob("*.tif")}


def test_tea_plantations_at_a_target_gsd(tea_plantations, tmp_path):
    out = tmp_path / "tea4m"
    prepare_dataset(tea_plantations, out, PrepareOptions(
        tile=TileOptions(patch_size=64, target_gsd=4.0),
        split=SplitOptions(strategy="block", block_size=64, seed=0)))
    manifest = TileManifest.load(out / "tiles.json")
    assert manifest.target_gsd == 4.0 and {s.width for s in manifest.scenes} == {128}
    assert {t.transform[0] for t in manifest.tiles} == {4.0}


def _background_only_source(tmp_path: Path) -> Path:
    """Three 32 px scenes side by side whose masks hold value 0 alone (no tea in them)."""
    src = tmp_path / "negatives"
    for i in range(3):
        write_pair(src, f"s{i}", make_image(seed=i), make_labels(values=(0,)),
                   origin=(600000.0 + 64.0 * i, 3000000.0))
    return src


def test_labels_of_one_class_are_said_by_prepare_and_refused_for_training(tmp_path):
    """A dataset whose labels hold only background can be scored as negatives (prepare
    warns), but no model can learn from it: the pipeline's split step refuses it in one
    line, before any trial fails on it."""
    src = _background_only_source(tmp_path)
    options = PrepareOptions(tile=TileOptions(patch_size=16), split=SplitOptions(strategy="scene"))
    summary = prepare_dataset(src, tmp_path / "ds", options)
    assert summary.classes == ["background"]
    (line,) = [w for w in summary.warnings if "one class" in w]
    assert line.startswith("the labels hold one class (background): nothing to segment "
                           "(all 3,072 labelled pixels of the 12 tiles are background)")
    assert "segpipe run refuses" in line and "segpipe evaluate" in line
    with pytest.raises(DataError) as refused:
        split_for_training(tmp_path / "ds", tmp_path / "split.json", options.split)
    assert str(refused.value).startswith(
        "the labels hold one class (background): nothing to segment (all 3,072 labelled "
        "pixels of the 12 tiles are background); segpipe run trains a model to tell classes "
        "apart")
    assert "\n" not in str(refused.value)
    # Decided from the split's tiles, not its warning line: a split written before the line
    # existed (or after it is reworded) is refused alike.
    split = SplitManifest.load(tmp_path / "split.json").model_copy(update={"warnings": []})
    dataset = PreparedDataset(tmp_path / "ds")
    assert pipeline_split_problem(split, dataset.tile_manifest,
                                  dataset.class_map.names) == str(refused.value)
    # A class list naming a second class the labels lack: the same, with the class named.
    listed = options.model_copy(update={"ingest": IngestOptions(
        class_values={0: 0, 1: 1}, class_names=["background", "tea"])})
    summary = prepare_dataset(src, tmp_path / "listed", listed)
    assert summary.classes == ["background", "tea"]
    assert any(w.startswith("the labels hold one class (background): nothing to segment "
                            "(all 3,072 labelled pixels of the 12 tiles are background; tea "
                            "has none)") for w in summary.warnings), summary.warnings
    # Tea in one scene: two classes, one that some splits lack, which is said once, as such.
    write_pair(src, "s0", make_image(), make_labels(values=(0, 1)))
    summary = prepare_dataset(src, tmp_path / "two", options)
    assert any("is missing from split" in w for w in summary.warnings)
    assert not any("one class" in w for w in summary.warnings)
    split_for_training(tmp_path / "two", tmp_path / "split.json", options.split)
