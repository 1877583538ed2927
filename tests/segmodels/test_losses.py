"""Each loss against a NumPy transcription of its formula, plus the ignore index."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from segmodels import build_loss
from segmodels.losses import CombinedLoss, CrossEntropyLoss, DiceLoss

IGNORE = 255
rng = np.random.default_rng(0)
LABELS = rng.integers(0, 3, size=(2, 4, 5))
LABELS[0, 0, :3] = IGNORE
LOGITS = rng.normal(size=(2, 4, 5, 3))
PROBS = (np.exp(LOGITS) / np.exp(LOGITS).sum(-1, keepdims=True)).astype("float32")
WEIGHTS = [0.5, 1.0, 2.0]


def _valid_one_hot(labels, k=3):
    valid = labels != IGNORE
    one_hot = np.eye(k)[np.where(valid, labels, 0)] * valid[..., None]
    return one_hot, valid


def np_ce(labels, probs, weights=None):
    one_hot, _ = _valid_one_hot(labels)
    w = np.ones(3) if weights is None else np.asarray(weights)
    pixel_w = (one_hot * w).sum(-1)
    nll = -(one_hot * np.log(probs)).sum(-1)
    return (pixel_w * nll).sum() / pixel_w.sum()


def np_region(labels, probs):
    one_hot, valid = _valid_one_hot(labels)
    p = probs * valid[..., None]
    axes = (0, 1, 2)
    return (p * one_hot).sum(axes), (p * (1 - one_hot)).sum(axes), ((1 - p) * one_hot).sum(axes)


def np_dice(labels, probs, smooth=1.0, weights=None):
    tp, fp, fn = np_region(labels, probs)
    w = np.ones(3) if weights is None else np.asarray(weights)
    return 1 - (w * (2 * tp + smooth) / (2 * tp + fp + fn + smooth)).sum() / w.sum()


def np_jaccard(labels, probs, smooth=1.0):
    tp, fp, fn = np_region(labels, probs)
    return 1 - ((tp + smooth) / (tp + fp + fn + smooth)).mean()


def np_focal(labels, probs, gamma=2.0, weights=None):
    one_hot, valid = _valid_one_hot(labels)
    w = np.ones(3) if weights is None else np.asarray(weights)
    p_t = np.where(valid, (one_hot * probs).sum(-1), 1.0)
    alpha = (one_hot * w).sum(-1)
    return (-alpha * (1 - p_t) ** gamma * np.log(p_t))[valid].mean()


def np_focal_tversky(labels, probs, alpha=0.7, beta=0.3, gamma=0.75, smooth=1.0):
    tp, fp, fn = np_region(labels, probs)
    ti = (tp + smooth) / (tp + alpha * fn + beta * fp + smooth)
    return ((1 - ti) ** gamma).mean()


def value(loss, labels=LABELS, probs=PROBS) -> float:
    return float(keras.ops.convert_to_numpy(loss(labels, probs)))


@pytest.mark.parametrize("spec, reference", [
    ("ce", np_ce), ("dice", np_dice), ("jaccard", np_jaccard), ("focal", np_focal),
    ("focal_tversky", np_focal_tversky),
])
def test_loss_matches_numpy(spec, reference):
    assert value(build_loss(spec, num_classes=3)) == pytest.approx(reference(LABELS, PROBS),
                                                                   rel=1e-5)


def test_class_weights_match_numpy():
    for spec, reference in (("ce", np_ce), ("dice", np_dice), ("focal", np_focal)):
        loss = build_loss(spec, num_classes=3, class_weights=WEIGHTS)
        assert value(loss) == pytest.approx(reference(LABELS, PROBS, weights=WEIGHTS), rel=1e-5)


def test_cross_entropy_by_hand():
    # two valid pixels with p(true) 0.5 and 0.25, one ignored pixel that would cost a lot
    labels = np.array([[[0, 1, IGNORE]]])
    probs = np.array([[[[0.5, 0.5], [0.75, 0.25], [1.0, 0.0]]]], "float32")
    expected = -(np.log(0.5) + np.log(0.25)) / 2
    assert value(CrossEntropyLoss(), labels, probs) == pytest.approx(expected, rel=1e-6)
    # weights [1, 3]: (1*ln2 + 3*ln4) / 4
    weighted = CrossEntropyLoss(class_weights=[1.0, 3.0])
    assert value(weighted, labels, probs) == pytest.approx(
        (np.log(2) + 3 * np.log(4)) / 4, rel=1e-6)


def test_dice_by_hand():
    labels = np.array([[[0, 1]]])
    probs = np.array([[[[1.0, 0.0], [0.5, 0.5]]]], "float32")
    # class 0: tp=1, fp=.5, fn=0 -> (2+0)/(2+.5)=.8 ; class 1: tp=.5 fp=0 fn=.5 -> 1/1.5
    expected = 1 - (0.8 + 1 / 1.5) / 2
    assert value(DiceLoss(smooth=0.0), labels, probs) == pytest.approx(expected, rel=1e-6)


def test_weighted_sum():
    loss = build_loss({"ce": 1.0, "dice": 0.5}, num_classes=3)
    assert isinstance(loss, CombinedLoss)
    assert value(loss) == pytest.approx(np_ce(LABELS, PROBS) + 0.5 * np_dice(LABELS, PROBS),
                                        rel=1e-5)
    assert value(build_loss("ce+dice")) == pytest.approx(
        np_ce(LABELS, PROBS) + np_dice(LABELS, PROBS), rel=1e-5)


@pytest.mark.parametrize("spec", ["ce", "dice", "jaccard", "focal", "focal_tversky"])
def test_ignored_pixels_contribute_nothing(spec):
    loss = build_loss(spec, num_classes=3)
    scrambled = PROBS.copy()
    scrambled[LABELS == IGNORE] = np.array([1e-7, 1e-7, 1.0 - 2e-7], "float32")
    assert value(loss, LABELS, scrambled) == pytest.approx(value(loss), rel=1e-6)
    # the (N,H,W,1) label layout gives the same value
    assert value(loss, LABELS[..., None]) == pytest.approx(value(loss), rel=1e-6)


def test_bad_specs_are_clear_errors():
    with pytest.raises(ValueError, match="unknown loss"):
        build_loss("hinge")
    with pytest.raises(ValueError, match="class_weights"):
        build_loss("ce", num_classes=3, class_weights=[1.0, 2.0])


def test_loss_config_round_trip():
    loss = build_loss({"focal": 1.0, "jaccard": 2.0}, ignore_index=0, class_weights=WEIGHTS)
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(loss))
    assert isinstance(restored, CombinedLoss)
    assert restored.terms == {"focal": 1.0, "jaccard": 2.0} and restored.ignore_index == 0
    assert value(restored) == pytest.approx(value(loss), rel=1e-6)


@pytest.mark.parametrize("spec", ["ce", "dice", "jaccard", "focal", "focal_tversky"])
def test_saturated_predictions_give_finite_gradients(spec):
    """Softmax saturates to exactly 0/1 in float32; no loss may turn that into NaN."""
    import tensorflow as tf  # the test suite's backend; segmodels itself stays keras-only

    probs = tf.Variable(np.eye(3, dtype="float32")[np.where(LABELS == IGNORE, 0, LABELS)])
    loss = build_loss(spec, num_classes=3, ignore_index=IGNORE)
    with tf.GradientTape() as tape:
        value_ = loss(LABELS, probs)
    gradient = tape.gradient(value_, probs).numpy()
    assert np.isfinite(float(value_)) and np.isfinite(gradient).all()
