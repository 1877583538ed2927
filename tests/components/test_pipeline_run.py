"""The pipeline run's parent run as open_pipeline_run records it (components/pipeline_run.py),
on real MLflow and Optuna stores."""

from __future__ import annotations

from pathlib import Path

import yaml

from components.ingest_options import IngestOptions
from components.pipeline_run import open_pipeline_run
from components.register import RegisterOptions
from components.split import SplitOptions
from components.tile import TileOptions
from components.tracking import TrackingOptions
from components.tune_options import TuneOptions


def test_parent_params_say_what_the_trials_ran_not_unused_defaults(tmp_path):
    """tuning.train.epochs is every trial's tuning.epochs, a field the search space draws
    reads "searched"; a field the space leaves out is a real setting and keeps its value.
    config.yaml stays as given, so it can be run again."""
    from mlflow.tracking import MlflowClient

    tracking = TrackingOptions(mlflow_tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}",
                               mlflow_experiment="params-as-run",
                               mlflow_artifact_location=(tmp_path / "mlartifacts").as_uri(),
                               optuna_storage=f"sqlite:///{tmp_path / 'optuna.db'}")
    tuning = TuneOptions(epochs=3, train={"batch_size": 4}, search_space={
        "training": {"learning_rate": {"type": "categorical", "choices": [0.01, 0.001]}}})
    context = open_pipeline_run("s3://tea/chips", IngestOptions(), TileOptions(),
                                SplitOptions(), tuning, RegisterOptions(), tracking,
                                kfp_run_id="1", kfp_run_name="kfp-1")
    client = MlflowClient(tracking.mlflow_tracking_uri)
    params = client.get_run(context.parent_run_id).data.params
    assert params["tuning.epochs"] == params["tuning.train.epochs"] == "3"
    assert params["tuning.train.learning_rate"] == "searched"
    assert params["tuning.train.architecture"] == "searched"
    assert params["tuning.train.batch_size"] == "4"  # the space leaves it out: it is used
    assert params["tuning.train.loss"] == "ce+dice"
    logged = client.download_artifacts(context.parent_run_id, "config.yaml", str(tmp_path))
    config = yaml.safe_load(Path(logged).read_text())
    assert config["tuning"]["train"]["epochs"] == 30
    TuneOptions.model_validate(config["tuning"])


def test_the_built_in_space_marks_each_field_it_searches():
    from components.tune_options import SEARCHED, searched_training

    ran = TuneOptions(epochs=5).train_as_run()
    assert ran["epochs"] == "5"
    assert {name for name, value in ran.items() if value == SEARCHED} == {
        "architecture", *searched_training(None)}
    assert {"batch_size", "learning_rate", "loss"} <= set(ran)
