"""Stand-ins for segmodels' losses and metrics until they land on main.

The models branch owns ``segmodels.build_loss``, ``segmodels.MeanIoU``,
``segmodels.confusion_matrix`` and ``segmodels.scores_from_confusion``; training and
evaluation import them through ``components.seg_api`` which prefers segmodels. Delete this
module once segmodels exports them. Only cross-entropy is provided here.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops


def build_loss(spec, num_classes: int, ignore_index: int = 255, class_weights=None):
    if spec != "ce":
        raise ValueError(f"loss {spec!r} needs segmodels.build_loss; only 'ce' is available")
    weights = None if class_weights is None else np.asarray(class_weights, dtype="float32")

    def masked_cross_entropy(y_true, y_pred):
        labels = ops.cast(y_true, "int32")
        valid = ops.not_equal(labels, ignore_index)
        safe = ops.where(valid, labels, 0)
        ce = ops.sparse_categorical_crossentropy(safe, ops.cast(y_pred, "float32"))
        w = ops.cast(valid, "float32")
        if weights is not None:
            w = w * ops.take(ops.convert_to_tensor(weights), safe)
        return ops.sum(ce * w) / ops.maximum(ops.sum(w), 1.0)

    return masked_cross_entropy


class MeanIoU(keras.metrics.Metric):
    """Dataset-level mIoU from an accumulated confusion matrix; ignored pixels skipped."""

    def __init__(self, num_classes: int, ignore_index: int = 255, name: str = "miou", **kw):
        super().__init__(name=name, **kw)
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.cm = self.add_variable(shape=(num_classes, num_classes), initializer="zeros",
                                    name="cm", dtype="float32")

    def update_state(self, y_true, y_pred, sample_weight=None):
        k = self.num_classes
        labels = ops.reshape(ops.cast(y_true, "int32"), [-1])
        preds = ops.reshape(ops.cast(ops.argmax(y_pred, axis=-1), "int32"), [-1])
        valid = ops.logical_and(ops.not_equal(labels, self.ignore_index), labels < k)
        index = ops.where(valid, labels * k + preds, k * k)
        counts = ops.bincount(index, minlength=k * k + 1)[: k * k]
        self.cm.assign_add(ops.reshape(ops.cast(counts, "float32"), (k, k)))

    def result(self):
        tp = ops.diagonal(self.cm)
        union = ops.sum(self.cm, axis=0) + ops.sum(self.cm, axis=1) - tp
        present = ops.cast(union > 0, "float32")
        iou = tp / ops.maximum(union, 1.0)
        return ops.sum(iou * present) / ops.maximum(ops.sum(present), 1.0)

    def reset_state(self):
        self.cm.assign(ops.zeros((self.num_classes, self.num_classes)))

    def get_config(self):
        return {**super().get_config(), "num_classes": self.num_classes,
                "ignore_index": self.ignore_index}


def confusion_matrix(y_true, y_pred, num_classes: int, ignore_index: int = 255) -> np.ndarray:
    y_true = np.asarray(y_true).ravel().astype(np.int64)
    y_pred = np.asarray(y_pred).ravel().astype(np.int64)
    valid = (y_true != ignore_index) & (y_true < num_classes)
    idx = y_true[valid] * num_classes + y_pred[valid]
    return np.bincount(idx, minlength=num_classes**2).reshape(num_classes, num_classes)


def scores_from_confusion(cm) -> dict:
    cm = np.asarray(cm, dtype=np.float64)
    tp = np.diag(cm)
    support, predicted = cm.sum(1), cm.sum(0)
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = tp / (support + predicted - tp)
        precision = tp / predicted
        recall = tp / support
        f1 = 2 * tp / (support + predicted)

    def mean(x):
        x = x[np.isfinite(x)]
        return float(x.mean()) if x.size else 0.0

    def clean(x):
        return [float(v) if np.isfinite(v) else 0.0 for v in x]

    total = cm.sum()
    return {
        "iou": clean(iou), "f1": clean(f1), "precision": clean(precision), "recall": clean(recall),
        "miou": mean(iou), "f1_macro": mean(f1), "precision_macro": mean(precision),
        "recall_macro": mean(recall),
        "pixel_accuracy": float(tp.sum() / total) if total else 0.0,
    }
