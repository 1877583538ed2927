"""Registry reads for the Models page, on a real SQLite store with two versions."""

from __future__ import annotations

import mlflow
import pytest
from mlflow import MlflowClient

from pipelines.ui import registry
from pipelines.ui.settings import UiError
from tests.ui.harness import BANDS, CLASS_NAMES, WINDOW


@pytest.fixture(scope="module")
def client(tiny_store) -> MlflowClient:
    return MlflowClient(tracking_uri=tiny_store.tracking_uri)


def test_versions_carry_aliases_scores_and_the_gate_decision(client, tiny_store):
    # The Train page's browser tests register models of their own in this store.
    names = registry.registered_model_names(client)
    assert tiny_store.name in names and names == sorted(names)
    versions = registry.model_versions(client, tiny_store.name)
    assert [v.version for v in versions] == ["2", "1"]  # newest first
    challenger, champion = versions
    assert champion.aliases == ("champion",) and challenger.aliases == ("challenger",)
    assert champion.test_miou == pytest.approx(0.61)
    assert champion.class_iou == {"soil": pytest.approx(0.51), "tea": pytest.approx(0.61)}
    assert champion.architecture == "unet"
    assert champion.dataset_digest.startswith("d1g3st")
    assert champion.decision == "promoted: no champion yet"
    assert challenger.decision.startswith("kept champion v1")
    assert champion.train_run_id is None  # an empty tag is no run
    assert champion.model_uri == f"models:/{tiny_store.name}/1"
    assert champion.label() == "v1 · champion · mIoU 0.610"


def test_the_champion_is_preselected_not_the_newest(client, tiny_store):
    versions = registry.model_versions(client, tiny_store.name)
    assert registry.default_version(versions).version == tiny_store.champion
    without_champion = [v for v in versions if "champion" not in v.aliases]
    assert registry.default_version(without_champion).version == "2"
    assert registry.default_version([]) is None


@pytest.mark.usefixtures("tracking_store")
def test_serving_config_gives_bands_patch_size_and_classes(tiny_store):
    config = registry.serving_config(f"models:/{tiny_store.name}/1")
    assert (config.in_channels, config.patch_size, config.class_names) == \
        (BANDS, WINDOW, CLASS_NAMES)


def test_links_into_the_mlflow_ui(client, tiny_store):
    champion = registry.model_versions(client, tiny_store.name)[1]
    experiment = registry.experiment_of(client, champion.run_id)
    assert experiment is not None
    assert registry.run_url("http://mlflow:5000", experiment, champion.run_id) == \
        f"http://mlflow:5000/#/experiments/{experiment}/runs/{champion.run_id}"
    assert registry.version_url("http://mlflow:5000", "my model", "3") == \
        "http://mlflow:5000/#/models/my%20model/versions/3"
    assert registry.run_url(None, experiment, champion.run_id) is None
    assert registry.experiment_of(client, "0" * 32) is None


class _Echo(mlflow.pyfunc.PythonModel):
    def predict(self, context, model_input, params=None):
        return model_input


def test_a_model_that_is_not_ours_is_named(tmp_path):
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    try:
        # Its own experiment: one set by an earlier test belongs to another store.
        mlflow.set_experiment("not-ours")
        with mlflow.start_run():
            mlflow.pyfunc.log_model(name="echo", python_model=_Echo(),
                                    registered_model_name="echo")
        with pytest.raises(UiError, match="models:/echo/1 is not a segpipe segmentation model"):
            registry.serving_config("models:/echo/1")
    finally:
        mlflow.set_tracking_uri(previous)
