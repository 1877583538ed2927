"""tf.data input pipeline over a prepared dataset's tiles.

Tiles are decoded in parallel (rasterio inside ``tf.numpy_function``), normalized with the
train-split statistics through ``serving.pixels.normalize_image`` (the same function serving
uses), cached in memory when the split fits the budget, then shuffled, augmented with the
8 dihedral transforms applied identically to image and mask, batched and prefetched.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import rasterio
import tensorflow as tf

from components.artifacts import ArtifactError, NormStats, SplitManifest, tile_paths
from components.raster import DataError
from serving.pixels import normalize_image

Augment = Literal["none", "d4", "d4_color"]


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
    return TileSource(tiles_dir=tiles_dir, tile_ids=ids, mean=stats.mean, std=stats.std,
                      nodata=stats.nodata, patch_size=patch_size, in_channels=len(stats.bands))


def read_normalized(source: TileSource, image_path: str, mask_path: str
                    ) -> tuple[np.ndarray, np.ndarray]:
    """(H, W, C) float32 z-scores and (H, W) uint8 mask of one tile."""
    with rasterio.open(image_path) as src:
        image = np.moveaxis(src.read(), 0, -1)
    with rasterio.open(mask_path) as src:
        mask = src.read(1).astype(np.uint8)
    if image.shape[-1] != source.in_channels:
        raise DataError(f"{image_path}: {image.shape[-1]} bands, statistics have "
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


def dihedral_index_maps(size: int) -> np.ndarray:
    """(8, size*size) int32: for each of the 8 rotations/reflections of a square tile, the
    flat source pixel of every flat output pixel."""
    grid = np.arange(size * size, dtype=np.int32).reshape(size, size)
    maps = []
    for flip in (False, True):
        base = grid[:, ::-1] if flip else grid
        maps += [np.rot90(base, k).reshape(-1) for k in range(4)]
    return np.stack(maps)


def _augment_batch(images: tf.Tensor, masks: tf.Tensor, index_maps: tf.Tensor,
                   photometric: bool) -> tuple[tf.Tensor, tf.Tensor]:
    """Per-sample D4 transform (same for image and mask) as one gather over the batch,
    which costs far less CPU than per-tile rot90/flip ops; then optional per-sample
    brightness/contrast/noise on the image only (z-scored bands)."""
    shape = tf.shape(images)
    batch, size, channels = shape[0], shape[1], shape[3]
    which = tf.random.uniform([batch], 0, 8, dtype=tf.int32)
    source = tf.gather(index_maps, which)  # (B, H*W)
    images = tf.gather(tf.reshape(images, [batch, -1, channels]), source, batch_dims=1)
    masks = tf.gather(tf.reshape(masks, [batch, -1]), source, batch_dims=1)
    images = tf.reshape(images, [batch, size, size, channels])
    masks = tf.reshape(masks, [batch, size, size])
    if photometric:
        contrast = tf.random.uniform([batch, 1, 1, 1], 0.8, 1.2)
        brightness = tf.random.uniform([batch, 1, 1, 1], -0.2, 0.2)
        images = images * contrast + brightness + tf.random.normal(tf.shape(images),
                                                                   stddev=0.03)
    return images, masks


def make_dataset(source: TileSource, batch_size: int, *, training: bool, augment: Augment = "none",
                 seed: int = 0, cache_budget_bytes: int = 1 << 30,
                 drop_remainder: bool = False) -> tf.data.Dataset:
    """Batches of (image float32 (B,H,W,C), mask uint8 (B,H,W)) for ``model.fit``."""
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
    ds = ds.batch(batch_size, drop_remainder=drop_remainder,
                  num_parallel_calls=tf.data.AUTOTUNE)
    if training and augment != "none":
        index_maps = tf.constant(dihedral_index_maps(size))
        ds = ds.map(lambda x, y: _augment_batch(x, y, index_maps, augment == "d4_color"),
                    num_parallel_calls=tf.data.AUTOTUNE)
    return ds.prefetch(tf.data.AUTOTUNE)


def class_frequencies(class_counts: Sequence[dict[int, int]], num_classes: int) -> np.ndarray:
    total = np.zeros(num_classes, dtype=np.float64)
    for counts in class_counts:
        for cls, n in counts.items():
            if 0 <= int(cls) < num_classes:
                total[int(cls)] += n
    return total


def balanced_class_weights(frequencies: np.ndarray) -> list[float]:
    """Median-frequency balancing; absent classes get weight 1."""
    present = frequencies > 0
    if not present.any():
        return [1.0] * len(frequencies)
    freq = frequencies / frequencies.sum()
    median = np.median(freq[present])
    weights = np.where(present, median / np.where(present, freq, 1.0), 1.0)
    return [float(w) for w in weights]
