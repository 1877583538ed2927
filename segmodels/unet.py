"""U-Net (Ronneberger et al., 2015) for any band count."""

from __future__ import annotations

import keras
from keras import layers

from segmodels.layers import StrideCheck


def conv_block(x, filters: int, kernel_size: int, batch_norm: bool, dropout: float, name: str):
    for i in (1, 2):
        x = layers.Conv2D(filters, kernel_size, padding="same", use_bias=not batch_norm,
                          name=f"{name}_conv{i}")(x)
        if batch_norm:
            x = layers.BatchNormalization(name=f"{name}_bn{i}")(x)
        x = layers.Activation("relu", name=f"{name}_relu{i}")(x)
    if dropout:
        x = layers.Dropout(dropout, name=f"{name}_drop")(x)
    return x


def unet_stride(depth: int = 4, **_) -> int:
    return 2 ** (depth - 1)


def validate_unet_params(depth: int, filters: int, kernel_size: int, dropout: float,
                         upsampling: str) -> None:
    if not 2 <= depth <= 7:
        raise ValueError(f"depth must be in 2..7 (levels incl. the bottleneck), got {depth}")
    if filters < 1 or kernel_size < 1 or kernel_size % 2 == 0:
        raise ValueError(f"filters must be >= 1 and kernel_size odd, got {filters}, {kernel_size}")
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout must be in [0, 1), got {dropout}")
    if upsampling not in ("transpose", "bilinear", "nearest"):
        raise ValueError(f"upsampling must be 'transpose', 'bilinear' or 'nearest', "
                         f"got {upsampling!r}")


def decoder_upsample(x, filters: int, upsampling: str, name: str):
    """Transposed convolution (learned) or parameter-free interpolation."""
    if upsampling == "transpose":
        return layers.Conv2DTranspose(filters, 2, strides=2, padding="same", name=name)(x)
    return layers.UpSampling2D(interpolation=upsampling, name=name)(x)


def softmax_head(x, num_classes: int):
    """1x1 conv to class logits, softmax in float32 even under a mixed-precision policy."""
    logits = layers.Conv2D(num_classes, 1, name="logits")(x)
    return layers.Activation("softmax", dtype="float32", name="probs")(logits)


def unet_encoder(in_channels: int, depth: int, filters: int, kernel_size: int,
                 batch_norm: bool) -> tuple:
    """The contracting path shared by the U-Net family: (model input, features entering the
    bottleneck, skip tensors from the finest level down)."""
    inputs = keras.Input((None, None, in_channels), name="image")
    x = StrideCheck(unet_stride(depth), name="stride_check")(inputs)
    skips = []
    for level in range(depth - 1):
        x = conv_block(x, filters * 2**level, kernel_size, batch_norm, 0.0, f"enc{level}")
        skips.append(x)
        x = layers.MaxPooling2D(name=f"pool{level}")(x)
    return inputs, x, skips


def unet_decoder(x, skips: list, filters: int, kernel_size: int, batch_norm: bool,
                 upsampling: str, gate=None):
    """The expanding path shared by the U-Net family. ``gate(skip, x, filters, level)``, when
    given, transforms each skip before it is joined (Attention U-Net's gates)."""
    for level in reversed(range(len(skips))):
        f = filters * 2**level
        skip = skips[level] if gate is None else gate(skips[level], x, f, level)
        x = decoder_upsample(x, f, upsampling, f"up{level}")
        x = layers.Concatenate(name=f"skip{level}")([x, skip])
        x = conv_block(x, f, kernel_size, batch_norm, 0.0, f"dec{level}")
    return x


def build_unet(num_classes: int, in_channels: int, depth: int = 4, filters: int = 32,
               kernel_size: int = 3, batch_norm: bool = True, dropout: float = 0.0,
               upsampling: str = "transpose") -> keras.Model:
    """U-Net with ``depth`` resolution levels (the last is the bottleneck).

    Input H and W must be multiples of 2**(depth-1); ``upsampling`` is "transpose"
    (learned) or "bilinear"/"nearest" interpolation; ``dropout`` acts on the bottleneck.
    """
    validate_unet_params(depth, filters, kernel_size, dropout, upsampling)
    inputs, x, skips = unet_encoder(in_channels, depth, filters, kernel_size, batch_norm)
    x = conv_block(x, filters * 2 ** (depth - 1), kernel_size, batch_norm, dropout, "bottleneck")
    x = unet_decoder(x, skips, filters, kernel_size, batch_norm, upsampling)
    return keras.Model(inputs, softmax_head(x, num_classes), name="unet")
