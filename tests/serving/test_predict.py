"""ScenePredictor's own arithmetic: class ids from scores."""

from __future__ import annotations

import numpy as np
import pytest

from serving.predict import class_ids


@pytest.mark.parametrize("classes", [1, 2, 3, 7, 40])
@pytest.mark.parametrize("shape", [(1, 1), (5, 3), (300, 257)])
def test_class_ids_are_argmax_with_ties_to_the_first(classes, shape):
    rng = np.random.default_rng(classes)
    scores = rng.integers(0, 4, (*shape, classes)).astype(np.float32)  # many ties
    np.testing.assert_array_equal(class_ids(scores), np.argmax(scores, axis=-1))
    assert class_ids(scores).dtype == np.uint8


def test_class_ids_of_a_strided_view_of_an_accumulator():
    """Blocks hand over column slices of a wider accumulator; rows span several chunks."""
    rng = np.random.default_rng(0)
    accumulator = rng.random((700, 900, 3)).astype(np.float32)
    view = accumulator[3:690, 100:800]
    np.testing.assert_array_equal(class_ids(view), np.argmax(view, axis=-1))
