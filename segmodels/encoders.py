"""Pretrained ``keras.applications`` encoders for any band count.

``encoder_weights``: None (random), "imagenet" (downloaded by Keras on first use, then cached
in ~/.keras) or the path of a weights file of the RGB application built with
``include_top=False`` (``model.save_weights``), for machines without internet.

Pretrained weights are for 3-band images in the application's own input scaling; our
bands are z-scores. So the weights are loaded into an RGB model, then copied into the
N-band encoder with only the first convolution changed (``pretrained_first_conv``):
* ResNet-50 was trained on blue, green, red: its kernel is put back into red, green, blue
  order, the order of the first three bands of most aerial and satellite products;
* the kernel is multiplied by the per-channel standard deviation of the inputs the network
  was trained on (ImageNet pixels in 0-255 for ResNet-50, in [-1, 1] for MobileNetV2,
  z-scores for EfficientNetV2), so a z-scored band drives the stem like a pretrained input
  of the same contrast and the batch-norm statistics after it (used as they are when the
  encoder is frozen) still fit;
* bands beyond the third (NIR, DEM...) start as a damped mean of the RGB kernel, fewer
  bands as its sum (``adapt_first_conv``).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import keras
import numpy as np

# ImageNet per-channel pixel std (red, green, blue) in 0-255
_IMAGENET_STD = (58.395, 57.12, 57.375)


@dataclass(frozen=True)
class EncoderSpec:
    application: Callable[..., keras.Model]
    # layers whose outputs are at strides 2, 4, 8, 16, 32: the last block of each stage (its
    # expansion for MobileNetV2's early stages, as in segmentation_models); no 1x1 "top"
    # convolution, which would add 1280 channels for the decoder to digest
    features: tuple[str, ...]
    first_conv: str
    input_std: tuple[float, float, float]  # of the pretrained inputs, red, green, blue
    bgr: bool = False  # pretrained first convolution expects blue, green, red
    options: dict = field(default_factory=dict)
    widths: tuple[float, ...] = (1.0,)  # width multipliers (alpha) the application takes
    # the file keras.applications downloads for weights="imagenet", include_top=False
    # ({width}: the alpha as Keras writes it, e.g. 0.35 or 1.0)
    imagenet_file: str = ""


ENCODERS: dict[str, EncoderSpec] = {
    "resnet50": EncoderSpec(
        keras.applications.ResNet50,
        ("conv1_relu", "conv2_block3_out", "conv3_block4_out", "conv4_block6_out",
         "conv5_block3_out"),
        "conv1_conv", _IMAGENET_STD, bgr=True,
        imagenet_file="resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5"),
    "mobilenetv2": EncoderSpec(
        keras.applications.MobileNetV2,
        ("block_1_expand_relu", "block_3_expand_relu", "block_6_expand_relu",
         "block_13_expand_relu", "block_16_project"),
        "Conv1", tuple(s / 127.5 for s in _IMAGENET_STD),
        widths=(0.35, 0.5, 0.75, 1.0, 1.3, 1.4),
        # rows 224: what Keras picks for an undefined input size
        imagenet_file="mobilenet_v2_weights_tf_dim_ordering_tf_kernels_{width}_224_no_top.h5"),
    "efficientnetv2b0": EncoderSpec(
        keras.applications.EfficientNetV2B0,
        ("block1a_project_activation", "block2b_add", "block3b_add", "block5e_add",
         "block6h_add"),
        "stem_conv", (1.0, 1.0, 1.0), options={"include_preprocessing": False},
        imagenet_file="efficientnetv2-b0_notop.h5"),
}


def available_encoders() -> list[str]:
    return sorted(ENCODERS)


def encoder_spec(name: str) -> EncoderSpec:
    try:
        return ENCODERS[name]
    except KeyError:
        raise ValueError(f"unknown encoder {name!r}; choose one of {available_encoders()}"
                         ) from None


def cached_imagenet_weights(name: str, width: float = 1.0) -> Path | None:
    """The ImageNet weights file of encoder ``name`` in Keras' download cache
    (``$KERAS_HOME`` or ~/.keras, else /tmp/.keras where Keras falls back), None when it has
    not been downloaded on this machine."""
    spec = encoder_spec(name)
    file = spec.imagenet_file.format(width=float(width))
    home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    for root in (Path(home), Path("/tmp/.keras")):
        if (root / "models" / file).is_file():
            return root / "models" / file
    return None


def adapt_first_conv(rgb_kernel: np.ndarray, in_channels: int) -> np.ndarray:
    """(kh, kw, 3, F) RGB kernel -> (kh, kw, in_channels, F).

    3+ bands: the RGB slice is kept exactly (so RGB inputs respond as pretrained) and each
    extra band (NIR, DEM, ...) gets the mean RGB kernel scaled by 3/in_channels, so the
    extra bands start as a damped intensity channel instead of swamping the RGB response.
    Fewer bands: every band gets the summed RGB kernel / in_channels, which reproduces the
    pretrained response to a grey image replicated over the bands.
    """
    if rgb_kernel.ndim != 4 or rgb_kernel.shape[2] != 3:
        raise ValueError(f"expected an RGB kernel (kh, kw, 3, F), got shape {rgb_kernel.shape}")
    if in_channels >= 3:
        extra = rgb_kernel.mean(axis=2, keepdims=True) * (3.0 / in_channels)
        return np.concatenate([rgb_kernel, np.repeat(extra, in_channels - 3, axis=2)], axis=2)
    summed = rgb_kernel.sum(axis=2, keepdims=True) / in_channels
    return np.repeat(summed, in_channels, axis=2)


def pretrained_first_conv(kernel: np.ndarray, spec: EncoderSpec, in_channels: int
                          ) -> np.ndarray:
    """The pretrained first-convolution kernel for z-scored bands: RGB order, scaled by the
    pretrained inputs' std, adapted to ``in_channels`` (see the module docstring)."""
    rgb = kernel[:, :, ::-1] if spec.bgr else kernel
    rgb = rgb * np.asarray(spec.input_std, dtype=rgb.dtype)[None, None, :, None]
    return adapt_first_conv(rgb, in_channels)


def encoder_application(name: str, in_channels: int, encoder_weights: str | None = None,
                        width: float = 1.0) -> keras.Model:
    """The whole ``keras.applications`` model ``name`` without top, input
    (None, None, in_channels), optionally pretrained (see the module docstring)."""
    spec = encoder_spec(name)
    if width not in spec.widths:
        raise ValueError(f"encoder {name!r} takes encoder_width in {list(spec.widths)}, "
                         f"got {width}")
    options = dict(spec.options, **({"alpha": width} if len(spec.widths) > 1 else {}))

    def build(channels: int, weights: str | None) -> keras.Model:
        # "usually expects 1 or 3 input channels", "input shape undefined, loading weights for
        # 224x224": both expected here (fully convolutional, any band count)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            return spec.application(include_top=False, weights=weights,
                                    input_shape=(None, None, channels), **options)

    if encoder_weights is None:
        return build(in_channels, None)
    if encoder_weights != "imagenet" and not Path(encoder_weights).is_file():
        raise ValueError(f"encoder_weights {encoder_weights!r}: no such file (give None, "
                         f"'imagenet' or a weights file of the RGB {name} without top)")
    try:
        rgb = build(3, encoder_weights)
    except Exception as err:  # keras raises a bare Exception when a download fails
        hint = ("; without internet, save the weights on a machine with it and pass the file"
                if encoder_weights == "imagenet" else "")
        raise ValueError(f"encoder_weights {encoder_weights!r} do not load into encoder "
                         f"{name!r} (width {width}): {err}{hint}") from err
    encoder = build(in_channels, None)
    # same architecture, so layers pair up in order (input layers are named per build)
    for layer, source in zip(encoder.layers, rgb.layers, strict=True):
        weights = source.get_weights()
        if layer.name == spec.first_conv:
            weights = [pretrained_first_conv(weights[0], spec, in_channels), *weights[1:]]
        if weights:
            layer.set_weights(weights)
    return encoder


def encoder_features(name: str, in_channels: int, encoder_weights: str | None = None,
                     depth: int = 5, width: float = 1.0) -> keras.Model:
    """Encoder ``name`` as a model from the image to its features at strides 2 .. 2**depth
    (the layers past the deepest one are dropped, with their parameters)."""
    if not 1 <= depth <= 5:
        raise ValueError(f"encoder_depth must be in 1..5 (stride 2..32), got {depth}")
    spec = encoder_spec(name)
    encoder = encoder_application(name, in_channels, encoder_weights, width)
    outputs = [encoder.get_layer(layer).output for layer in spec.features[:depth]]
    return keras.Model(encoder.input, outputs, name=name)
