"""Every architecture: output shape and dtype, stride errors, .keras round trip."""

from __future__ import annotations

import keras
import numpy as np
import pytest

import segmodels
from segmodels import StrideError, build_model, check_input_size, model_stride

TINY = {
    "unet": {"depth": 3, "filters": 4},
    "attention_unet": {"depth": 3, "filters": 4},
    "unet_aspp": {"depth": 3, "filters": 4, "aspp_rates": (1, 2)},
    "pix2pix": {"depth": 3, "filters": 4, "discriminator_filters": 4},
    "encoder_unet": {"encoder": "mobilenetv2", "encoder_width": 0.35, "encoder_depth": 4,
                     "decoder_filters": 2},
}
rng = np.random.default_rng(0)


def test_registry_lists_every_architecture():
    assert segmodels.available_models() == sorted(
        ["unet", "attention_unet", "unet_aspp", "deeplabv3plus", "pix2pix", "encoder_unet"])
    with pytest.raises(ValueError, match="unknown model"):
        build_model("segformer", 2, 3)


@pytest.mark.parametrize("name", sorted(TINY))
def test_shapes_save_and_load(name, tmp_path):
    model = build_model(name, num_classes=3, in_channels=5, **TINY[name])
    images = rng.normal(size=(2, 32, 48, 5)).astype("float32")  # non-square, any band count
    assert model.count_params() > 0
    assert model.input_shape == (None, None, None, 5)
    assert model.output_shape == (None, None, None, 3)
    probs = model.predict(images, verbose=0)
    assert probs.shape == (2, 32, 48, 3) and probs.dtype == np.float32
    np.testing.assert_allclose(probs.sum(-1), 1.0, rtol=1e-5)

    path = tmp_path / "model.keras"
    model.save(path)
    restored = keras.models.load_model(path)  # no custom_objects: building registered them
    np.testing.assert_array_equal(restored.predict(images, verbose=0), probs)


@pytest.mark.parametrize("params, expected_stride", [
    ({"depth": 3}, 4), ({"depth": 6}, 32), ({}, 8),
])
def test_unet_stride(params, expected_stride):
    assert model_stride("unet", **params) == expected_stride
    assert model_stride("attention_unet", filters=8, **params) == expected_stride


def test_other_strides():
    assert model_stride("deeplabv3plus") == 16
    assert model_stride("pix2pix", depth=4) == 16
    assert model_stride("unet_aspp", depth=5) == 16
    assert model_stride("encoder_unet", encoder_depth=4) == 16


def test_bad_size_is_a_clear_error():
    with pytest.raises(StrideError, match="multiples of 4"):
        check_input_size("unet", 30, 32, depth=3)
    check_input_size("unet", 28, 32, depth=3)
    model = build_model("unet", 2, 3, **TINY["unet"])
    with pytest.raises(StrideError, match="multiples of 4"):
        model(np.zeros((1, 30, 32, 3), "float32"))


@pytest.mark.parametrize("params", [
    {"depth": 4, "upsampling": "bilinear", "batch_norm": False},
    {"depth": 6, "filters": 2, "dropout": 0.3, "kernel_size": 5},
])
def test_unet_variants(params):
    model = build_model("unet", 2, 1, **params)
    stride = model_stride("unet", **params)
    assert model.predict(np.zeros((1, stride, 2 * stride, 1), "float32"), verbose=0).shape == (
        1, stride, 2 * stride, 2)
    has_bn = any(isinstance(layer, keras.layers.BatchNormalization) for layer in model.layers)
    assert has_bn == params.get("batch_norm", True)
    with pytest.raises(ValueError, match="depth"):
        build_model("unet", 2, 1, depth=9)


def test_attention_gates_present():
    model = build_model("attention_unet", 2, 3, **TINY["attention_unet"])
    gates = [layer.name for layer in model.layers if layer.name.endswith("_psi")]
    assert gates == ["att1_psi", "att0_psi"]


def test_compiled_model_round_trip_with_our_loss_and_metrics(tmp_path):
    model = build_model("unet", 3, 2, **TINY["unet"])
    model.compile(optimizer="adam", loss=segmodels.build_loss({"ce": 1.0, "dice": 0.5}),
                  metrics=[segmodels.MeanIoU(3, name="miou"), segmodels.PixelAccuracy(3)])
    images = rng.normal(size=(4, 16, 16, 2)).astype("float32")
    labels = rng.integers(0, 3, size=(4, 16, 16))
    labels[:, :3] = 255
    model.optimizer.build(model.trainable_variables)  # as after fit: its state is saved too
    before = model.evaluate(images, labels, verbose=0, return_dict=True)
    model.save(tmp_path / "compiled.keras")
    restored = keras.models.load_model(tmp_path / "compiled.keras")
    assert isinstance(restored.loss, segmodels.CombinedLoss)
    after = restored.evaluate(images, labels, verbose=0, return_dict=True)
    assert after == pytest.approx(before, rel=1e-6)


def test_mixed_precision_output_is_float32():
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        model = build_model("unet", 2, 3, **TINY["unet"])
        assert model.get_layer("enc0_conv1").compute_dtype == "float16"
        out = model(np.zeros((1, 16, 16, 3), "float32"))
        assert keras.backend.standardize_dtype(out.dtype) == "float32"
    finally:
        keras.mixed_precision.set_global_policy("float32")


def test_names_without_keras_and_load_model_registers_everything(tmp_path):
    """``import segmodels`` and the architecture names load no Keras; ``load_model`` in a
    fresh process restores a model whose layers no earlier import registered."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    model = build_model("attention_unet", num_classes=2, in_channels=3, **TINY["attention_unet"])
    images = rng.normal(size=(1, 16, 16, 3)).astype("float32")
    model.save(tmp_path / "model.keras")
    np.save(tmp_path / "images.npy", images)
    np.save(tmp_path / "probs.npy", model.predict(images, verbose=0))
    script = f"""
import sys
import numpy as np
import segmodels
assert "attention_unet" in segmodels.available_models()
assert "keras" not in sys.modules, "segmodels imported keras for its names"
model = segmodels.load_model({str(tmp_path / "model.keras")!r})
probs = model.predict(np.load({str(tmp_path / "images.npy")!r}), verbose=0)
np.testing.assert_allclose(probs, np.load({str(tmp_path / "probs.npy")!r}), atol=1e-6)
print("ok")
"""
    repo_root = Path(__file__).resolve().parents[2]
    done = subprocess.run([sys.executable, "-c", script], cwd=tmp_path,
                          env={**os.environ, "PYTHONPATH": str(repo_root)},
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-2000:]


def test_unknown_attribute_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'build_modle'"):
        segmodels.build_modle  # noqa: B018
