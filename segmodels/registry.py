"""Architecture registry: ``build_model`` by name, and each model's input stride."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import keras

from segmodels import unet
from segmodels.aspp import build_unet_aspp
from segmodels.attention_unet import build_attention_unet
from segmodels.deeplab import build_deeplabv3plus, deeplab_stride
from segmodels.encoder_unet import build_encoder_unet, encoder_unet_stride
from segmodels.layers import StrideError
from segmodels.pix2pix import build_pix2pix, pix2pix_stride


@dataclass(frozen=True)
class _Architecture:
    build: Callable[..., keras.Model]
    stride: Callable[..., int]


def _registry() -> dict[str, _Architecture]:
    return {
        "unet": _Architecture(unet.build_unet, unet.unet_stride),
        "attention_unet": _Architecture(build_attention_unet, unet.unet_stride),
        "unet_aspp": _Architecture(build_unet_aspp, unet.unet_stride),
        "deeplabv3plus": _Architecture(build_deeplabv3plus, deeplab_stride),
        "encoder_unet": _Architecture(build_encoder_unet, encoder_unet_stride),
        "pix2pix": _Architecture(build_pix2pix, _pix2pix_stride),
    }


def _pix2pix_stride(depth: int = 5, discriminator_layers: int = 3, **_) -> int:
    return max(pix2pix_stride(depth), 2**discriminator_layers)


def available_models() -> list[str]:
    return sorted(_registry())


def _architecture(name: str) -> _Architecture:
    try:
        return _registry()[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; choose one of {available_models()}") from None


def build_model(name: str, num_classes: int, in_channels: int, **params) -> keras.Model:
    """Build architecture ``name`` with input (None, None, in_channels) and a float32 softmax
    output (N, H, W, num_classes). H and W must be multiples of ``model_stride``."""
    if num_classes < 2:
        raise ValueError(f"num_classes must be >= 2, got {num_classes}")
    if in_channels < 1:
        raise ValueError(f"in_channels must be >= 1, got {in_channels}")
    return _architecture(name).build(num_classes=num_classes, in_channels=in_channels, **params)


def model_stride(name: str, **params) -> int:
    """The number H and W must be multiples of for model ``name`` built with ``params``
    (unknown params are ignored so a full params dict can be passed)."""
    return _architecture(name).stride(**params)


def check_input_size(name: str, height: int, width: int, **params) -> None:
    """Raise StrideError naming the model and stride when H or W is not a multiple."""
    stride = model_stride(name, **params)
    if height % stride or width % stride:
        raise StrideError(
            f"model {name!r} needs height and width that are multiples of {stride}, "
            f"got {height}x{width}; pad or crop the tiles (e.g. to "
            f"{-(-height // stride) * stride}x{-(-width // stride) * stride})")
