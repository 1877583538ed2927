"""Pipeline glue on real stores: the MLflow parent run, the shared Optuna study, picking the
study's best trial among the workers' artifacts, Kubeflow's number handling."""

from __future__ import annotations

import pytest

from components.tune import trial_shares
from pipelines.steps import (
    TuneWorkerSpec,
    restore_integers,
    select_best_model,
)
from pipelines.tracking import (
    KFP_RUN_ID_TAG,
    KFP_RUN_NAME_TAG,
    RunContext,
    resume_parent_run,
    start_pipeline_run,
    study_name_for,
)


@pytest.fixture(scope="module")
def context(tmp_path_factory) -> RunContext:
    root = tmp_path_factory.mktemp("stores")
    return start_pipeline_run(
        tracking_uri=f"sqlite:///{root / 'mlflow.db'}", experiment="pipeline-test",
        artifact_location=(root / "mlartifacts").as_uri(),
        optuna_storage=f"sqlite:///{root / 'optuna.db'}",
        study_name=study_name_for("segpipe", "segpipe-segmentation-2026-01-01"),
        kfp_run_id="1234", kfp_run_name="segpipe-segmentation-2026-01-01")


def test_parent_run_is_tagged_with_the_kubeflow_run(context, tmp_path):
    from mlflow.tracking import MlflowClient

    client = MlflowClient(context.tracking_uri)
    parent = client.get_run(context.parent_run_id)
    assert parent.data.tags[KFP_RUN_ID_TAG] == "1234"
    assert parent.data.tags[KFP_RUN_NAME_TAG] == "segpipe-segmentation-2026-01-01"
    experiment = client.get_experiment(context.experiment_id)
    assert experiment.artifact_location.endswith("mlartifacts")
    path = tmp_path / "run_context.json"
    context.save(path)
    assert RunContext.load(path) == context


def test_runs_started_while_resumed_nest_under_the_parent(context):
    import mlflow
    from mlflow.tracking import MlflowClient

    with resume_parent_run(context), mlflow.start_run(nested=True, run_name="trial") as child:
        pass
    run = MlflowClient(context.tracking_uri).get_run(child.info.run_id)
    assert run.data.tags["mlflow.parentRunId"] == context.parent_run_id
    assert run.info.experiment_id == context.experiment_id


def test_empty_store_parameters_fall_back_to_the_cluster_environment(monkeypatch, tmp_path):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    with pytest.raises(ValueError, match=r"MLflow tracking URI is not set.*MLFLOW_TRACKING_URI"):
        start_pipeline_run(tracking_uri="", experiment="e", artifact_location="",
                           optuna_storage="sqlite:///x.db", study_name="s", kfp_run_id="1",
                           kfp_run_name="r")


def _worker_artifact(root, worker: int, trial: int, value: float):
    trial_dir = root / f"worker-{worker}" / "trials" / str(trial)
    trial_dir.mkdir(parents=True)
    (trial_dir / "model.keras").write_text(f"weights of trial {trial}")
    (trial_dir / "model.json").write_text("{}")
    return root / f"worker-{worker}", {"worker": worker, "best_value": value,
                                       "trial_number": trial}


def test_select_copies_the_study_best_trial_from_the_worker_that_ran_it(context, tmp_path):
    import optuna

    study = optuna.create_study(storage=context.optuna_storage, study_name=context.study_name,
                                direction="maximize", load_if_exists=True)
    dist = {"lr": optuna.distributions.FloatDistribution(0.0, 1.0)}
    for value in (0.2, 0.7, 0.5):
        study.add_trial(optuna.trial.create_trial(value=value, params={"lr": value / 2},
                                                  distributions=dist))
    candidates = [_worker_artifact(tmp_path, 0, 0, 0.2), _worker_artifact(tmp_path, 1, 1, 0.7),
                  (tmp_path / "idle", {"worker": 2, "completed_trials": 0})]
    context_path = tmp_path / "context.json"
    context.save(context_path)
    best = select_best_model(candidates, context_path, tmp_path / "best")
    assert (best["trial_number"], best["best_value"], best["n_trials"]) == (1, 0.7, 3)
    assert (tmp_path / "best" / "model.keras").read_text() == "weights of trial 1"
    from mlflow.tracking import MlflowClient

    parent = MlflowClient(context.tracking_uri).get_run(context.parent_run_id).data
    assert parent.params["best.lr"] == "0.35"
    assert parent.metrics["best_val_miou"] == 0.7 and parent.metrics["trials_complete"] == 3
    artifacts = {a.path for a in MlflowClient(context.tracking_uri)
                 .list_artifacts(context.parent_run_id)}
    assert "optimization_history.png" in artifacts


def test_select_fails_clearly_when_no_worker_completed_a_trial(context, tmp_path):
    context_path = tmp_path / "context.json"
    context.save(context_path)
    with pytest.raises(ValueError, match="no worker completed a trial"):
        select_best_model([(tmp_path, {"worker": 0, "completed_trials": 0})], context_path,
                          tmp_path / "best")


@pytest.mark.parametrize(("n_trials", "n_workers"), [(10, 3), (2, 4), (1, 1), (7, 7)])
def test_worker_shares_add_up_and_differ_by_at_most_one(n_trials, n_workers):
    shares = trial_shares(n_trials, n_workers)
    assert sum(shares) == n_trials and max(shares) - min(shares) <= 1


def test_struct_numbers_get_their_integers_back():
    space = {"models": {"unet": {"depth": {"type": "categorical", "choices": [2.0, 3.0]}}},
             "training": {"learning_rate": {"low": 0.001, "high": 1.0}}, "flag": True}
    restored = restore_integers(space)
    assert restored["models"]["unet"]["depth"]["choices"] == [2, 3]
    assert all(type(c) is int for c in restored["models"]["unet"]["depth"]["choices"])
    assert restored["training"]["learning_rate"] == {"low": 0.001, "high": 1}
    assert restored["flag"] is True
    spec = TuneWorkerSpec(worker=0, n_workers=1, n_trials=1, epochs=1,
                          train_settings={"batch_size": 8.0})
    assert type(spec.train_settings["batch_size"]) is int


def test_dataset_view_joins_the_step_artifacts_into_one_dataset_folder(tmp_path):
    from components.artifacts import DatasetPaths
    from pipelines.steps import dataset_view

    tiles = tmp_path / "tile-step"
    (tiles / "tiles").mkdir(parents=True)
    for name in ("classes.json", "tiles.json"):
        (tiles / name).write_text(name)
    (tmp_path / "split").write_text("split")
    (tmp_path / "stats").write_text("stats")
    for _ in range(2):  # a retried step finds the links already there
        view = DatasetPaths(dataset_view(tiles, tmp_path / "split", tmp_path / "stats",
                                         tmp_path / "view"))
    assert (view.split.read_text(), view.stats.read_text()) == ("split", "stats")
    assert view.classes.read_text() == "classes.json" and view.tiles_dir.is_dir()
