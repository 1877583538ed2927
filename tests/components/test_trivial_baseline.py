import numpy as np
import pytest

from components.trivial_baseline import (
    QualityWarning,
    majority_class,
    quality_warnings,
    trivial_key,
    trivial_metrics,
    trivial_miou,
)


def test_the_trivial_baseline_is_the_train_majority_everywhere_on_the_same_pixels():
    """Tea chips' test split: 92% background, 8% tea. Background everywhere scores IoU 0.92
    for background and 0 for tea: mIoU 0.46, whatever the model predicted."""
    assert majority_class([{0: 900, 1: 10}, {0: 50, 1: 200}, {2: 1}], 3) == 0
    assert majority_class([{0: 5, 1: 5}], 2) == 0  # a tie: the lowest id
    with pytest.raises(ValueError, match="no labelled pixel"):
        majority_class([{}], 2)
    cm = np.array([[800, 120], [70, 10]])  # rows truth, columns prediction
    assert trivial_miou(cm, 0) == pytest.approx((920 / 1000 + 0) / 2)
    # A class in neither the truth nor the model's prediction stays out of the mean, as in
    # the model's own mIoU.
    assert trivial_miou(np.array([[5, 1, 0], [3, 1, 0], [0, 0, 0]]), 0) == pytest.approx(
        (6 / 10 + 0) / 2)
    assert [trivial_key(m) for m in ("miou", "tile_miou", "pixel_accuracy", "tile_f1_macro")
            ] == ["trivial_miou", "tile_trivial_miou", "trivial_pixel_accuracy",
                  "tile_trivial_f1_macro"]


def test_a_model_no_better_than_trivial_and_a_missed_class_are_each_one_warning():
    with pytest.warns(QualityWarning) as caught:
        lines = quality_warnings(0.4218, 0.461, "background",
                                 {"background": 0.823, "tea": 0.002, "road": None},
                                 {"background": 135000, "tea": 11500, "road": 0}, "test split")
    assert len(lines) == len(caught) == 2
    assert lines[0].startswith("test split: mIoU 0.4218 does not beat the trivial baseline "
                               "0.4610 ('background' everywhere")
    assert "class 'tea' is essentially never found (IoU 0.0020 on 11500" in lines[1]
    assert quality_warnings(0.7, 0.461, "background", {"background": 0.9, "tea": 0.5},
                            {"background": 1, "tea": 1}, "test split") == []


def test_the_baseline_is_averaged_over_the_classes_the_models_miou_counts():
    """Trial A's mosaic: the test truth has background and class_1; the model predicts 2 px
    of class_2, which the truth lacks. The model's mIoU counts class_2 at 0; the baseline,
    which never predicts it, must count it too, at 0, or it averages over two classes
    against the model's three (0.4883 beat the model's 0.3597, though over the same two
    classes the model scores 0.539)."""
    from segmodels import scores_from_confusion

    cm = np.array([[9300, 398, 2], [560, 140, 0], [0, 0, 0]])  # rows truth, cols prediction
    model = scores_from_confusion(cm)
    assert model["iou"][2] == 0.0
    two = np.mean(model["iou"][:2])
    baseline = trivial_metrics(cm, 0, ["background", "class_1", "class_2"], "trivial_")
    baseline_two = 9700 / 10400 / 2  # background everywhere, over background and class_1
    assert two > baseline_two > model["miou"]  # the skew: over 3 vs over 2 classes
    assert baseline["trivial_miou"] == pytest.approx(baseline_two * 2 / 3)
    assert baseline["trivial_iou_class_2"] == 0.0
    assert trivial_miou(cm, 0) == pytest.approx(baseline["trivial_miou"])
    assert model["miou"] > baseline["trivial_miou"]  # like for like: the model wins
    assert baseline["trivial_pixel_accuracy"] == pytest.approx(9700 / 10400)
