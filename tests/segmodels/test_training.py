"""Models learn: a tiny U-Net overfits 8 tiles; Pix2Pix trains both players through fit."""

from __future__ import annotations

import keras
import numpy as np

import segmodels
from segmodels import build_model, confusion_matrix, scores_from_confusion

IGNORE = 255


def _tiles(count: int = 8, size: int = 32, bands: int = 4, seed: int = 0):
    """Four classes in quadrants cut at random positions (balanced, so mIoU is not won by
    the background); bands carry a noisy code of the class; a nodata stripe is labelled
    with the ignore index and zeroed, as normalize_image does."""
    rng = np.random.default_rng(seed)
    rows, cols = np.mgrid[:size, :size]
    cuts = rng.integers(size // 4, 3 * size // 4, size=(count, 2))
    labels = np.stack([2 * (rows >= cy) + (cols >= cx) for cy, cx in cuts]).astype(np.int64)
    code = np.eye(4, bands, dtype="float32") + np.eye(4, bands, k=-1, dtype="float32")
    images = 2 * code[labels] + rng.normal(0, 0.4, size=(count, size, size, bands))
    images = images.astype("float32")
    labels[:, :, :3] = IGNORE
    images[:, :, :3] = 0.0
    return images, labels


def test_tiny_unet_overfits_eight_tiles():
    keras.utils.set_random_seed(0)
    images, labels = _tiles()
    model = build_model("unet", num_classes=4, in_channels=4, depth=3, filters=8,
                        batch_norm=False)
    model.compile(optimizer=keras.optimizers.Adam(1e-2),
                  loss=segmodels.build_loss({"ce": 1.0, "dice": 1.0}, num_classes=4),
                  metrics=[segmodels.MeanIoU(4, IGNORE)])
    model.fit(images, labels, epochs=12, batch_size=4, verbose=0)
    probs = model.predict(images, verbose=0)
    scores = scores_from_confusion(confusion_matrix(labels, probs, 4, IGNORE))
    assert scores["miou"] > 0.9, scores
    keras_miou = model.evaluate(images, labels, verbose=0, return_dict=True)["miou"]
    assert abs(keras_miou - scores["miou"]) < 1e-5


def test_pix2pix_fit_updates_both_players_and_predicts_probabilities():
    keras.utils.set_random_seed(0)
    images, labels = _tiles(count=4)
    model = build_model("pix2pix", num_classes=4, in_channels=4, depth=3, filters=4,
                        discriminator_filters=4)
    model.compile(optimizer=keras.optimizers.Adam(2e-4, beta_1=0.5),
                  metrics=[segmodels.MeanIoU(4, IGNORE)])
    generator_before = [v.numpy().copy() for v in model.generator.trainable_variables]
    critic_before = [v.numpy().copy() for v in model.discriminator.trainable_variables]
    history = model.fit(images, labels, epochs=2, batch_size=2, verbose=0,
                        validation_data=(images, labels))
    assert {"loss", "miou", "val_loss", "val_miou"} <= set(history.history)
    assert all(np.isfinite(history.history["loss"]))
    for before, variables in ((generator_before, model.generator.trainable_variables),
                              (critic_before, model.discriminator.trainable_variables)):
        assert any(not np.allclose(b, v.numpy()) for b, v in zip(before, variables, strict=True))
    probs = model.predict(images, verbose=0)
    assert probs.shape == (4, 32, 32, 4)
    np.testing.assert_allclose(probs.sum(-1), 1.0, rtol=1e-5)
    # validation loss is the supervised term only: plain cross-entropy, ignore index honoured
    expected_ce = segmodels.build_loss("ce")(labels, probs)
    val_loss = model.evaluate(images, labels, verbose=0, return_dict=True)["loss"]
    assert abs(val_loss - float(expected_ce)) < 1e-4
