"""Confusion-matrix metrics against scikit-learn, dataset-level exactness, ignore index."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from sklearn.metrics import confusion_matrix as sk_confusion
from sklearn.metrics import jaccard_score, precision_recall_fscore_support

from segmodels import (
    ConfusionMatrixMetric,
    MacroF1,
    MeanIoU,
    PixelAccuracy,
    class_metrics,
    confusion_matrix,
    scored_classes,
    scores_from_confusion,
)

IGNORE = 255
K = 4
rng = np.random.default_rng(1)
TRUTH = rng.integers(0, K - 1, size=(6, 8, 8))  # class 3 never in truth...
TRUTH[:, :2] = IGNORE
PRED_IDS = rng.integers(0, K - 1, size=(6, 8, 8))  # ...nor predicted -> NaN, excluded
PRED_IDS[0, 4, 4] = 2
PROBS = np.eye(K, dtype="float32")[PRED_IDS] * 0.7 + 0.3 / K


def _valid():
    keep = TRUTH != IGNORE
    return TRUTH[keep], PRED_IDS[keep]


def test_confusion_matches_sklearn():
    truth, pred = _valid()
    expected = sk_confusion(truth, pred, labels=range(K))
    np.testing.assert_array_equal(confusion_matrix(TRUTH, PRED_IDS, K, IGNORE), expected)
    np.testing.assert_array_equal(confusion_matrix(TRUTH, PROBS, K, IGNORE), expected)


def test_scores_match_sklearn():
    truth, pred = _valid()
    scores = scores_from_confusion(confusion_matrix(TRUTH, PRED_IDS, K, IGNORE))
    present = [0, 1, 2]
    iou = jaccard_score(truth, pred, labels=present, average=None)
    precision, recall, f1, _ = precision_recall_fscore_support(truth, pred, labels=present,
                                                               zero_division=0)
    np.testing.assert_allclose(scores["iou"][:3], iou)
    np.testing.assert_allclose(scores["precision"][:3], precision)
    np.testing.assert_allclose(scores["recall"][:3], recall)
    np.testing.assert_allclose(scores["f1"][:3], f1)
    assert all(np.isnan(scores[key][3]) for key in ("iou", "f1", "precision", "recall"))
    assert scores["miou"] == pytest.approx(iou.mean())
    assert scores["f1_macro"] == pytest.approx(f1.mean())
    assert scores["precision_macro"] == pytest.approx(precision.mean())
    assert scores["recall_macro"] == pytest.approx(recall.mean())
    assert scores["pixel_accuracy"] == pytest.approx((truth == pred).mean())


def test_class_present_in_truth_only_scores_zero():
    scores = scores_from_confusion(np.array([[5, 1], [0, 0]]))  # class 1 only predicted
    assert scores["iou"][1] == 0.0 and scores["recall"][1] == 0.0
    assert scores["miou"] == pytest.approx((5 / 6 + 0) / 2)


def test_scores_average_over_the_classes_counted_when_given():
    """A second predictor on the same truth is averaged over the first's classes: one that
    never predicted class 2, which the truth lacks, still counts it, at 0."""
    model = np.array([[90, 8, 2], [4, 6, 0], [0, 0, 0]])
    baseline = np.array([[100, 0, 0], [10, 0, 0], [0, 0, 0]])
    assert scored_classes(model).tolist() == [True, True, True]
    own = scores_from_confusion(baseline)
    like_model = scores_from_confusion(baseline, scored_classes(model))
    assert np.isnan(own["iou"][2]) and own["miou"] == pytest.approx((100 / 110 + 0) / 2)
    assert like_model["iou"][2] == 0.0 and like_model["recall"][2] == 0.0
    assert like_model["miou"] == pytest.approx((100 / 110 + 0 + 0) / 3)
    assert like_model["pixel_accuracy"] == own["pixel_accuracy"]
    with pytest.raises(ValueError, match="3 classes"):
        scores_from_confusion(baseline, np.array([True, True]))


def test_keras_metrics_accumulate_exact_dataset_values():
    expected = scores_from_confusion(confusion_matrix(TRUTH, PRED_IDS, K, IGNORE))
    metrics = [MeanIoU(K, IGNORE), PixelAccuracy(K, IGNORE), MacroF1(K, IGNORE),
               *class_metrics(K, IGNORE, scores=("iou", "precision"))]
    for metric in metrics:
        for batch in range(0, 6, 2):  # batches of unequal content: mean of batch mIoUs differs
            metric.update_state(TRUTH[batch:batch + 2], PROBS[batch:batch + 2])
    results = {m.name: float(keras.ops.convert_to_numpy(m.result())) for m in metrics}
    assert results["miou"] == pytest.approx(expected["miou"], rel=1e-6)
    assert results["pixel_accuracy"] == pytest.approx(expected["pixel_accuracy"], rel=1e-6)
    assert results["f1_macro"] == pytest.approx(expected["f1_macro"], rel=1e-6)
    assert results["iou_1"] == pytest.approx(expected["iou"][1], rel=1e-6)
    assert results["precision_2"] == pytest.approx(expected["precision"][2], rel=1e-6)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(metrics[0].confusion),
                                  confusion_matrix(TRUTH, PRED_IDS, K, IGNORE))
    metrics[0].reset_state()
    assert float(keras.ops.convert_to_numpy(metrics[0].result())) == 0.0


def test_keras_metric_accepts_class_ids_and_trailing_axis():
    metric = MeanIoU(K, IGNORE)
    metric.update_state(TRUTH[..., None], PROBS)
    other = ConfusionMatrixMetric(K, IGNORE, score="miou")
    other.update_state(TRUTH, PRED_IDS)
    assert float(metric.result()) == pytest.approx(float(other.result()))


def test_metric_config_round_trip_and_errors():
    metric = ConfusionMatrixMetric(K, 0, score="recall", class_id=2)
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(metric))
    assert (restored.score, restored.class_id, restored.ignore_index) == ("recall", 2, 0)
    assert isinstance(keras.saving.deserialize_keras_object(
        keras.saving.serialize_keras_object(MeanIoU(K))), MeanIoU)
    with pytest.raises(ValueError, match="class_id"):
        ConfusionMatrixMetric(K, score="iou")
    with pytest.raises(ValueError, match="outside"):
        confusion_matrix(np.array([0, 7]), np.array([0, 1]), 2, IGNORE)
