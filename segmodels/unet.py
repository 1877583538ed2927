"""U-Net (Ronneberger et al., 2015) for any band count."""

from __future__ import annotations

import keras
from keras import layers


def _conv_block(x, filters: int, kernel_size: int, batch_norm: bool, dropout: float, name: str):
    for i in (1, 2):
        x = layers.Conv2D(filters, kernel_size, padding="same", use_bias=not batch_norm,
                          name=f"{name}_conv{i}")(x)
        if batch_norm:
            x = layers.BatchNormalization(name=f"{name}_bn{i}")(x)
        x = layers.Activation("relu", name=f"{name}_relu{i}")(x)
    if dropout:
        x = layers.Dropout(dropout, name=f"{name}_drop")(x)
    return x


def build_unet(num_classes: int, in_channels: int, depth: int = 4, filters: int = 32,
               kernel_size: int = 3, batch_norm: bool = True, dropout: float = 0.0,
               upsampling: str = "transpose") -> keras.Model:
    """Input H and W must be multiples of 2**(depth-1)."""
    inputs = keras.Input((None, None, in_channels), name="image")
    x, skips = inputs, []
    for level in range(depth - 1):
        x = _conv_block(x, filters * 2**level, kernel_size, batch_norm, 0.0, f"enc{level}")
        skips.append(x)
        x = layers.MaxPooling2D(name=f"pool{level}")(x)
    x = _conv_block(x, filters * 2 ** (depth - 1), kernel_size, batch_norm, dropout, "bottleneck")
    for level in reversed(range(depth - 1)):
        f = filters * 2**level
        if upsampling == "transpose":
            x = layers.Conv2DTranspose(f, 2, strides=2, padding="same", name=f"up{level}")(x)
        else:
            x = layers.UpSampling2D(interpolation="bilinear", name=f"up{level}")(x)
        x = layers.Concatenate(name=f"skip{level}")([x, skips[level]])
        x = _conv_block(x, f, kernel_size, batch_norm, 0.0, f"dec{level}")
    logits = layers.Conv2D(num_classes, 1, name="logits")(x)
    probs = layers.Activation("softmax", dtype="float32", name="probs")(logits)
    return keras.Model(inputs, probs, name="unet")
