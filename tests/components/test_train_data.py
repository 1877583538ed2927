import numpy as np
import tensorflow as tf

from components.artifacts import NormStats
from components.train_data import (
    _augment_batch,
    dihedral_index_maps,
    make_dataset,
    make_source,
)


def test_dihedral_maps_are_the_eight_distinct_symmetries():
    maps = dihedral_index_maps(4)
    assert maps.shape == (8, 16)
    assert len({m.tobytes() for m in maps}) == 8
    grid = np.arange(16, dtype=np.int32).reshape(4, 4)
    expected = {np.rot90(g, k).tobytes() for g in (grid, grid[:, ::-1]) for k in range(4)}
    assert {m.reshape(4, 4).tobytes() for m in maps} == expected


def test_augmentation_moves_image_and_mask_together():
    rng = np.random.default_rng(0)
    masks = rng.integers(0, 3, size=(16, 8, 8)).astype(np.uint8)
    images = np.stack([masks.astype(np.float32), -masks.astype(np.float32)], axis=-1)
    tf.random.set_seed(1)
    out_images, out_masks = _augment_batch(tf.constant(images), tf.constant(masks),
                                           tf.constant(dihedral_index_maps(8)), False)
    np.testing.assert_array_equal(out_images.numpy()[..., 0], out_masks.numpy())
    np.testing.assert_array_equal(out_images.numpy()[..., 1], -out_masks.numpy().astype(float))
    assert (out_masks.numpy() != masks).any()  # something was actually transformed


def test_pipeline_normalizes_with_train_statistics(tiny_dataset):
    stats = NormStats.load(tiny_dataset.stats)
    source = make_source(tiny_dataset.tiles_dir, tiny_dataset.split, "train", stats, 32)
    images, masks = next(iter(make_dataset(source, 6, training=False)))
    assert images.shape == (6, 32, 32, 4) and masks.dtype == tf.uint8
    valid = masks.numpy() != 255
    z = images.numpy()[valid]
    assert abs(z.mean()) < 0.2 and 0.8 < z.std() < 1.2  # z-scores over the train split
    assert (images.numpy()[~valid] == 0).all()  # nodata -> 0
