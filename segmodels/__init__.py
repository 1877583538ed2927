"""Keras 3 segmentation models, losses and metrics. Imports keras and numpy only.

Every custom layer, loss, metric and model class is registered with Keras under the
``segmodels`` package, so ``keras.models.load_model(path)`` needs no ``custom_objects`` --
as long as ``segmodels`` has been imported first.
"""

from __future__ import annotations

from segmodels.encoder_unet import EncoderGate, EncoderWarmup
from segmodels.encoders import available_encoders
from segmodels.losses import (
    CombinedLoss,
    CrossEntropyLoss,
    DiceLoss,
    FocalLoss,
    FocalTverskyLoss,
    JaccardLoss,
    SegmentationLoss,
    available_losses,
    build_loss,
)
from segmodels.metrics import (
    ConfusionMatrixMetric,
    MacroF1,
    MacroPrecision,
    MacroRecall,
    MeanIoU,
    PixelAccuracy,
    class_metrics,
    confusion_matrix,
    scores_from_confusion,
)
from segmodels.registry import (
    StrideError,
    available_models,
    build_model,
    check_input_size,
    model_stride,
)

__all__ = [
    "CombinedLoss",
    "ConfusionMatrixMetric",
    "CrossEntropyLoss",
    "DiceLoss",
    "EncoderGate",
    "EncoderWarmup",
    "FocalLoss",
    "FocalTverskyLoss",
    "JaccardLoss",
    "MacroF1",
    "MacroPrecision",
    "MacroRecall",
    "MeanIoU",
    "PixelAccuracy",
    "SegmentationLoss",
    "StrideError",
    "available_encoders",
    "available_losses",
    "available_models",
    "build_loss",
    "build_model",
    "check_input_size",
    "class_metrics",
    "confusion_matrix",
    "model_stride",
    "scores_from_confusion",
]
