"""Attention U-Net (Oktay et al., 2018): additive attention gates on the skip connections,
so the decoder keeps only the skip features its coarser context deems relevant."""

from __future__ import annotations

import keras
from keras import layers

from segmodels.unet import (
    conv_block,
    softmax_head,
    unet_decoder,
    unet_encoder,
    validate_unet_params,
)


def attention_gate(skip, gating, inter_filters: int, name: str):
    """Gate ``skip`` (H, W) with ``gating`` (H/2, W/2): alpha = sigmoid(psi(relu(theta(skip) +
    phi(gating)))), computed at the coarse resolution and upsampled, as in the paper."""
    theta = layers.Conv2D(inter_filters, 2, strides=2, use_bias=False, name=f"{name}_theta")(skip)
    phi = layers.Conv2D(inter_filters, 1, name=f"{name}_phi")(gating)
    f = layers.Activation("relu", name=f"{name}_relu")(layers.Add(name=f"{name}_add")([theta, phi]))
    alpha = layers.Conv2D(1, 1, activation="sigmoid", name=f"{name}_psi")(f)
    alpha = layers.UpSampling2D(interpolation="bilinear", name=f"{name}_up")(alpha)
    return layers.Multiply(name=f"{name}_apply")([skip, alpha])


def build_attention_unet(num_classes: int, in_channels: int, depth: int = 4, filters: int = 32,
                         kernel_size: int = 3, batch_norm: bool = True, dropout: float = 0.0,
                         upsampling: str = "transpose") -> keras.Model:
    """Same parameters and stride (2**(depth-1)) as ``build_unet``."""
    validate_unet_params(depth, filters, kernel_size, dropout, upsampling)
    inputs, x, skips = unet_encoder(in_channels, depth, filters, kernel_size, batch_norm)
    x = conv_block(x, filters * 2 ** (depth - 1), kernel_size, batch_norm, dropout, "bottleneck")
    x = unet_decoder(x, skips, filters, kernel_size, batch_norm, upsampling,
                     gate=lambda skip, g, f, level: attention_gate(skip, g, max(f // 2, 1),
                                                                   f"att{level}"))
    return keras.Model(inputs, softmax_head(x, num_classes), name="attention_unet")
