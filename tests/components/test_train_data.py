import numpy as np
import pytest
import tensorflow as tf

from components.artifacts import NormStats
from components.train_augment import (
    BAND_SHIFT,
    BRIGHTNESS,
    CONTRAST,
    DRAWS,
    NOISE,
    TONE,
    BatchAugmenter,
    apply_views,
    dihedral_index_maps,
    view_index_maps,
)
from components.train_data import balanced_class_weights, make_dataset, make_source

TILE, CROP = 8, 5


def _position_coded_batch(batch: int, tile: int = TILE):
    """Images whose bands are each pixel's own (row, col) in the tile, and masks whose class
    is a function of that position (with an ignored pixel), so any misalignment between
    image and mask, or any pixel not from the right place, shows."""
    rows, cols = np.mgrid[:tile, :tile]
    image = np.stack([rows, cols], axis=-1).astype(np.float32)
    mask = ((rows * 3 + cols * 5) % 7).astype(np.uint8)
    mask[1, 2] = 255
    return np.repeat(image[None], batch, 0), np.repeat(mask[None], batch, 0)


def _class_of(positions: np.ndarray) -> np.ndarray:
    rows, cols = positions[..., 0].astype(int), positions[..., 1].astype(int)
    expected = ((rows * 3 + cols * 5) % 7).astype(np.uint8)
    expected[(rows == 1) & (cols == 2)] = 255
    return expected


def _view(window: np.ndarray, view: int) -> np.ndarray:
    """The reference rotations/reflections, in view_index_maps' order."""
    base = window[:, ::-1] if view >= 4 else window
    return np.rot90(base, view % 4)


def test_view_maps_are_the_eight_distinct_symmetries():
    maps = dihedral_index_maps(4)
    assert maps.shape == (8, 16)
    grid = np.arange(16, dtype=np.int32).reshape(4, 4)
    for view in range(8):
        np.testing.assert_array_equal(maps[view].reshape(4, 4), _view(grid, view))
    assert len({m.tobytes() for m in maps}) == 8
    with pytest.raises(ValueError, match="crop"):
        view_index_maps(8, 9)


def test_every_view_of_every_crop_keeps_image_and_mask_aligned():
    positions = TILE - CROP + 1
    combos = [(v, r, c) for v in range(8) for r in range(positions) for c in range(positions)]
    images, masks = _position_coded_batch(len(combos))
    views = tf.constant([v for v, _, _ in combos], tf.int32)
    offsets = tf.constant([(r, c) for _, r, c in combos], tf.int32)
    out_images, out_masks = apply_views(tf.constant(images), tf.constant(masks),
                                        tf.constant(view_index_maps(TILE, CROP)), views,
                                        offsets, TILE)
    out_images, out_masks = out_images.numpy(), out_masks.numpy()
    assert out_images.shape == (len(combos), CROP, CROP, 2)
    assert out_masks.shape == (len(combos), CROP, CROP)
    for i, (view, row, col) in enumerate(combos):
        window = images[0, row:row + CROP, col:col + CROP]
        np.testing.assert_array_equal(out_images[i], _view(window, view))
        np.testing.assert_array_equal(out_masks[i], _class_of(out_images[i]))


@pytest.mark.parametrize("augment", ["d4", "d4_color"])
def test_random_crops_and_views_stay_aligned(augment):
    tf.random.set_seed(0)
    images, masks = _position_coded_batch(64)
    augmenter = BatchAugmenter(TILE, CROP, 2, augment, [0.0, 0.0], [7.0, 7.0])
    out_images, out_masks = augmenter(tf.constant(images), tf.constant(masks))
    # the geometry alone (no photometric jitter), to read positions back exactly
    geometric = BatchAugmenter(TILE, CROP, 2, "d4", [0.0, 0.0], [7.0, 7.0])
    draws = tf.random.uniform([64, len(DRAWS) + 2])
    geo_images, geo_masks = geometric.apply(tf.constant(images), tf.constant(masks), draws)
    seen_views, seen_offsets = set(), set()
    for positions, mask in zip(geo_images.numpy(), geo_masks.numpy(), strict=True):
        np.testing.assert_array_equal(mask, _class_of(positions))
        row, col = positions[..., 0].min(), positions[..., 1].min()
        window = images[0, int(row):int(row) + CROP, int(col):int(col) + CROP]
        matches = [v for v in range(8) if np.array_equal(_view(window, v), positions)]
        assert len(matches) == 1  # a contiguous window seen through exactly one view
        seen_views.add(matches[0])
        seen_offsets.add((row, col))
    assert len(seen_views) == 8 and len(seen_offsets) > 8
    assert out_images.shape == (64, CROP, CROP, 2) and out_masks.shape == (64, CROP, CROP)
    if augment == "d4":
        for positions, mask in zip(out_images.numpy(), out_masks.numpy(), strict=True):
            np.testing.assert_array_equal(mask, _class_of(positions))


def test_photometric_jitter_changes_the_image_only_within_its_ranges():
    rng = np.random.default_rng(0)
    images = rng.normal(size=(32, 16, 16, 3)).astype(np.float32)
    images[:, :4, :4] = 0.0  # nodata after normalization
    masks = rng.integers(0, 4, size=(32, 16, 16)).astype(np.uint8)
    z_low, z_high = [-2.0] * 3, [2.0] * 3
    draws = tf.random.uniform([32, len(DRAWS) + 3], seed=1)
    color = BatchAugmenter(16, 16, 3, "d4_color", z_low, z_high)
    plain = BatchAugmenter(16, 16, 3, "d4", z_low, z_high)
    jittered, jittered_masks = color.apply(tf.constant(images), tf.constant(masks), draws)
    viewed, viewed_masks = plain.apply(tf.constant(images), tf.constant(masks), draws)
    jittered, viewed = jittered.numpy(), viewed.numpy()
    np.testing.assert_array_equal(jittered_masks.numpy(), viewed_masks.numpy())
    nodata = (viewed == 0).all(axis=-1)
    assert nodata.sum() == 32 * 16 and (jittered[nodata] == 0).all()
    change = np.abs(jittered - viewed)
    assert change[~nodata].mean() > 0.02  # it does something...
    # ...but no more than the ranges allow: gain about the mean, tone bend (at most a quarter
    # of the 4-wide percentile range times TONE, then the gain), shifts, noise (5 sigma)
    bound = (np.abs(viewed) * (CONTRAST - 1) + TONE * 4 / 4 * CONTRAST + BRIGHTNESS
             + BAND_SHIFT + 5 * NOISE)
    assert (change <= bound)[~nodata].all()
    per_sample = (jittered - viewed)[:, 8:, 8:].mean(axis=(1, 2, 3))
    assert np.std(per_sample) > 0.01  # drawn per sample, not per batch


def test_training_batches_are_cropped_and_validation_tiles_whole(tiny_dataset):
    stats = NormStats.load(tiny_dataset.stats)
    source = make_source(tiny_dataset.tiles_dir, tiny_dataset.split, "train", stats, 32)
    images, masks = next(iter(make_dataset(source, 4, training=True, augment="d4_color",
                                           crop_size=16)))
    assert images.shape == (4, 16, 16, 4) and masks.shape == (4, 16, 16)
    assert images.dtype == tf.float32 and masks.dtype == tf.uint8
    images, _ = next(iter(make_dataset(source, 4, training=True, crop_size=64)))
    assert images.shape == (4, 32, 32, 4)  # crop not smaller than the tile: whole tiles
    # augmented several batches at a time, then split: the same batches as without
    for drop, sizes in ((False, [4, 2]), (True, [4])):
        ds = make_dataset(source, 4, training=True, augment="d4", drop_remainder=drop)
        assert int(ds.cardinality()) == len(sizes)
        assert [int(x.shape[0]) for x, _ in ds] == sizes
    images, _ = next(iter(make_dataset(source, 4, training=False, crop_size=16)))
    assert images.shape == (4, 32, 32, 4)


def test_pipeline_normalizes_with_train_statistics(tiny_dataset):
    stats = NormStats.load(tiny_dataset.stats)
    source = make_source(tiny_dataset.tiles_dir, tiny_dataset.split, "train", stats, 32)
    assert all(lo < 0 < hi for lo, hi in zip(source.z_low, source.z_high, strict=True))
    images, masks = next(iter(make_dataset(source, 6, training=False)))
    assert images.shape == (6, 32, 32, 4) and masks.dtype == tf.uint8
    valid = masks.numpy() != 255
    z = images.numpy()[valid]
    assert abs(z.mean()) < 0.2 and 0.8 < z.std() < 1.2  # z-scores over the train split
    assert (images.numpy()[~valid] == 0).all()  # nodata -> 0


def test_balanced_class_weights_are_median_frequency_capped():
    # the real case: one colour on 179 pixels of millions got weight 2280 uncapped
    frequencies = np.array([4e6, 2e6, 1e6, 179.0, 0.0])
    weights = balanced_class_weights(frequencies, max_weight=10.0)
    present = frequencies[:4] / frequencies[:4].sum()
    median = np.median(present)
    np.testing.assert_allclose(weights[:3], median / present[:3])
    assert weights[3] == 10.0  # would be ~5600
    assert weights[4] == 1.0  # absent class
    assert balanced_class_weights(frequencies, max_weight=1e9)[3] > 1000
    with pytest.raises(ValueError, match="max_weight"):
        balanced_class_weights(frequencies, max_weight=0.5)
