"""Architecture registry: ``build_model`` by name, and each model's input stride.

The names are known without Keras; an architecture's module (and Keras with it) is imported
when it is built or its stride is asked for."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import keras

#: name -> ("module:builder", "module:stride function"), resolved on first use.
_ARCHITECTURES = {
    "unet": ("segmodels.unet:build_unet", "segmodels.unet:unet_stride"),
    "attention_unet": ("segmodels.attention_unet:build_attention_unet",
                       "segmodels.unet:unet_stride"),
    "unet_aspp": ("segmodels.aspp:build_unet_aspp", "segmodels.unet:unet_stride"),
    "deeplabv3plus": ("segmodels.deeplab:build_deeplabv3plus",
                      "segmodels.deeplab:deeplab_stride"),
    "encoder_unet": ("segmodels.encoder_unet:build_encoder_unet",
                     "segmodels.encoder_unet:encoder_unet_stride"),
    "pix2pix": ("segmodels.pix2pix:build_pix2pix", "segmodels.registry:_pix2pix_stride"),
}


def _pix2pix_stride(depth: int = 5, discriminator_layers: int = 3, **_) -> int:
    """The generator's stride, or the PatchGAN discriminator's if that is coarser."""
    from segmodels.pix2pix import pix2pix_stride

    return max(pix2pix_stride(depth), 2**discriminator_layers)


def available_models() -> list[str]:
    return sorted(_ARCHITECTURES)


def architecture_modules() -> list[str]:
    """The modules that define the architectures (importing them registers their layers)."""
    return sorted({target.split(":")[0] for targets in _ARCHITECTURES.values()
                   for target in targets})


def _resolve(target: str) -> Callable[..., Any]:
    module, name = target.split(":")
    return getattr(importlib.import_module(module), name)


def _architecture(name: str) -> tuple[str, str]:
    try:
        return _ARCHITECTURES[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; choose one of {available_models()}") from None


def build_model(name: str, num_classes: int, in_channels: int, **params) -> keras.Model:
    """Build architecture ``name`` with input (None, None, in_channels) and a float32 softmax
    output (N, H, W, num_classes). H and W must be multiples of ``model_stride``."""
    if num_classes < 2:
        raise ValueError(f"num_classes must be >= 2, got {num_classes}")
    if in_channels < 1:
        raise ValueError(f"in_channels must be >= 1, got {in_channels}")
    build = _resolve(_architecture(name)[0])
    return build(num_classes=num_classes, in_channels=in_channels, **params)


def model_stride(name: str, **params) -> int:
    """The number H and W must be multiples of for model ``name`` built with ``params``
    (unknown params are ignored so a full params dict can be passed)."""
    return _resolve(_architecture(name)[1])(**params)


def check_input_size(name: str, height: int, width: int, **params) -> None:
    """Raise StrideError naming the model and stride when H or W is not a multiple."""
    from segmodels.layers import StrideError

    stride = model_stride(name, **params)
    if height % stride or width % stride:
        raise StrideError(
            f"model {name!r} needs height and width that are multiples of {stride}, "
            f"got {height}x{width}; pad or crop the tiles (e.g. to "
            f"{-(-height // stride) * stride}x{-(-width // stride) * stride})")
