"""U-Net on keras.applications encoders: shapes, strides, N-band weights from a local file,
encoder warm-up and freezing, mixed precision (save/load: test_models.py). Encoders at
their smallest (MobileNetV2 alpha 0.35, 32 px inputs, 2-filter decoders)."""

from __future__ import annotations

import keras
import numpy as np
import pytest

import segmodels
from segmodels import StrideError, build_model, model_stride
from segmodels.encoder_unet import EncoderGate, EncoderWarmup
from segmodels.encoders import ENCODERS, adapt_first_conv, encoder_application

TINY = {"encoder": "mobilenetv2", "encoder_width": 0.35, "decoder_filters": 2}
rng = np.random.default_rng(0)


@pytest.fixture(scope="module")
def rgb_weights(tmp_path_factory) -> dict[str, object]:
    """Weights files of small RGB applications built here (no internet), with the arrays
    they hold, as a user without internet would provide them."""
    files = {}
    for name, width in (("mobilenetv2", 0.35), ("efficientnetv2b0", 1.0)):
        keras.utils.set_random_seed(1)
        model = encoder_application(name, 3, width=width)
        path = tmp_path_factory.mktemp(name) / f"{name}_rgb_notop.weights.h5"
        model.save_weights(path)
        files[name] = (path, {layer.name: [w.copy() for w in layer.get_weights()]
                              for layer in model.layers})
    return files


def test_registered_with_stride_from_encoder_depth():
    assert "encoder_unet" in segmodels.available_models()
    assert model_stride("encoder_unet") == 32
    assert model_stride("encoder_unet", encoder_depth=3, encoder="resnet50") == 8


@pytest.mark.parametrize("encoder, params", [
    ("mobilenetv2", {"encoder_width": 0.35}),
    ("efficientnetv2b0", {"encoder_depth": 4}),
    ("resnet50", {"encoder_depth": 3, "upsampling": "transpose", "dropout": 0.2}),
])
def test_shapes_any_band_count(encoder, params):
    model = build_model("encoder_unet", 3, 5, encoder=encoder, decoder_filters=2, **params)
    stride = model_stride("encoder_unet", **params)
    images = rng.normal(size=(2, 32, 64, 5)).astype("float32")  # non-square, 5 bands
    probs = np.asarray(model(images))
    assert probs.shape == (2, 32, 64, 3) and probs.dtype == np.float32
    np.testing.assert_allclose(probs.sum(-1), 1.0, rtol=1e-5)
    with pytest.raises(StrideError, match=f"multiples of {stride}"):
        model(np.zeros((1, stride + stride // 2, stride, 5), "float32"))


@pytest.mark.parametrize("name, in_channels", [("mobilenetv2", 4), ("mobilenetv2", 1),
                                               ("efficientnetv2b0", 3)])
def test_local_rgb_weights_are_loaded_and_adapted(rgb_weights, name, in_channels):
    path, saved = rgb_weights[name]
    spec = ENCODERS[name]
    width = 0.35 if name == "mobilenetv2" else 1.0
    model = build_model("encoder_unet", 2, in_channels, encoder=name, encoder_width=width,
                        decoder_filters=2, encoder_weights=str(path))
    encoder = model.get_layer(name)
    inner = [layer.name for layer in encoder.layers if saved.get(layer.name)
             and layer.name != spec.first_conv]
    assert len(inner) > 20
    for layer_name in inner:  # every other layer exactly as saved
        for got, want in zip(encoder.get_layer(layer_name).get_weights(), saved[layer_name],
                             strict=True):
            np.testing.assert_array_equal(got, want)
    kernel = encoder.get_layer(spec.first_conv).get_weights()[0]
    assert kernel.shape[2] == in_channels
    # RGB kernel scaled by the pretrained inputs' std (z-scored bands), then adapted
    scaled = saved[spec.first_conv][0] * np.asarray(spec.input_std, "float32")[:, None]
    np.testing.assert_allclose(kernel, adapt_first_conv(scaled, in_channels), rtol=1e-6)
    if name == "mobilenetv2":
        assert not np.allclose(scaled, saved[spec.first_conv][0])  # 0-255 / 127.5 inputs


def test_bad_encoder_settings_are_clear_errors(rgb_weights, tmp_path):
    mobilenet_file = str(rgb_weights["mobilenetv2"][0])
    with pytest.raises(ValueError, match="do not load into encoder 'efficientnetv2b0'"):
        build_model("encoder_unet", 2, 3, encoder="efficientnetv2b0",
                    encoder_weights=mobilenet_file)
    with pytest.raises(ValueError, match="no such file"):
        build_model("encoder_unet", 2, 3, **TINY, encoder_weights=str(tmp_path / "x.h5"))
    with pytest.raises(ValueError, match="unknown encoder 'vit'"):
        build_model("encoder_unet", 2, 3, encoder="vit")
    with pytest.raises(ValueError, match="encoder_width"):
        build_model("encoder_unet", 2, 3, encoder="resnet50", encoder_width=0.5)
    with pytest.raises(ValueError, match="encoder_depth"):
        build_model("encoder_unet", 2, 3, **TINY, encoder_depth=6)


def _encoder_and_decoder_kernels(model):
    encoder = model.get_layer("mobilenetv2")
    return ([v.numpy().copy() for v in encoder.trainable_variables],
            model.get_layer("dec0_conv1").kernel.numpy().copy(),
            encoder.get_layer("bn_Conv1").moving_mean.numpy().copy())


def test_encoder_warmup_trains_the_decoder_first(tmp_path):
    keras.utils.set_random_seed(0)
    model = build_model("encoder_unet", 2, 3, **TINY, encoder_depth=3)
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss=segmodels.build_loss("ce"))
    images = rng.normal(size=(4, 32, 32, 3)).astype("float32")
    labels = (images[..., 0] > 0).astype("int32")
    snapshots = [_encoder_and_decoder_kernels(model)]
    record = keras.callbacks.LambdaCallback(
        on_epoch_end=lambda epoch, logs: snapshots.append(_encoder_and_decoder_kernels(model)))
    model.fit(images, labels, epochs=2, batch_size=2, verbose=0,
              callbacks=[EncoderWarmup(1), record])
    (enc0, dec0, bn0), (enc1, dec1, bn1), (enc2, _, _) = snapshots
    assert all(np.array_equal(a, b) for a, b in zip(enc0, enc1, strict=True))  # closed
    assert not np.array_equal(dec0, dec1)  # while the decoder learned
    assert not np.array_equal(bn0, bn1)  # and batch-norm statistics adapted
    assert any(not np.array_equal(a, b) for a, b in zip(enc1, enc2, strict=True))  # open
    assert float(model.get_layer("encoder_gate").open.numpy()) == 1.0
    # a checkpoint taken during warm-up loads with the gate open
    model.get_layer("encoder_gate").open.assign(0.0)
    model.save_weights(tmp_path / "warmup.weights.h5")
    restored = build_model("encoder_unet", 2, 3, **TINY, encoder_depth=3)
    restored.get_layer("encoder_gate").open.assign(0.0)
    restored.load_weights(tmp_path / "warmup.weights.h5")
    assert float(restored.get_layer("encoder_gate").open.numpy()) == 1.0
    np.testing.assert_array_equal(restored.predict(images, verbose=0),
                                  model.predict(images, verbose=0))


def test_frozen_encoder_has_no_trainable_weights():
    model = build_model("encoder_unet", 2, 3, **TINY, freeze_encoder=True)
    assert not model.get_layer("mobilenetv2").trainable_weights
    assert model.trainable_weights  # the decoder still trains
    assert isinstance(model.get_layer("encoder_gate"), EncoderGate)


def test_mixed_precision_output_is_float32():
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        model = build_model("encoder_unet", 3, 4, **TINY, encoder_depth=2)
        assert model.get_layer("mobilenetv2").get_layer("Conv1").compute_dtype == "float16"
        model.compile(optimizer="adam", loss=segmodels.build_loss("ce+dice"))
        images = rng.normal(size=(2, 32, 32, 4)).astype("float32")
        out = model(images)
        assert keras.backend.standardize_dtype(out.dtype) == "float32"
        loss = model.train_on_batch(images, rng.integers(0, 3, size=(2, 32, 32)))
        assert np.isfinite(loss)
    finally:
        keras.mixed_precision.set_global_policy("float32")
