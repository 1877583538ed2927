"""tf.data input pipeline over a prepared dataset's tiles.

Tiles are decoded in parallel (rasterio inside ``tf.numpy_function``), normalized with the
train-split statistics through ``segmodels.normalize_image`` (the same function serving
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
from segmodels import normalize_image

Augment = Literal["none", "d4", "d4_color"]


class DataError(ValueError):
    """The dataset cannot feed training (e.g. an empty split); the message says which."""


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


def _dihedral(image: tf.Tensor, mask: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    # One of the 8 rotations/reflections of the square, drawn once for image and mask.
    k = tf.random.uniform([], 0, 4, dtype=tf.int32)
    flip = tf.random.uniform([]) < 0.5
    stacked = tf.concat([image, tf.cast(mask[..., None], image.dtype)], axis=-1)
    stacked = tf.image.rot90(stacked, k)
    stacked = tf.cond(flip, lambda: tf.image.flip_left_right(stacked), lambda: stacked)
    return stacked[..., :-1], tf.cast(stacked[..., -1], tf.uint8)


def _photometric(image: tf.Tensor) -> tf.Tensor:
    # On z-scored bands: a brightness shift, a contrast stretch and a little noise.
    brightness = tf.random.uniform([], -0.2, 0.2)
    contrast = tf.random.uniform([], 0.8, 1.2)
    image = image * contrast + brightness
    return image + tf.random.normal(tf.shape(image), stddev=0.03)


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
        if augment != "none":
            ds = ds.map(_dihedral, num_parallel_calls=tf.data.AUTOTUNE)
        if augment == "d4_color":
            ds = ds.map(lambda x, y: (_photometric(x), y), num_parallel_calls=tf.data.AUTOTUNE)
    ds = ds.batch(batch_size, drop_remainder=drop_remainder)
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
