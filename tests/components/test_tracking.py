"""The MLflow side of a pipeline run on a real store (components/parent_run.py and
components/tracking.py): the parent run tagged with the Kubeflow run, runs nesting under it
when resumed in another process, steps logging into the run their caller made active."""

from __future__ import annotations

import pytest

from components.parent_run import (
    KFP_RUN_ID_TAG,
    KFP_RUN_NAME_TAG,
    RunContext,
    resume_parent_run,
    start_pipeline_run,
)
from components.tracking import TrackingOptions, ensure_run, has_password, redact_url


@pytest.fixture(scope="module")
def context(tmp_path_factory) -> RunContext:
    root = tmp_path_factory.mktemp("stores")
    options = TrackingOptions(mlflow_tracking_uri=f"sqlite:///{root / 'mlflow.db'}",
                              mlflow_experiment="pipeline-test",
                              mlflow_artifact_location=(root / "mlartifacts").as_uri(),
                              optuna_storage=f"sqlite:///{root / 'optuna.db'}")
    return start_pipeline_run(options, model_name="segpipe", kfp_run_id="1234",
                              kfp_run_name="segpipe-segmentation-2026-01-01")


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


def test_a_step_logs_into_the_run_its_caller_made_active(context):
    import mlflow
    from mlflow.tracking import MlflowClient

    with resume_parent_run(context):
        with ensure_run("evaluate") as run:
            mlflow.log_metric("test_miou", 0.5)
        assert run.info.run_id == context.parent_run_id
    parent = MlflowClient(context.tracking_uri).get_run(context.parent_run_id)
    assert parent.data.metrics["test_miou"] == 0.5


def test_unset_stores_fall_back_to_the_cluster_environment(monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    with pytest.raises(ValueError, match=r"MLflow tracking URI is not set.*MLFLOW_TRACKING_URI"):
        start_pipeline_run(TrackingOptions(optuna_storage="sqlite:///x.db"), model_name="m",
                           kfp_run_id="1", kfp_run_name="r")


def test_passwords_are_redacted_from_store_urls():
    assert redact_url("postgresql://segpipe:s3cret@db:5432/optuna") == \
        "postgresql://segpipe:***@db:5432/optuna"
    assert redact_url("sqlite:///work/optuna.db") == "sqlite:///work/optuna.db"


@pytest.mark.parametrize("url", ["http://mlflow:5000/mlflow@prod",
                                 "http://mlflow.example.org:5000/#/experiments?u=a@b"])
def test_an_at_sign_past_the_host_is_no_password(url):
    """Userinfo ends at the host: an "@" in a path, query or fragment is not a password,
    so such a tracking URL is accepted and a line holding it is printed unchanged."""
    assert not has_password(url)
    assert redact_url(f"store {url} ready") == f"store {url} ready"
    assert TrackingOptions(mlflow_tracking_uri=url).mlflow_tracking_uri == url


def test_a_config_run_again_after_it_finished_gets_a_numbered_name(tmp_path):
    """The same run name (a config's digest) finished twice: three runs the MLflow UI tells
    apart, all tagged with the config's run name, which a re-run resumes by."""
    from mlflow.tracking import MlflowClient

    from components.parent_run import RUN_NAME_TAG, finish_pipeline_run

    options = TrackingOptions(mlflow_tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}",
                              mlflow_experiment="again", run_name="run-0123456789",
                              optuna_storage=f"sqlite:///{tmp_path / 'optuna.db'}")
    client = MlflowClient(options.mlflow_tracking_uri)
    names = []
    for attempt in ("1", "2", "3"):
        context = start_pipeline_run(options, model_name="segpipe", kfp_run_id=attempt,
                                     kfp_run_name=f"kfp-{attempt}")
        parent = client.get_run(context.parent_run_id)
        assert parent.data.tags[RUN_NAME_TAG] == "run-0123456789"
        names.append(parent.info.run_name)
        if attempt != "3":
            finish_pipeline_run(options, kfp_run_id=attempt, succeeded=True)
    assert names == ["run-0123456789", "run-0123456789-2", "run-0123456789-3"]
    again = start_pipeline_run(options, model_name="segpipe", kfp_run_id="4",
                               kfp_run_name="kfp-4")  # the third is unfinished: resumed
    assert again.resumed and again.parent_run_id == context.parent_run_id


@pytest.mark.parametrize(("field", "where"), [
    ("optuna_storage", "$PGPASSWORD"), ("mlflow_tracking_uri", "$MLFLOW_TRACKING_PASSWORD"),
    ("mlflow_artifact_location", "$AWS_SECRET_ACCESS_KEY")])
def test_a_password_in_a_store_url_is_refused_saying_where_it_goes(field, where):
    from pydantic import ValidationError

    with pytest.raises(ValidationError) as raised:
        TrackingOptions(**{field: "postgresql+psycopg2://segpipe:s3cret@db:5432/optuna"})
    (problem,) = raised.value.errors()
    assert problem["loc"] == (field,) and where in problem["msg"]
    assert "s3cret" not in problem["msg"]
    # a user without a password is fine: libpq reads $PGPASSWORD
    TrackingOptions(**{field: "postgresql+psycopg2://segpipe@db:5432/optuna"})


def test_a_store_url_with_a_password_from_the_environment_stays_out_of_local_options(
        tmp_path, monkeypatch):
    monkeypatch.setenv("OPTUNA_STORAGE", "postgresql://segpipe:s3cret@db/optuna")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://mlflow:5000")
    local = TrackingOptions().for_local_run(tmp_path)
    # the tasks inherit the environment and read it there; the options are their parameter
    assert local.optuna_storage is None
    assert local.mlflow_tracking_uri == "http://mlflow:5000"
    assert "s3cret" not in local.model_dump_json()


def test_the_run_context_artifact_holds_no_password_and_a_task_gets_it_back(
        tmp_path, monkeypatch):
    storage = "postgresql+psycopg2://segpipe:s3cret@db:5432/optuna"
    monkeypatch.setenv("OPTUNA_STORAGE", storage)
    context = RunContext(tracking_uri="sqlite:///m.db", experiment_id="1", parent_run_id="p",
                         optuna_storage=storage, study_name="s", kfp_run_id="k",
                         kfp_run_name="r")
    path = tmp_path / "run_context"
    context.save(path)
    assert "s3cret" not in path.read_text()
    assert "postgresql+psycopg2://segpipe@db:5432/optuna" in path.read_text()
    assert RunContext.load(path) == context
    # a task whose environment lacks it connects without (libpq then reads $PGPASSWORD)
    monkeypatch.delenv("OPTUNA_STORAGE")
    assert RunContext.load(path).optuna_storage == "postgresql+psycopg2://segpipe@db:5432/optuna"


S3_SOURCE = "s3://tea/surveys/2026 Été/tea chips"


def _dataset_input(run_id: str):
    import json

    from mlflow.tracking import MlflowClient

    (logged,) = MlflowClient().get_run(run_id).inputs.dataset_inputs
    return logged.dataset, json.loads(logged.dataset.source)["uri"]


def test_a_trial_records_the_pipeline_source_not_the_task_folder(mlflow_store, tmp_path):
    """On a shared server the tiles folder is a path on someone's machine or in a pod: the
    trials and the parent name the source the run was given, with the tiles' digest."""
    import mlflow

    from components.lineage import log_pipeline_config
    from components.tracking import DATASET_DIGEST_TAG, child_run, log_dataset

    tiles = tmp_path / "kfp-outputs" / "run" / "tile" / "tiles"
    tiles.mkdir(parents=True)
    digest = "ab" * 32
    mlflow.set_experiment("dataset-source")
    with mlflow.start_run() as parent:
        log_pipeline_config({"source": S3_SOURCE, "tuning": {}}, resumed=False)
        with child_run("trial-0") as trial:
            log_dataset(tiles, digest, context="training")
        log_dataset(tiles, digest, context="test")
    for run in (trial, parent):
        dataset, uri = _dataset_input(run.info.run_id)
        assert (uri, dataset.source_type) == (S3_SOURCE, "s3")
        assert dataset.name == "tea chips" and dataset.digest == digest[:32]
        assert mlflow.get_run(run.info.run_id).data.tags[DATASET_DIGEST_TAG] == digest


def test_outside_a_pipeline_run_the_dataset_is_the_folder_or_the_source_given(
        mlflow_store, tmp_path, monkeypatch):
    import mlflow

    from components.tracking import log_dataset

    prepared = tmp_path / "prepared"
    prepared.mkdir()
    monkeypatch.chdir(tmp_path)
    mlflow.set_experiment("dataset-folder")
    with mlflow.start_run() as plain:
        log_dataset(prepared, "cd" * 32, context="test")
    with mlflow.start_run() as given:
        log_dataset(prepared, "cd" * 32, context="test", source="scenes.zip")
    dataset, uri = _dataset_input(plain.info.run_id)
    assert (uri, dataset.source_type, dataset.name) == (str(prepared), "local", "prepared")
    dataset, uri = _dataset_input(given.info.run_id)
    assert (uri, dataset.name) == (str(tmp_path / "scenes.zip"), "scenes.zip")


def test_a_source_url_with_a_password_is_logged_without_it(mlflow_store):
    import mlflow

    from components.lineage import log_pipeline_config
    from components.tracking import SOURCE_TAG

    source = "https://survey:s3cret@data.example.org/tea.zip"
    mlflow.set_experiment("source-password")
    with mlflow.start_run() as run:
        log_pipeline_config({"source": source, "tuning": {}}, resumed=False)
    logged = mlflow.get_run(run.info.run_id).data
    assert logged.tags[SOURCE_TAG] == "https://survey:***@data.example.org/tea.zip"
    assert "s3cret" not in str(logged.params) + str(logged.tags)
