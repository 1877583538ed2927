"""Keras 3 segmentation models, losses and metrics, built on keras and numpy only.

Keras loads when a model, loss or metric is first asked for, not on ``import segmodels``:
the architecture names (``available_models``) come without it, so a config naming one is
checked before Keras and its backend load (seconds). Every custom layer, loss, metric and
model class is registered with Keras under the ``segmodels`` package when its module is
imported; ``load_model`` imports them all first, so a saved model loads without
``custom_objects``.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

#: Public name -> the module that defines it, imported on first access (PEP 562).
_EXPORTS = {
    **dict.fromkeys(("EncoderGate", "EncoderWarmup"), "segmodels.encoder_unet"),
    "available_encoders": "segmodels.encoders",
    **dict.fromkeys(("CombinedLoss", "CrossEntropyLoss", "DiceLoss", "FocalLoss",
                     "FocalTverskyLoss", "JaccardLoss", "SegmentationLoss", "available_losses",
                     "build_loss"), "segmodels.losses"),
    **dict.fromkeys(("ConfusionMatrixMetric", "MacroF1", "MacroPrecision", "MacroRecall",
                     "MeanIoU", "PixelAccuracy", "class_metrics", "confusion_matrix",
                     "scored_classes", "scores_from_confusion"), "segmodels.metrics"),
    "StrideError": "segmodels.layers",
    **dict.fromkeys(("available_models", "build_model", "check_input_size", "model_stride"),
                    "segmodels.registry"),
}

#: Modules with classes registered with Keras (keras.saving) besides the architectures'.
_REGISTERING = ("segmodels.layers", "segmodels.losses", "segmodels.metrics")

__all__ = sorted([*_EXPORTS, "load_model", "register_keras_objects"])


def register_keras_objects() -> None:
    """Register every segmodels class with Keras, for code that calls
    ``keras.saving.load_model`` itself."""
    from segmodels.registry import architecture_modules

    for module in (*_REGISTERING, *architecture_modules()):
        importlib.import_module(module)


def load_model(path: str | Path, compile: bool = False) -> Any:
    """``keras.saving.load_model`` of a model saved with segmodels layers, losses or
    metrics; without ``compile`` (the default) the optimizer, loss and metrics are not
    restored (inference)."""
    register_keras_objects()
    import keras

    return keras.saving.load_model(path, compile=compile)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'segmodels' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})
