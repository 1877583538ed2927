"""DeepLabV3+ (Chen et al., 2018) on a keras.applications ResNet-50 encoder.

The ASPP head sits on ``conv4_block6_out`` (output stride 16) and the decoder fuses the
stride-4 features of ``conv2_block3_out``, as in the keras.io DeepLabV3+ example; ResNet's
conv5 stage is not used. H and W must be multiples of 16.

``encoder_weights``: None (random), "imagenet" (downloaded by keras) or a path to a weights
file of ``keras.applications.ResNet50(include_top=False)`` for RGB; any band count, with the
first convolution adapted to z-scored bands as ``segmodels.encoders`` describes.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
from keras import layers

from segmodels.aspp import aspp, conv_bn_relu
from segmodels.encoders import adapt_first_conv, encoder_application
from segmodels.layers import StrideCheck

__all__ = ["DEEPLAB_STRIDE", "adapt_first_conv", "build_deeplabv3plus", "deeplab_stride"]

DEEPLAB_STRIDE = 16
_HIGH_LEVEL = "conv4_block6_out"
_LOW_LEVEL = "conv2_block3_out"


def build_deeplabv3plus(num_classes: int, in_channels: int, encoder_weights: str | None = None,
                        aspp_filters: int = 256, aspp_rates: Sequence[int] = (6, 12, 18),
                        low_level_filters: int = 48, decoder_filters: int = 256,
                        dropout: float = 0.1, freeze_encoder: bool = False) -> keras.Model:
    """DeepLabV3+ with ResNet-50; see the module docstring for weights and stride."""
    encoder = encoder_application("resnet50", in_channels, encoder_weights)
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
