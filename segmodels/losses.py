"""Segmentation losses that honour an ignore index (nodata).

Every loss takes ``y_true`` as integer class ids of shape (N, H, W) or (N, H, W, 1) and
``y_pred`` as per-class probabilities (N, H, W, K). Pixels whose label equals
``ignore_index`` contribute nothing: they are masked out before any sum, and the
pixel-averaged losses divide by the number (or weight) of valid pixels only, so the value
does not depend on how much of a tile is nodata.

Each loss returns one scalar per batch (region losses such as Dice are defined over the
whole batch, not per sample). Classes are registered with Keras so a compiled model saved
to ``.keras`` loads back without ``custom_objects`` once ``segmodels`` is imported.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import keras
from keras import ops

_EPSILON = 1e-7
_PACKAGE = "segmodels"


def _prepare(y_true, y_pred, ignore_index: int | None):
    """-> (one-hot float32 (..., K) zeroed at ignored pixels, probs float32, valid (...))."""
    y_pred = ops.cast(y_pred, "float32")
    num_classes = y_pred.shape[-1]
    y_true = ops.convert_to_tensor(y_true)
    if len(y_true.shape) == len(y_pred.shape):
        y_true = ops.squeeze(y_true, axis=-1)
    y_true = ops.cast(y_true, "int32")
    if ignore_index is None:
        valid = ops.ones_like(y_true, dtype="float32")
    else:
        valid = ops.cast(ops.not_equal(y_true, ignore_index), "float32")
    safe_true = ops.where(valid > 0, y_true, ops.zeros_like(y_true))
    one_hot = ops.one_hot(safe_true, num_classes, dtype="float32") * valid[..., None]
    return one_hot, y_pred, valid


def _class_weight_tensor(class_weights: Sequence[float] | None, num_classes: int):
    if class_weights is None:
        return ops.ones((num_classes,), dtype="float32")
    if len(class_weights) != num_classes:
        raise ValueError(
            f"class_weights has {len(class_weights)} entries, the model has {num_classes} classes"
        )
    return ops.convert_to_tensor(list(class_weights), dtype="float32")


class SegmentationLoss(keras.losses.Loss):
    """Base: stores the ignore index and optional per-class weights."""

    def __init__(self, ignore_index: int | None = 255,
                 class_weights: Sequence[float] | None = None, name: str | None = None,
                 reduction: str = "sum_over_batch_size", dtype=None):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.ignore_index = None if ignore_index is None else int(ignore_index)
        self.class_weights = None if class_weights is None else [float(w) for w in class_weights]

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(ignore_index=self.ignore_index, class_weights=self.class_weights)
        return config


@keras.saving.register_keras_serializable(package=_PACKAGE)
class CrossEntropyLoss(SegmentationLoss):
    """Pixel-wise categorical cross-entropy, averaged over valid pixels.

    With class weights w this is ``sum(w[y] * -log p[y]) / sum(w[y])`` over valid pixels
    (the same convention as PyTorch's weighted ``CrossEntropyLoss``).
    """

    def __init__(self, ignore_index: int | None = 255,
                 class_weights: Sequence[float] | None = None, name: str = "cross_entropy",
                 **kwargs):
        super().__init__(ignore_index, class_weights, name=name, **kwargs)

    def call(self, y_true, y_pred):
        one_hot, probs, _ = _prepare(y_true, y_pred, self.ignore_index)
        weights = _class_weight_tensor(self.class_weights, probs.shape[-1])
        pixel_weight = ops.sum(one_hot * weights, axis=-1)
        log_p = ops.log(ops.clip(probs, _EPSILON, 1.0))
        nll = -ops.sum(one_hot * log_p, axis=-1)
        return ops.sum(pixel_weight * nll) / ops.maximum(ops.sum(pixel_weight), _EPSILON)


def _region_sums(y_true, y_pred, ignore_index):
    """Per-class soft TP, FP, FN summed over every valid pixel of the batch."""
    one_hot, probs, valid = _prepare(y_true, y_pred, ignore_index)
    probs = probs * valid[..., None]
    axes = tuple(range(len(probs.shape) - 1))
    tp = ops.sum(probs * one_hot, axis=axes)
    fp = ops.sum(probs * (1.0 - one_hot), axis=axes)
    fn = ops.sum((1.0 - probs) * one_hot, axis=axes)
    return tp, fp, fn


def _weighted_class_mean(values, class_weights):
    weights = _class_weight_tensor(class_weights, values.shape[-1])
    return ops.sum(values * weights) / ops.sum(weights)


class _OverlapLoss(SegmentationLoss):
    """``1 - class mean of an overlap score`` over soft per-class TP, FP, FN of the batch;
    the class mean is weighted by ``class_weights`` when given."""

    def __init__(self, ignore_index: int | None = 255,
                 class_weights: Sequence[float] | None = None, smooth: float = 1.0,
                 name: str | None = None, **kwargs):
        super().__init__(ignore_index, class_weights, name=name, **kwargs)
        self.smooth = float(smooth)

    def score(self, tp, fp, fn):
        raise NotImplementedError

    def call(self, y_true, y_pred):
        tp, fp, fn = _region_sums(y_true, y_pred, self.ignore_index)
        return 1.0 - _weighted_class_mean(self.score(tp, fp, fn), self.class_weights)

    def get_config(self) -> dict:
        return {**super().get_config(), "smooth": self.smooth}


@keras.saving.register_keras_serializable(package=_PACKAGE)
class DiceLoss(_OverlapLoss):
    """``1 - mean_c (2 TP_c + s) / (2 TP_c + FP_c + FN_c + s)``."""

    def __init__(self, *args, name: str = "dice", **kwargs):
        super().__init__(*args, name=name, **kwargs)

    def score(self, tp, fp, fn):
        return (2.0 * tp + self.smooth) / (2.0 * tp + fp + fn + self.smooth)


@keras.saving.register_keras_serializable(package=_PACKAGE)
class JaccardLoss(_OverlapLoss):
    """Soft IoU loss: ``1 - mean_c (TP_c + s) / (TP_c + FP_c + FN_c + s)``."""

    def __init__(self, *args, name: str = "jaccard", **kwargs):
        super().__init__(*args, name=name, **kwargs)

    def score(self, tp, fp, fn):
        return (tp + self.smooth) / (tp + fp + fn + self.smooth)


@keras.saving.register_keras_serializable(package=_PACKAGE)
class FocalLoss(SegmentationLoss):
    """Focal loss (Lin et al., 2017): ``-alpha[y] (1 - p_y)^gamma log p_y`` averaged over
    valid pixels; ``class_weights`` play the role of alpha (1 when not given)."""

    def __init__(self, ignore_index: int | None = 255,
                 class_weights: Sequence[float] | None = None, gamma: float = 2.0,
                 name: str = "focal", **kwargs):
        super().__init__(ignore_index, class_weights, name=name, **kwargs)
        self.gamma = float(gamma)

    def call(self, y_true, y_pred):
        one_hot, probs, valid = _prepare(y_true, y_pred, self.ignore_index)
        alpha = ops.sum(one_hot * _class_weight_tensor(self.class_weights, probs.shape[-1]), -1)
        p_true = ops.clip(ops.sum(one_hot * probs, axis=-1), _EPSILON, 1.0 - _EPSILON)
        focal = -alpha * ops.power(1.0 - p_true, self.gamma) * ops.log(p_true)
        return ops.sum(focal * valid) / ops.maximum(ops.sum(valid), 1.0)

    def get_config(self) -> dict:
        return {**super().get_config(), "gamma": self.gamma}


@keras.saving.register_keras_serializable(package=_PACKAGE)
class FocalTverskyLoss(SegmentationLoss):
    """Focal Tversky loss (Abraham & Khan, 2019): ``mean_c (1 - TI_c)^gamma`` with
    ``TI_c = (TP + s) / (TP + alpha FN + beta FP + s)``. alpha > beta penalises missed
    pixels more than false alarms (good for small classes)."""

    def __init__(self, ignore_index: int | None = 255,
                 class_weights: Sequence[float] | None = None, alpha: float = 0.7,
                 beta: float = 0.3, gamma: float = 0.75, smooth: float = 1.0,
                 name: str = "focal_tversky", **kwargs):
        super().__init__(ignore_index, class_weights, name=name, **kwargs)
        self.alpha, self.beta = float(alpha), float(beta)
        self.gamma, self.smooth = float(gamma), float(smooth)

    def call(self, y_true, y_pred):
        tp, fp, fn = _region_sums(y_true, y_pred, self.ignore_index)
        tversky = (tp + self.smooth) / (tp + self.alpha * fn + self.beta * fp + self.smooth)
        # floor at epsilon: x**gamma with gamma < 1 has an infinite slope at 0, which turns a
        # perfectly predicted class into NaN gradients
        per_class = ops.power(ops.maximum(1.0 - tversky, _EPSILON), self.gamma)
        return _weighted_class_mean(per_class, self.class_weights)

    def get_config(self) -> dict:
        return {**super().get_config(), "alpha": self.alpha, "beta": self.beta,
                "gamma": self.gamma, "smooth": self.smooth}


LOSSES: dict[str, type[SegmentationLoss]] = {
    "ce": CrossEntropyLoss,
    "dice": DiceLoss,
    "jaccard": JaccardLoss,
    "focal": FocalLoss,
    "focal_tversky": FocalTverskyLoss,
}
_ALIASES = {"cross_entropy": "ce", "crossentropy": "ce", "sparse_categorical_crossentropy": "ce",
            "iou": "jaccard", "soft_iou": "jaccard", "tversky": "focal_tversky"}


def available_losses() -> list[str]:
    return sorted(LOSSES)


def _loss_class(name: str) -> type[SegmentationLoss]:
    key = _ALIASES.get(name.lower(), name.lower())
    if key not in LOSSES:
        raise ValueError(f"unknown loss {name!r}; choose one of {available_losses()}")
    return LOSSES[key]


@keras.saving.register_keras_serializable(package=_PACKAGE)
class CombinedLoss(SegmentationLoss):
    """Weighted sum of the losses above, e.g. ``{"ce": 1.0, "dice": 0.5}``."""

    def __init__(self, terms: Mapping[str, float], ignore_index: int | None = 255,
                 class_weights: Sequence[float] | None = None, name: str = "combined",
                 **kwargs):
        super().__init__(ignore_index, class_weights, name=name, **kwargs)
        if not terms:
            raise ValueError("a combined loss needs at least one term")
        self.terms = {str(k): float(v) for k, v in terms.items()}
        self._losses = [
            (weight, _loss_class(term)(ignore_index=ignore_index, class_weights=class_weights))
            for term, weight in self.terms.items()
        ]

    def call(self, y_true, y_pred):
        total = 0.0
        for weight, loss in self._losses:
            total = total + weight * loss.call(y_true, y_pred)
        return total

    def get_config(self) -> dict:
        return {**super().get_config(), "terms": dict(self.terms)}


def build_loss(spec: str | Mapping[str, float], num_classes: int | None = None,
               ignore_index: int | None = 255,
               class_weights: Sequence[float] | None = None) -> SegmentationLoss:
    """Loss from a name ("ce", "dice", "jaccard", "focal", "focal_tversky") or a mapping
    name -> weight for a weighted sum. ``num_classes`` validates ``class_weights``."""
    if class_weights is not None and num_classes is not None and len(class_weights) != num_classes:
        raise ValueError(
            f"class_weights has {len(class_weights)} entries, expected num_classes={num_classes}"
        )
    if isinstance(spec, Mapping):
        if len(spec) == 1 and next(iter(spec.values())) == 1.0:
            spec = next(iter(spec))
        else:
            return CombinedLoss(spec, ignore_index=ignore_index, class_weights=class_weights)
    if not isinstance(spec, str):
        raise ValueError(f"loss spec must be a name or a mapping name -> weight, got {spec!r}")
    if "+" in spec:  # "ce+dice" -> equal weights
        return CombinedLoss({part.strip(): 1.0 for part in spec.split("+")},
                            ignore_index=ignore_index, class_weights=class_weights)
    return _loss_class(spec)(ignore_index=ignore_index, class_weights=class_weights)
