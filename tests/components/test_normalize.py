"""Normalize: statistics from train tiles only, ignored pixels excluded."""

from __future__ import annotations

import numpy as np
import pytest

from components.artifacts import NormStats, SplitManifest
from components.dataset_paths import read_tile
from components.ingest import ingest_source
from components.normalize import fit_normalization
from components.split import SplitOptions, split_tiles
from components.tile import TileOptions, tile_scenes


def test_stats_come_from_valid_train_pixels_only(sample_source, tmp_path):
    ds = tmp_path / "ds"
    ingest_source(sample_source, ds)
    tile_scenes(ds, ds, TileOptions(patch_size=32, min_valid_fraction=0.1))
    split = split_tiles(ds, ds / "split.json", SplitOptions(strategy="scene"))
    stats = fit_normalization(ds, ds / "split.json", ds / "stats.json")
    pixels = {name: [] for name in split.splits}
    for name, ids in split.splits.items():
        for tile_id in ids:
            image, mask = read_tile(ds / "tiles", tile_id)
            pixels[name].append(image[mask != 255].astype(np.float64))
    train = np.concatenate(pixels["train"])
    assert stats.pixel_count == len(train) and stats.tile_count == len(split.splits["train"])
    np.testing.assert_allclose(stats.mean, train.mean(axis=0), rtol=1e-9)
    np.testing.assert_allclose(stats.std, train.std(axis=0), rtol=1e-9)
    assert stats.bands[3].min == pytest.approx(train[:, 3].min())
    assert stats.bands[0].percentiles["50"] == pytest.approx(np.median(train[:, 0]), rel=0.02)
    everything = np.concatenate([p for v in pixels.values() for p in v])
    assert not np.allclose(stats.mean, everything.mean(axis=0), rtol=1e-6)
    assert -9999.0 not in train  # nodata border excluded
    assert NormStats.load(ds / "stats.json") == stats


def test_empty_train_split_is_an_error(sample_source, tmp_path):
    ds = tmp_path / "ds"
    ingest_source(sample_source, ds)
    tile_scenes(ds, ds, TileOptions(patch_size=32))
    SplitManifest(strategy="scene", seed=0, ratios=(0.7, 0.15, 0.15),
                  splits={"train": [], "val": [], "test": []}).save(ds / "split.json")
    with pytest.raises(ValueError, match="train split is empty"):
        fit_normalization(ds, ds / "split.json", ds / "stats.json")
