"""The loss and metric functions training and evaluation use, from segmodels.

Falls back to ``components._pending_segmodels`` until segmodels exports them."""

from __future__ import annotations

try:
    from segmodels import MeanIoU, build_loss, confusion_matrix, scores_from_confusion
except ImportError:  # segmodels' losses/metrics not merged yet
    from components._pending_segmodels import (
        MeanIoU,
        build_loss,
        confusion_matrix,
        scores_from_confusion,
    )

__all__ = ["MeanIoU", "build_loss", "confusion_matrix", "scores_from_confusion"]
