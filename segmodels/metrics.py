"""Segmentation metrics accumulated from a confusion matrix.

Batch averages of IoU are not the dataset IoU, so every metric here accumulates a K x K
confusion matrix (rows: truth, columns: prediction; ignored pixels excluded) and derives
its score from the totals. Two faces of the same definitions:

* ``confusion_matrix`` / ``scores_from_confusion``: pure NumPy, for evaluation reports.
* ``ConfusionMatrixMetric`` and its subclasses (``MeanIoU``, ``PixelAccuracy``, ...):
  ``keras.metrics.Metric`` objects for ``model.compile``, each returning a scalar.

A class absent from both truth and prediction has no defined score: NaN per class and
left out of the macro means. A class present in one but not the other scores 0 and counts.
Another predictor scored against the same truth (a baseline) is compared like for like by
averaging its scores over the same classes: ``scores_from_confusion(its_cm,
counted=scored_classes(model_cm))``.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

_PACKAGE = "segmodels"


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int,
                     ignore_index: int | None = 255) -> np.ndarray:
    """K x K int64 counts, rows = truth, columns = prediction.

    ``y_pred`` is class ids with the shape of ``y_true`` or probabilities with one more
    trailing axis (argmax is taken). Pixels labelled ``ignore_index`` are skipped; other
    labels outside 0..K-1 are an error.
    """
    y_true = np.asarray(y_true)
    y_pred = np.asarray(y_pred)
    if y_true.ndim == y_pred.ndim and y_true.shape[-1] == 1 and y_pred.shape[-1] > 1:
        y_true = y_true[..., 0]
    if y_pred.ndim == y_true.ndim + 1:
        y_pred = np.argmax(y_pred, axis=-1)
    if y_true.shape != y_pred.shape:
        raise ValueError(f"y_true shape {y_true.shape} does not match y_pred {y_pred.shape}")
    truth = y_true.reshape(-1).astype(np.int64)
    pred = y_pred.reshape(-1).astype(np.int64)
    if ignore_index is not None:
        keep = truth != ignore_index
        truth, pred = truth[keep], pred[keep]
    for label, values in (("y_true", truth), ("y_pred", pred)):
        if values.size and (values.min() < 0 or values.max() >= num_classes):
            raise ValueError(f"{label} has class ids outside 0..{num_classes - 1} "
                             f"(ignore_index={ignore_index})")
    return np.bincount(truth * num_classes + pred, minlength=num_classes**2).reshape(
        num_classes, num_classes)


def _ratio(numerator: np.ndarray, denominator: np.ndarray, present: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(denominator > 0, numerator / np.maximum(denominator, 1), 0.0)
    return np.where(present, out, np.nan)


def scored_classes(cm: np.ndarray) -> np.ndarray:
    """The classes ``cm``'s scores count (bool per class): those in its truth or its
    prediction."""
    cm = np.asarray(cm)
    return (cm.sum(axis=1) + cm.sum(axis=0)) > 0


def scores_from_confusion(cm: np.ndarray, counted: np.ndarray | None = None) -> dict:
    """Per-class iou/f1/precision/recall lists, their macro means (miou, f1, precision,
    recall), pixel_accuracy and the support (true pixels) per class. ``counted`` (bool per
    class; default ``scored_classes(cm)``) says which classes are scored and averaged, the
    others NaN: another matrix's set, to average two predictors over the same classes (a
    counted class with no pixel in truth or prediction scores 0: nothing of it found)."""
    cm = np.asarray(cm, dtype=np.float64)
    tp = np.diag(cm)
    true_count = cm.sum(axis=1)
    pred_count = cm.sum(axis=0)
    fp, fn = pred_count - tp, true_count - tp
    present = scored_classes(cm) if counted is None else np.asarray(counted, dtype=bool)
    if present.shape != tp.shape:
        raise ValueError(f"counted has shape {present.shape}; the confusion matrix has "
                         f"{tp.shape[0]} classes")
    iou = _ratio(tp, tp + fp + fn, present)
    precision = _ratio(tp, pred_count, present)
    recall = _ratio(tp, true_count, present)
    f1 = _ratio(2 * tp, 2 * tp + fp + fn, present)
    total = cm.sum()

    def mean(values: np.ndarray) -> float:
        return float(np.mean(values[present])) if present.any() else float("nan")

    return {
        "iou": iou.tolist(),
        "f1": f1.tolist(),
        "precision": precision.tolist(),
        "recall": recall.tolist(),
        "support": true_count.astype(np.int64).tolist(),
        "miou": mean(iou),
        "f1_macro": mean(f1),
        "precision_macro": mean(precision),
        "recall_macro": mean(recall),
        "pixel_accuracy": float(tp.sum() / total) if total else float("nan"),
    }


SCORES = ("miou", "pixel_accuracy", "f1_macro", "precision_macro", "recall_macro",
          "iou", "f1", "precision", "recall")


@keras.saving.register_keras_serializable(package=_PACKAGE)
class ConfusionMatrixMetric(keras.metrics.Metric):
    """Accumulates the confusion matrix; ``result()`` is the scalar ``score``.

    ``score`` is one of ``miou``, ``pixel_accuracy``, ``f1_macro``, ``precision_macro``,
    ``recall_macro`` or a per-class score (``iou``, ``f1``, ``precision``, ``recall``) with
    ``class_id``. Counts are int32 (exact up to 2**31 pixels per cell).
    """

    def __init__(self, num_classes: int, ignore_index: int | None = 255, score: str = "miou",
                 class_id: int | None = None, name: str | None = None, dtype=None):
        if score not in SCORES:
            raise ValueError(f"unknown score {score!r}; choose one of {SCORES}")
        per_class = score in ("iou", "f1", "precision", "recall")
        if per_class and (class_id is None or not 0 <= class_id < num_classes):
            raise ValueError(f"score {score!r} needs class_id in 0..{num_classes - 1}")
        name = name or (f"{score}_{class_id}" if per_class else score)
        super().__init__(name=name, dtype=dtype or "float32")
        self.num_classes = int(num_classes)
        self.ignore_index = None if ignore_index is None else int(ignore_index)
        self.score = score
        self.class_id = None if class_id is None else int(class_id)
        self.confusion = self.add_variable(
            shape=(self.num_classes, self.num_classes), initializer="zeros", dtype="int32",
            name="confusion")

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_true = ops.convert_to_tensor(y_true)
        y_pred = ops.convert_to_tensor(y_pred)
        if (len(y_true.shape) == len(y_pred.shape) and y_true.shape[-1] == 1
                and y_pred.shape[-1] not in (None, 1)):
            y_true = ops.squeeze(y_true, axis=-1)
        if len(y_pred.shape) == len(y_true.shape) + 1:
            y_pred = ops.argmax(y_pred, axis=-1)
        y_true = ops.cast(y_true, "int32")
        valid = ops.ones_like(y_true, dtype="float32")
        if self.ignore_index is not None:
            valid = ops.cast(ops.not_equal(y_true, self.ignore_index), "float32")
        if sample_weight is not None:
            weight = ops.cast(sample_weight, "float32")
            while len(weight.shape) < len(valid.shape):
                weight = ops.expand_dims(weight, -1)
            valid = valid * weight
        y_true = ops.reshape(y_true, (-1,))
        y_pred = ops.reshape(ops.cast(y_pred, "int32"), (-1,))
        valid = ops.reshape(valid, (-1,))
        # one-hot products instead of bincount: the same code compiles under XLA on every
        # backend, and a batch's counts stay exact in float32 (< 2**24 pixels per batch).
        truth = ops.one_hot(ops.where(valid > 0, y_true, 0), self.num_classes) * valid[:, None]
        pred = ops.one_hot(y_pred, self.num_classes)
        batch = ops.matmul(ops.transpose(truth), pred)
        self.confusion.assign_add(ops.cast(ops.round(batch), "int32"))

    def result(self):
        cm = ops.cast(self.confusion, "float32")
        tp = ops.diagonal(cm)
        true_count, pred_count = ops.sum(cm, axis=1), ops.sum(cm, axis=0)
        present = ops.cast((true_count + pred_count) > 0, "float32")

        def ratio(numerator, denominator):
            return ops.where(denominator > 0, numerator / ops.maximum(denominator, 1.0), 0.0)

        if self.score == "pixel_accuracy":
            return ratio(ops.sum(tp), ops.sum(cm))
        fp, fn = pred_count - tp, true_count - tp
        base = self.score.removesuffix("_macro")
        per_class = {
            "miou": lambda: ratio(tp, tp + fp + fn),
            "iou": lambda: ratio(tp, tp + fp + fn),
            "f1": lambda: ratio(2 * tp, 2 * tp + fp + fn),
            "precision": lambda: ratio(tp, pred_count),
            "recall": lambda: ratio(tp, true_count),
        }[base]()
        if self.class_id is not None:
            return per_class[self.class_id]
        return ops.sum(per_class * present) / ops.maximum(ops.sum(present), 1.0)

    def reset_state(self):
        self.confusion.assign(ops.zeros((self.num_classes, self.num_classes), dtype="int32"))

    def get_config(self) -> dict:
        return {"num_classes": self.num_classes, "ignore_index": self.ignore_index,
                "score": self.score, "class_id": self.class_id, "name": self.name,
                "dtype": self.dtype}


def _fixed_score(score: str, default_name: str):
    """A ConfusionMatrixMetric subclass with ``score`` fixed, so compile lists read well."""

    class _Fixed(ConfusionMatrixMetric):
        def __init__(self, num_classes: int, ignore_index: int | None = 255,
                     name: str = default_name, dtype=None, **kwargs):
            kwargs.pop("score", None)
            kwargs.pop("class_id", None)
            super().__init__(num_classes, ignore_index, score=score, name=name, dtype=dtype)

        def get_config(self) -> dict:
            config = super().get_config()
            config.pop("score")
            config.pop("class_id")
            return config

    return _Fixed


@keras.saving.register_keras_serializable(package=_PACKAGE)
class MeanIoU(_fixed_score("miou", "miou")):
    """Mean IoU over classes present in truth or prediction (ignore index excluded)."""


@keras.saving.register_keras_serializable(package=_PACKAGE)
class PixelAccuracy(_fixed_score("pixel_accuracy", "pixel_accuracy")):
    """Fraction of valid pixels classified correctly."""


@keras.saving.register_keras_serializable(package=_PACKAGE)
class MacroF1(_fixed_score("f1_macro", "f1_macro")):
    """Mean per-class F1 (Dice) over present classes."""


@keras.saving.register_keras_serializable(package=_PACKAGE)
class MacroPrecision(_fixed_score("precision_macro", "precision_macro")):
    """Mean per-class precision over present classes."""


@keras.saving.register_keras_serializable(package=_PACKAGE)
class MacroRecall(_fixed_score("recall_macro", "recall_macro")):
    """Mean per-class recall over present classes."""


def class_metrics(num_classes: int, ignore_index: int | None = 255,
                  scores: tuple[str, ...] = ("iou",),
                  class_names: list[str] | None = None) -> list[ConfusionMatrixMetric]:
    """One scalar metric per class and score, named e.g. ``iou_water`` (or ``iou_2``)."""
    names = class_names or [str(c) for c in range(num_classes)]
    return [ConfusionMatrixMetric(num_classes, ignore_index, score=score, class_id=c,
                                  name=f"{score}_{names[c]}")
            for score in scores for c in range(num_classes)]
