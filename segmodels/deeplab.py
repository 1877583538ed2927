"""DeepLabV3+ (Chen et al., 2018) on a keras.applications ResNet-50 encoder.

The ASPP head sits on ``conv4_block6_out`` (output stride 16) and the decoder fuses the
stride-4 features of ``conv2_block3_out``, as in the keras.io DeepLabV3+ example; ResNet's
conv5 stage is not used. H and W must be multiples of 16.

``encoder_weights``: None (random), "imagenet" (downloaded by keras) or a path to a weights
file of ``keras.applications.ResNet50(include_top=False)`` for RGB. With a band count other
than 3, the RGB encoder is built with those weights and copied into the N-band encoder,
adapting only the first convolution (see ``adapt_first_conv``). The pretrained encoder
expects its own input scaling; our z-scored bands differ, which fine-tuning absorbs.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import keras
import numpy as np
from keras import layers

from segmodels.aspp import aspp, conv_bn_relu
from segmodels.layers import StrideCheck

DEEPLAB_STRIDE = 16
_FIRST_CONV = "conv1_conv"
_HIGH_LEVEL = "conv4_block6_out"
_LOW_LEVEL = "conv2_block3_out"


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


def resnet50_encoder(in_channels: int, encoder_weights: str | None = None) -> keras.Model:
    """ResNet-50 without top for ``in_channels`` bands, optionally pretrained on RGB."""
    def resnet(channels: int, weights: str | None) -> keras.Model:
        with warnings.catch_warnings():  # "usually expects 1 or 3 input channels": we know
            warnings.simplefilter("ignore", UserWarning)
            return keras.applications.ResNet50(include_top=False, weights=weights,
                                               input_shape=(None, None, channels))

    if encoder_weights is None:
        return resnet(in_channels, None)
    try:
        rgb = resnet(3, encoder_weights)
    except ValueError as err:
        raise ValueError(f"encoder_weights {encoder_weights!r}: {err}") from err
    if in_channels == 3:
        return rgb
    encoder = resnet(in_channels, None)
    # same architecture, so layers pair up in order (input layers are named per build)
    for layer, source in zip(encoder.layers, rgb.layers, strict=True):
        weights = source.get_weights()
        if layer.name == _FIRST_CONV:
            weights = [adapt_first_conv(weights[0], in_channels), *weights[1:]]
        if weights:
            layer.set_weights(weights)
    return encoder


def build_deeplabv3plus(num_classes: int, in_channels: int, encoder_weights: str | None = None,
                        aspp_filters: int = 256, aspp_rates: Sequence[int] = (6, 12, 18),
                        low_level_filters: int = 48, decoder_filters: int = 256,
                        dropout: float = 0.1, freeze_encoder: bool = False) -> keras.Model:
    """DeepLabV3+ with ResNet-50; see the module docstring for weights and stride."""
    encoder = resnet50_encoder(in_channels, encoder_weights)
    backbone = keras.Model(encoder.input, [encoder.get_layer(_LOW_LEVEL).output,
                                           encoder.get_layer(_HIGH_LEVEL).output],
                           name="resnet50")
    backbone.trainable = not freeze_encoder
    inputs = keras.Input((None, None, in_channels), name="image")
    checked = StrideCheck(DEEPLAB_STRIDE, name="stride_check")(inputs)
    low, high = backbone(checked)
    x = aspp(high, aspp_filters, aspp_rates, batch_norm=True, dropout=dropout)
    x = layers.UpSampling2D(4, interpolation="bilinear", name="decoder_up4")(x)
    low = conv_bn_relu(low, low_level_filters, 1, 1, True, "low_level")
    x = layers.Concatenate(name="decoder_concat")([x, low])
    x = conv_bn_relu(x, decoder_filters, 3, 1, True, "decoder1")
    x = conv_bn_relu(x, decoder_filters, 3, 1, True, "decoder2")
    x = layers.Conv2D(num_classes, 1, name="logits")(x)
    x = layers.UpSampling2D(4, interpolation="bilinear", name="logits_up4")(x)
    probs = layers.Activation("softmax", dtype="float32", name="probs")(x)
    return keras.Model(inputs, probs, name="deeplabv3plus")


def deeplab_stride(**_) -> int:
    return DEEPLAB_STRIDE
