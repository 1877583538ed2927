"""Atrous spatial pyramid pooling (Chen et al., DeepLabV3) and the U-Net that uses it as its
bottleneck."""

from __future__ import annotations

from collections.abc import Sequence

import keras
from keras import layers

from segmodels.layers import BroadcastLike
from segmodels.unet import (
    softmax_head,
    unet_decoder,
    unet_encoder,
    validate_unet_params,
)


def conv_bn_relu(x, filters: int, kernel_size: int, dilation: int, batch_norm: bool, name: str):
    x = layers.Conv2D(filters, kernel_size, padding="same", dilation_rate=dilation,
                      use_bias=not batch_norm, name=f"{name}_conv")(x)
    if batch_norm:
        x = layers.BatchNormalization(name=f"{name}_bn")(x)
    return layers.Activation("relu", name=f"{name}_relu")(x)


def aspp(x, filters: int, rates: Sequence[int], batch_norm: bool = True, dropout: float = 0.1,
         name: str = "aspp"):
    """1x1 branch, one dilated 3x3 branch per rate, an image-pooling branch; concatenated and
    projected to ``filters`` channels. The pooling branch has no batch norm: its 1x1 map has
    one value per image, which makes batch statistics degenerate at small batch sizes."""
    branches = [conv_bn_relu(x, filters, 1, 1, batch_norm, f"{name}_1x1")]
    for rate in rates:
        branches.append(conv_bn_relu(x, filters, 3, int(rate), batch_norm, f"{name}_rate{rate}"))
    pooled = layers.GlobalAveragePooling2D(keepdims=True, name=f"{name}_pool")(x)
    pooled = layers.Conv2D(filters, 1, activation="relu", name=f"{name}_pool_conv")(pooled)
    branches.append(BroadcastLike(name=f"{name}_pool_broadcast")([pooled, x]))
    x = layers.Concatenate(name=f"{name}_concat")(branches)
    x = conv_bn_relu(x, filters, 1, 1, batch_norm, f"{name}_project")
    if dropout:
        x = layers.Dropout(dropout, name=f"{name}_drop")(x)
    return x


def build_unet_aspp(num_classes: int, in_channels: int, depth: int = 4, filters: int = 32,
                    kernel_size: int = 3, batch_norm: bool = True, dropout: float = 0.1,
                    upsampling: str = "transpose",
                    aspp_rates: Sequence[int] = (2, 4, 6)) -> keras.Model:
    """U-Net whose bottleneck is an ASPP block, giving the coarsest level a receptive field
    of whole fields/buildings. Rates are in bottleneck pixels (stride 2**(depth-1)).
    H and W must be multiples of 2**(depth-1)."""
    validate_unet_params(depth, filters, kernel_size, dropout, upsampling)
    inputs, x, skips = unet_encoder(in_channels, depth, filters, kernel_size, batch_norm)
    x = aspp(x, filters * 2 ** (depth - 1), aspp_rates, batch_norm, dropout)
    x = unet_decoder(x, skips, filters, kernel_size, batch_norm, upsampling)
    return keras.Model(inputs, softmax_head(x, num_classes), name="unet_aspp")
