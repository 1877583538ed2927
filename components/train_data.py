"""tf.data input pipeline over a prepared dataset's tiles.

Tiles are decoded in parallel (rasterio inside ``tf.numpy_function``), normalized with the
train-split statistics through ``serving.pixels.normalize_image`` (the same function serving
uses), cached in memory when the split fits the budget, then shuffled and batched; training
batches are cropped and augmented per sample by ``components.train_augment`` and prefetched.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
import tensorflow as tf

from components.artifacts import ArtifactError, NormStats, SplitManifest
from components.dataset_paths import tile_paths
from components.raster import STEP_DRIVER, DataError
from components.train_augment import BatchAugmenter
from components.train_options import Augment
from components.wording import counted
from serving.pixels import normalize_image

__all__ = ["Augment", "TileSource", "balanced_class_weights", "band_z_range",
           "class_frequencies", "load_split_arrays", "make_dataset", "make_source",
           "read_normalized", "split_tile_ids"]


@dataclass(frozen=True)
class TileSource:
    """The tiles of one split and how to turn them into model inputs."""

    tiles_dir: Path
    tile_ids: list[str]
    mean: list[float]
    std: list[float]
    nodata: float | None
    patch_size: int
    in_channels: int
    z_low: list[float]  # each band's 2nd / 98th train percentile as a z-score (gamma range)
    z_high: list[float]


def split_tile_ids(split_path: Path, split: str) -> list[str]:
    manifest = SplitManifest.load(split_path)
    ids = manifest.splits.get(split, [])
    if not ids:
        raise DataError(f"{split_path}: split {split!r} has no tiles")
    return list(ids)


def make_source(tiles_dir: Path, split_path: Path, split: str, stats: NormStats,
                patch_size: int) -> TileSource:
    ids = split_tile_ids(split_path, split)
    for tile_id in ids[:1] + ids[-1:]:
        for path in tile_paths(tiles_dir, tile_id):
            if not path.is_file():
                raise ArtifactError(f"{path}: tile named in {split_path} is missing")
    z_low, z_high = band_z_range(stats)
    return TileSource(tiles_dir=tiles_dir, tile_ids=ids, mean=stats.mean, std=stats.std,
                      nodata=stats.nodata, patch_size=patch_size, in_channels=len(stats.bands),
                      z_low=z_low, z_high=z_high)


def band_z_range(stats: NormStats) -> tuple[list[float], list[float]]:
    """Each band's 2nd and 98th percentile (min and max when absent) in z-score units, never
    narrower than 0.1 so a constant band does not divide by zero."""
    low, high = [], []
    for band in stats.bands:
        std = max(band.std, 1e-6)
        lo = (band.percentiles.get("2", band.min) - band.mean) / std
        hi = (band.percentiles.get("98", band.max) - band.mean) / std
        low.append(float(lo))
        high.append(float(max(hi, lo + 0.1)))
    return low, high


def read_normalized(source: TileSource, image_path: str, mask_path: str
                    ) -> tuple[np.ndarray, np.ndarray]:
    """(H, W, C) float32 z-scores and (H, W) uint8 mask of one tile."""
    with rasterio.open(image_path, driver=STEP_DRIVER) as src:
        image = np.moveaxis(src.read(), 0, -1)
    with rasterio.open(mask_path, driver=STEP_DRIVER) as src:
        mask = src.read(1).astype(np.uint8)
    if image.shape[-1] != source.in_channels:
        raise DataError(f"{image_path}: {counted(image.shape[-1], 'band')}, statistics have "
                        f"{source.in_channels}")
    return normalize_image(image, source.mean, source.std, source.nodata), mask


def load_split_arrays(source: TileSource, limit: int | None = None
                      ) -> tuple[np.ndarray, np.ndarray]:
    """Normalized images (N, H, W, C) and masks (N, H, W) of a split, in manifest order."""
    ids = source.tile_ids[:limit]
    if not ids:
        size, channels = source.patch_size, source.in_channels
        return np.zeros((0, size, size, channels), np.float32), np.zeros((0, size, size), np.uint8)
    pairs = [read_normalized(source, *map(str, tile_paths(source.tiles_dir, i))) for i in ids]
    return np.stack([p[0] for p in pairs]), np.stack([p[1] for p in pairs])


_MAX_CHUNK = 8  # batches augmented per call
_CHUNK_PIXELS = 1 << 23  # at most 8 Mpx (32 MiB per 4-band float32) per call


def make_dataset(source: TileSource, batch_size: int, *, training: bool, augment: Augment = "none",
                 crop_size: int = 0, seed: int = 0, cache_budget_bytes: int = 1 << 30,
                 drop_remainder: bool = False) -> tf.data.Dataset:
    """Batches of (image float32 (B,H,W,C), mask uint8 (B,H,W)) for ``model.fit``.

    Training batches are random ``crop_size`` windows of the tiles (whole tiles when
    ``crop_size`` is 0 or not smaller than the tile), augmented per ``augment``;
    evaluation batches are whole tiles, unaugmented."""
    images = [str(tile_paths(source.tiles_dir, i)[0]) for i in source.tile_ids]
    masks = [str(tile_paths(source.tiles_dir, i)[1]) for i in source.tile_ids]
    size, channels = source.patch_size, source.in_channels

    def load(image_path, mask_path):
        image, mask = tf.numpy_function(
            lambda a, b: read_normalized(source, a.decode(), b.decode()),
            [image_path, mask_path], [tf.float32, tf.uint8], stateful=False)
        image.set_shape((size, size, channels))
        mask.set_shape((size, size))
        return image, mask

    ds = tf.data.Dataset.from_tensor_slices((images, masks))
    ds = ds.map(load, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    split_bytes = len(images) * size * size * (4 * channels + 1)
    if split_bytes <= cache_budget_bytes:
        ds = ds.cache()
    if training:
        ds = ds.shuffle(min(len(images), 2048), seed=seed, reshuffle_each_iteration=True)
    crop = min(crop_size, size) if crop_size else size
    if not (training and (augment != "none" or crop < size)):
        ds = ds.batch(batch_size, drop_remainder=drop_remainder,
                      num_parallel_calls=tf.data.AUTOTUNE)
        return ds.prefetch(tf.data.AUTOTUNE)
    # Augment several batches per call, then split them: the fixed cost of a call (an XLA
    # launch, thread hand-offs that preempt the model's threads) is most of what
    # augmentation costs a small model's step on CPU (benchmarks/training.py: CPU per step
    # +1.7 ms with one batch per call, +0.2 ms with eight).
    chunk = max(1, min(_MAX_CHUNK, _CHUNK_PIXELS // (batch_size * size * size)))
    augmenter = BatchAugmenter(size, crop, channels, augment, source.z_low, source.z_high,
                               seed=seed)
    ds = ds.batch(batch_size * chunk, num_parallel_calls=tf.data.AUTOTUNE)
    ds = ds.map(augmenter, num_parallel_calls=tf.data.AUTOTUNE)
    ds = ds.rebatch(batch_size, drop_remainder=drop_remainder)
    batches = len(images) // batch_size if drop_remainder else -(-len(images) // batch_size)
    ds = ds.apply(tf.data.experimental.assert_cardinality(batches))  # for Keras' progress
    return ds.prefetch(tf.data.AUTOTUNE)


def class_frequencies(class_counts: Sequence[dict[int, int]], num_classes: int) -> np.ndarray:
    total = np.zeros(num_classes, dtype=np.float64)
    for counts in class_counts:
        for cls, n in counts.items():
            if 0 <= int(cls) < num_classes:
                total[int(cls)] += n
    return total


def balanced_class_weights(frequencies: np.ndarray, max_weight: float) -> list[float]:
    """Median-frequency balancing (Eigen & Fergus, 2015), capped at ``max_weight``; absent
    classes get weight 1. Uncapped, a colour seen on a few hundred pixels of millions gets
    a weight in the thousands, so a handful of (often mislabelled) pixels dominate the loss
    and its gradient noise; the cap keeps rare classes up-weighted but bounded."""
    if max_weight < 1:
        raise ValueError(f"max_weight must be >= 1, got {max_weight}")
    present = frequencies > 0
    if not present.any():
        return [1.0] * len(frequencies)
    freq = frequencies / frequencies.sum()
    median = np.median(freq[present])
    weights = np.where(present, median / np.where(present, freq, 1.0), 1.0)
    return [float(w) for w in np.minimum(weights, max_weight)]
