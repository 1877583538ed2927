"""Normalize: per-band statistics fitted on the train split only.

Mean and std are exact, accumulated tile by tile in float64 (Chan's parallel update, which
stays accurate where a sum-of-squares would cancel). Percentiles come from a bounded,
seeded uniform sample of valid pixels (the ``sample_size`` smallest random keys), so memory
stays flat however many tiles there are. Ignored pixels (mask == ignore_index, which covers
nodata and NaN) are excluded."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from components.artifacts import BandStats, ClassMap, NormStats, SplitManifest, TileManifest
from components.dataset_paths import DatasetPaths, read_tile
from components.raster import DataError, ProgressCallback, gdal_env

PERCENTILES = (1, 2, 5, 50, 95, 98, 99)


class _Accumulator:
    def __init__(self, bands: int, sample_size: int, seed: int) -> None:
        self.count = 0
        self.mean = np.zeros(bands)
        self.m2 = np.zeros(bands)
        self.min = np.full(bands, np.inf)
        self.max = np.full(bands, -np.inf)
        self.sample_size = sample_size
        self.rng = np.random.default_rng(seed)
        self.sample = np.empty((0, bands))
        self.keys = np.empty(0)

    def add(self, pixels: np.ndarray) -> None:
        """pixels: (N, bands) float64."""
        n = len(pixels)
        if n == 0:
            return
        mean = pixels.mean(axis=0)
        m2 = ((pixels - mean) ** 2).sum(axis=0)
        total = self.count + n
        delta = mean - self.mean
        self.mean = self.mean + delta * n / total
        self.m2 = self.m2 + m2 + delta ** 2 * self.count * n / total
        self.count = total
        self.min = np.minimum(self.min, pixels.min(axis=0))
        self.max = np.maximum(self.max, pixels.max(axis=0))
        keys = np.concatenate([self.keys, self.rng.random(n)])
        sample = np.concatenate([self.sample, pixels])
        if len(keys) > self.sample_size:
            keep = np.argpartition(keys, self.sample_size)[: self.sample_size]
            keys, sample = keys[keep], sample[keep]
        self.keys, self.sample = keys, sample


def fit_normalization(dataset_dir: Path, split_path: Path, out_path: Path,
                      sample_size: int = 200_000, seed: int = 0,
                      progress: ProgressCallback | None = None) -> NormStats:
    """Fit per-band mean/std/min/max/percentiles on the train tiles; write ``out_path``."""
    paths = DatasetPaths(dataset_dir)
    manifest = TileManifest.load(paths.tiles_manifest)
    ignore = ClassMap.load(paths.classes).ignore_index
    train = SplitManifest.load(split_path).splits.get("train", [])
    if not train:
        raise DataError(f"{split_path}: the train split is empty; nothing to fit statistics on")
    acc = _Accumulator(manifest.bands, sample_size, seed)
    with gdal_env():
        for i, tile_id in enumerate(train):
            image, mask = read_tile(paths.tiles_dir, tile_id)
            pixels = image.reshape(-1, image.shape[-1]).astype(np.float64)
            valid = mask.ravel() != ignore
            valid &= ~np.isnan(pixels).any(axis=1)
            acc.add(pixels[valid])
            if progress:
                progress("normalize", i + 1, len(train))
    if acc.count == 0:
        raise DataError(f"{split_path}: the train tiles hold no valid (non-ignored) pixels")
    std = np.sqrt(acc.m2 / acc.count)
    bands = [BandStats(mean=float(acc.mean[b]), std=float(std[b]), min=float(acc.min[b]),
                       max=float(acc.max[b]),
                       percentiles={str(p): float(v) for p, v in zip(
                           PERCENTILES, np.percentile(acc.sample[:, b], PERCENTILES),
                           strict=True)})
             for b in range(manifest.bands)]
    stats = NormStats(bands=bands, nodata=manifest.nodata, pixel_count=int(acc.count),
                      fitted_on="train", tile_count=len(train))
    stats.save(out_path)
    return stats
