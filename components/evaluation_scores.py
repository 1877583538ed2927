"""The scores of an evaluation: per-class IoU/F1/precision/recall and the summary scores
from a confusion matrix, and ``EvaluationResult``, what the evaluate step writes as
metrics.json (components/evaluate.py). Apart from the step, so the report, the registry and
the pipeline's wrappers read a result without loading Keras, TensorFlow or MLflow."""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel, Field

from components.evaluation_report import SCALARS
from components.training_ground import SeenGround

#: Prefix of the tile-level metrics (``tile_miou``...).
TILE_PREFIX = "tile_"


class ClassScores(BaseModel):
    """Scores of one class; None where the class is in neither truth nor prediction."""

    name: str
    iou: float | None
    f1: float | None
    precision: float | None
    recall: float | None
    support: int


class EvaluationResult(BaseModel):
    architecture: str
    model_uri: str | None = Field(None, description="the logged model scored (segpipe "
                                  "evaluate); None for the pipeline's freshly trained one")
    split: str
    split_digest: str
    dataset_digest: str
    scene_count: int
    tile_count: int
    pixel_count: int = Field(description="scored pixels of the scenes, ground that "
                             "overlapping scenes repeat at most once")
    repeated_pixels_skipped: int = Field(0, description="pixels of scenes (labelled and "
                                         "answered by the model, so they would have been "
                                         "scored) left out of the scene-level scores as "
                                         "ground an earlier scene holds with the same pixels "
                                         "and labels: repeated_pixels_scored_earlier + "
                                         "repeated_pixels_other_split "
                                         "(components/scene_repeats.py)")
    repeated_pixels_scored_earlier: int = Field(0, description="of repeated_pixels_skipped, "
                                                "those an earlier scene of this split scores "
                                                "(counted once)")
    repeated_pixels_other_split: int = Field(0, description="of repeated_pixels_skipped, "
                                             "those whose ground is another split's (or left "
                                             "out by the split) in the earlier scene: scored "
                                             "nowhere in this split")
    tile_pixel_count: int
    class_names: list[str]
    majority_class: str | None = Field(None, description="the trivial baseline's answer "
                                       "everywhere, a majority class (majority_origin: "
                                       "which)")
    majority_origin: str | None = Field(None, description="why that class: the train "
                                        "split's majority, the model's (data with no train "
                                        "split), or the scored labels' (a model that does "
                                        "not record its own)")
    metrics: dict[str, float] = Field(description="scene level: miou, f1_macro, "
                                      "precision_macro, recall_macro, pixel_accuracy, "
                                      "iou_<class>, and each of them prefixed trivial_ (the "
                                      "majority class everywhere, on the same pixels); "
                                      "tile level: the "
                                      "same prefixed tile_; absent classes have no iou_ entry")
    class_iou: dict[str, float | None] = Field(description="scene-level IoU per class; None: "
                                               "absent (no truth, no prediction)")
    tile_class_iou: dict[str, float | None]
    per_class: list[ClassScores]
    tile_per_class: list[ClassScores]
    confusion_matrix: list[list[int]]
    tile_confusion_matrix: list[list[int]]
    metrics_path: str
    report_md: str
    report_html: str
    confusion_png: str
    overlays_png: str | None
    mlflow_run_id: str | None
    seen_ground: SeenGround | None = Field(
        None, description="how much of the scored tiles lie on the ground the model was "
        "trained or selected on (its train and validation splits; "
        "components/training_ground.py); None: not checked (the pipeline's own test split, or "
        "a model registered without that record)")


def _finite(value: float) -> float | None:
    """NaN (a class absent from truth and prediction has no score) -> None, JSON-safe."""
    return float(value) if value is not None and np.isfinite(value) else None


def _scores(cm: np.ndarray, counted: np.ndarray | None = None) -> dict:
    # segmodels.metrics loads Keras (and its backend): only when scores are computed, so a
    # result is read without it.
    from segmodels.metrics import scores_from_confusion

    return scores_from_confusion(cm, counted)


def class_scores(cm: np.ndarray, names: list[str],
                 counted: np.ndarray | None = None) -> list[ClassScores]:
    """Each class's scores; ``counted``: which classes are scored (segmodels.metrics
    scores_from_confusion)."""
    scores = _scores(cm, counted)
    return [ClassScores(name=n, iou=_finite(scores["iou"][i]), f1=_finite(scores["f1"][i]),
                        precision=_finite(scores["precision"][i]),
                        recall=_finite(scores["recall"][i]), support=int(cm[i].sum()))
            for i, n in enumerate(names)]


def summary_metrics(cm: np.ndarray, names: list[str], prefix: str = "",
                    counted: np.ndarray | None = None) -> dict[str, float]:
    """The scalar scores and each scored class's IoU, keys prefixed with ``prefix``;
    ``counted``: which classes are scored and averaged (default: those in truth or
    prediction)."""
    scores = _scores(cm, counted)
    metrics = {f"{prefix}{k}": v for k in SCALARS if (v := _finite(scores[k])) is not None}
    metrics.update({f"{prefix}iou_{c.name}": c.iou for c in class_scores(cm, names, counted)
                    if c.iou is not None})
    return metrics
