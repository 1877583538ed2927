"""The served model's forward pass: OpenVINO on the exported graph when it can, Keras else,
with the same answers."""

from __future__ import annotations

from pathlib import Path

import mlflow
import numpy as np
import pytest

from serving.predict import ScenePredictor, keras_predict_fn
from serving.runtime import RUNTIME_ENV, choose_runtime
from tests.serving.conftest import BANDS


@pytest.fixture(scope="module")
def keras_predictor(keras_model_path, serving_config):
    import segmodels

    model = segmodels.load_model(keras_model_path)
    return ScenePredictor(keras_predict_fn(model), serving_config)


def load(logged_model):
    return mlflow.pyfunc.load_model(logged_model["local_path"]).unwrap_python_model()


def test_logged_model_runs_openvino_with_the_keras_models_answers(logged_model,
                                                                   keras_predictor):
    model = load(logged_model)
    assert model.runtime == "openvino"
    assert (Path(logged_model["local_path"]) / "artifacts" / "openvino" / "model.xml").is_file()
    image = np.random.default_rng(9).integers(1, 1000, (70, 45, BANDS)).astype("uint16")
    for tta in (False, True):
        ours = model.predictor.predict_array(image, tta=tta, output="probabilities")
        reference = keras_predictor.predict_array(image, tta=tta, output="probabilities")
        np.testing.assert_allclose(ours, reference, atol=1e-4)
        np.testing.assert_array_equal(model.predictor.predict_array(image, tta=tta),
                                      keras_predictor.predict_array(image, tta=tta))


def test_keras_is_chosen_by_the_environment_or_without_an_export(logged_model, monkeypatch,
                                                                 tmp_path):
    monkeypatch.setenv(RUNTIME_ENV, "keras")
    assert load(logged_model).runtime == "keras"
    monkeypatch.delenv(RUNTIME_ENV)
    assert choose_runtime(None) == "keras"
    assert choose_runtime(tmp_path) == "keras"  # a folder without the export


@pytest.mark.parametrize(("value", "message"), [
    ("tensorrt", "SEGPIPE_RUNTIME='tensorrt': choose one of"),
    ("openvino", "carries no OpenVINO export"),
])
def test_a_runtime_that_cannot_be_had_is_a_clear_error(monkeypatch, tmp_path, value, message):
    monkeypatch.setenv(RUNTIME_ENV, value)
    with pytest.raises(ValueError, match=message):
        choose_runtime(tmp_path)
