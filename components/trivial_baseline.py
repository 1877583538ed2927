"""The trivial baseline an evaluation is read against: the train split's majority class
predicted everywhere, scored on the very pixels the model was scored on. Data with no train
split (a source given to ``segpipe evaluate``) takes the model's own training majority, which
registration records in its serving config, else the majority of the labels scored
(``choose_baseline``).

On imbalanced data a model can score a respectable-looking mIoU and still be worse than
answering "background" everywhere (tea chips: a champion at mIoU 0.42, tea IoU 0.02, where
all-background scores 0.46). Each evaluation therefore records the baseline beside its
scores under the same names prefixed ``trivial_`` (``trivial_miou``, ``trivial_pixel_accuracy``,
..., tile level ``tile_trivial_miou``, ...; MLflow ``test_trivial_miou``), warns in one
line when the model does not beat it or when a class present in the labels is essentially
never found, and the champion gate (components/champion_gate.py) does not promote such a
model unless ``registry.promote_below_trivial`` says so.

The baseline's macro means average over the classes the model's own do (in the truth or the
model's prediction; ``trivial_metrics``): a class the test truth lacks but the model predicts
scores 0 for the model, and must count for the baseline too (0: there is nothing of it to
find), or the baseline would average over fewer classes than the model and the comparison
would not be like for like (a model at 0.539 over two classes, 0.3597 over three, lost to a
baseline's 0.4883 over two)."""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from components.dataset_paths import PreparedDataset
from components.evaluation_scores import TILE_PREFIX, summary_metrics

#: A class present in the labels whose IoU is below this is named as essentially not found.
MISSED_CLASS_IOU = 0.01


class QualityWarning(UserWarning):
    """The evaluated model is no better than trivial, or misses a class."""


def majority_class(class_counts: list[dict[int, int]], num_classes: int) -> int:
    """The class with the most labelled pixels over ``class_counts`` (one dict per tile:
    class id -> pixels); the lowest id on a tie."""
    totals = np.zeros(num_classes, np.int64)
    for counts in class_counts:
        for class_id, pixels in counts.items():
            if 0 <= int(class_id) < num_classes:
                totals[int(class_id)] += int(pixels)
    if not totals.any():
        raise ValueError("no labelled pixel to find the majority class from")
    return int(np.argmax(totals))


def train_majority(dataset: PreparedDataset) -> int | None:
    """The train split's majority class; None when the train split holds no labelled pixel
    (a source given to ``segpipe evaluate``, a dataset made for evaluation only)."""
    train = set(dataset.tile_ids("train"))
    counts = [t.class_counts for t in dataset.tile_manifest.tiles if t.id in train]
    try:
        return majority_class(counts, dataset.class_map.num_classes)
    except ValueError:
        return None


#: Why the baseline answers the class it does (``EvaluationResult.majority_origin``).
FROM_TRAIN_SPLIT = "the train split's majority class"
FROM_MODEL = "the majority class of the model's train split"
FROM_LABELS = ("majority of the scored labels; the model does not record its training "
               "majority")


@dataclass(frozen=True)
class Baseline:
    """The class the trivial baseline answers everywhere, and why that one."""

    class_id: int
    origin: str


def choose_baseline(dataset: PreparedDataset, model_majority: int | None,
                    cm: np.ndarray) -> Baseline:
    """The data's train split majority class (the pipeline's own evaluation, a prepared
    dataset with a train split); for data with none, the majority class the model records
    of its own train split (``model_majority``: its serving config's
    ``train_majority_class``), else, for a model of older segpipe, the majority class of
    the labels scored (``cm``'s rows)."""
    if (majority := train_majority(dataset)) is not None:
        return Baseline(majority, FROM_TRAIN_SPLIT)
    if model_majority is not None:
        return Baseline(model_majority, FROM_MODEL)
    return Baseline(int(np.argmax(np.asarray(cm).sum(axis=1))), FROM_LABELS)


def trivial_confusion(cm: np.ndarray, predicted: int) -> np.ndarray:
    """The confusion matrix of answering ``predicted`` on every pixel ``cm`` counts (rows:
    truth, columns: prediction)."""
    cm = np.asarray(cm)
    trivial = np.zeros_like(cm)
    trivial[:, predicted] = cm.sum(axis=1)
    return trivial


def _model_classes(cm: np.ndarray) -> np.ndarray:
    """The classes the model's scores on ``cm`` count: in its truth or its prediction."""
    from segmodels.metrics import scored_classes  # Keras: not for the gate's config checks

    return scored_classes(cm)


def trivial_miou(cm: np.ndarray, predicted: int) -> float:
    """mIoU of answering ``predicted`` everywhere on ``cm``'s pixels (the model's confusion
    matrix), averaged over the classes the model's mIoU counts."""
    from segmodels import scores_from_confusion

    return float(scores_from_confusion(trivial_confusion(cm, predicted),
                                       _model_classes(cm))["miou"])


def trivial_metrics(cm: np.ndarray, predicted: int, names: list[str],
                    prefix: str) -> dict[str, float]:
    """The baseline's scores (``summary_metrics``, keys prefixed ``prefix``) of answering
    ``predicted`` on ``cm``'s pixels, averaged over the classes the model's scores on
    ``cm`` count."""
    return summary_metrics(trivial_confusion(cm, predicted), names, prefix,
                           _model_classes(cm))


#: Prefix of the baseline's scores in an evaluation's metrics: scene level, and tile level
#: after TILE_PREFIX.
TRIVIAL_PREFIX = "trivial_"


def trivial_key(metric: str) -> str:
    """The baseline's metric name for a gate ``metric``: miou -> trivial_miou,
    pixel_accuracy -> trivial_pixel_accuracy, tile_miou -> tile_trivial_miou."""
    if metric.startswith(TILE_PREFIX):
        return f"{TILE_PREFIX}{TRIVIAL_PREFIX}{metric[len(TILE_PREFIX):]}"
    return f"{TRIVIAL_PREFIX}{metric}"


def quality_warnings(miou: float, baseline: float, majority: str,
                     class_iou: dict[str, float | None], support: dict[str, int],
                     what: str, origin: str = FROM_TRAIN_SPLIT) -> list[str]:
    """One line per problem of ``what``'s scores: not beating the trivial baseline
    (``majority`` everywhere, chosen as ``origin`` says), and each class with labelled
    pixels whose IoU is about 0. Also issued as QualityWarning."""
    lines = []
    if not miou > baseline:
        lines.append(f"{what}: mIoU {miou:.4f} does not beat the trivial baseline "
                     f"{baseline:.4f} ('{majority}' everywhere, {origin}); the model is no "
                     f"better than answering '{majority}'")
    missed = [name for name, iou in class_iou.items()
              if support.get(name, 0) > 0 and iou is not None and iou < MISSED_CLASS_IOU]
    for name in missed:
        lines.append(f"{what}: class '{name}' is essentially never found (IoU "
                     f"{class_iou[name]:.4f} on {support[name]} labelled pixels)")
    for line in lines:
        warnings.warn(line, QualityWarning, stacklevel=2)
    return lines
