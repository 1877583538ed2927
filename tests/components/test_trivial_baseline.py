import numpy as np
import pytest

from components.trivial_baseline import (
    QualityWarning,
    majority_class,
    quality_warnings,
    trivial_key,
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
    # A class absent from truth stays out of the mean, as in the model's own mIoU.
    assert trivial_miou(np.array([[5, 0, 1], [3, 1, 0], [0, 0, 0]]), 0) == pytest.approx(
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
