"""DeepLabV3+ (ResNet-50 is big: one weights file, one model, one save/load)."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from segmodels import build_model
from segmodels.deeplab import adapt_first_conv


def test_adapt_first_conv_keeps_rgb_and_fills_extra_bands():
    kernel = np.random.default_rng(0).normal(size=(7, 7, 3, 8)).astype("float32")
    five = adapt_first_conv(kernel, 5)
    np.testing.assert_array_equal(five[:, :, :3], kernel)
    np.testing.assert_allclose(five[:, :, 3], kernel.mean(axis=2) * 3 / 5, rtol=1e-6)
    grey = adapt_first_conv(kernel, 1)
    np.testing.assert_allclose(grey[:, :, 0], kernel.sum(axis=2), rtol=1e-6)
    with pytest.raises(ValueError, match="RGB kernel"):
        adapt_first_conv(kernel[:, :, :2], 4)


def test_four_band_deeplab_from_local_rgb_weights(tmp_path):
    rgb = keras.applications.ResNet50(include_top=False, weights=None,
                                      input_shape=(None, None, 3))
    weights_path = tmp_path / "resnet50_rgb.weights.h5"
    rgb.save_weights(weights_path)
    rgb_conv1 = rgb.get_layer("conv1_conv").get_weights()[0]
    rgb_block = rgb.get_layer("conv4_block6_3_conv").get_weights()[0]
    del rgb

    model = build_model("deeplabv3plus", num_classes=3, in_channels=4,
                        encoder_weights=str(weights_path), aspp_filters=32,
                        decoder_filters=32, low_level_filters=8)
    encoder = model.get_layer("resnet50")
    conv1 = encoder.get_layer("conv1_conv").get_weights()[0]
    assert conv1.shape == (7, 7, 4, 64)
    # ResNet-50's pretrained kernel is blue, green, red for 0-255 pixels: back to red,
    # green, blue, scaled by ImageNet's pixel std so z-scored bands drive it alike
    expected = rgb_conv1[:, :, ::-1] * np.array([58.395, 57.12, 57.375], "float32")[:, None]
    np.testing.assert_allclose(conv1[:, :, :3], expected, rtol=1e-6)
    np.testing.assert_array_equal(encoder.get_layer("conv4_block6_3_conv").get_weights()[0],
                                  rgb_block)

    images = np.random.default_rng(1).normal(size=(1, 64, 64, 4)).astype("float32")
    probs = model.predict(images, verbose=0)
    assert probs.shape == (1, 64, 64, 3) and probs.dtype == np.float32
    np.testing.assert_allclose(probs.sum(-1), 1.0, rtol=1e-5)

    model.save(tmp_path / "deeplab.keras")
    restored = keras.models.load_model(tmp_path / "deeplab.keras")
    np.testing.assert_array_equal(restored.predict(images, verbose=0), probs)


def test_missing_weights_file_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="encoder_weights"):
        build_model("deeplabv3plus", 2, 4, encoder_weights=str(tmp_path / "missing.h5"))
