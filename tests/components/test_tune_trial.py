"""A failed trial's one-line error (the study's record, the run's headline when all fail)."""

import keras
import numpy as np
import pytest

from components.tune_trial import error_line


def test_a_tensorflow_graph_error_is_its_cause_without_the_frames():
    """TF's runtime errors in model.fit list the graph's Python frames first and their
    cause last: the line keeps the cause, never a ``File "...", line N`` frame."""
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    model.compile(loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  optimizer="adam")
    with pytest.raises(Exception) as caught:
        model.fit(np.zeros((8, 4), "float32"), np.full((8,), 5), epochs=1, verbose=0)
    line = error_line(caught.value)
    assert line == ("InvalidArgumentError: Received a label value of 5 which is outside the "
                    "valid range of [0, 2). Label values: 5 5 5 5 5 5 5 5"), line
    assert "File " not in line and "\n" not in line

