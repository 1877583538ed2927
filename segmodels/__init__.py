"""Keras 3 segmentation models, losses and metrics. Imports keras and numpy only."""

from __future__ import annotations

from collections.abc import Callable

import keras

from segmodels.preprocessing import normalize_image
from segmodels.unet import build_unet

_BUILDERS: dict[str, Callable[..., keras.Model]] = {
    "unet": build_unet,
}


def available_models() -> list[str]:
    return sorted(_BUILDERS)


def build_model(name: str, num_classes: int, in_channels: int, **params) -> keras.Model:
    """Build architecture ``name``; outputs (N, H, W, num_classes) float32 softmax."""
    try:
        builder = _BUILDERS[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; choose one of {available_models()}") from None
    return builder(num_classes=num_classes, in_channels=in_channels, **params)


__all__ = ["available_models", "build_model", "normalize_image"]
