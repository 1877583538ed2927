"""A pipeline run read back from a real MLflow store, tagged as the pipeline's steps tag
it: the parent found by the Kubeflow run, its trials, their curves and the best one."""

from __future__ import annotations

import pytest
from mlflow import MlflowClient

from components.parent_run import KFP_RUN_ID_TAG, KFP_RUN_NAME_TAG
from pipelines.ui import pipeline_runs

RUN_NAME = "segpipe-segmentation-2026-11-29-17-35-47-772760"


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """A parent run with two finished trials (one failed) and one running, and a child that
    is not a trial. Tests only read it."""
    tmp_path = tmp_path_factory.mktemp("pipeline-runs")
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    experiment = client.create_experiment("ui-runs", (tmp_path / "artifacts").as_uri())
    parent = client.create_run(experiment, run_name=RUN_NAME, tags={
        KFP_RUN_NAME_TAG: RUN_NAME, KFP_RUN_ID_TAG: "97252012",
        pipeline_runs.STATE_TAG: "running"})
    parent_id = parent.info.run_id

    def trial(number: int, scores: list[float], state: str | None, status: str | None):
        tags = {"mlflow.parentRunId": parent_id, pipeline_runs.TRIAL_TAG: str(number)}
        if state:
            tags[pipeline_runs.TRIAL_STATE_TAG] = state
        run = client.create_run(experiment, run_name=f"trial-{number}", tags=tags)
        client.log_param(run.info.run_id, "learning_rate", "0.0026122937099604315")
        for epoch, score in enumerate(scores):
            client.log_metric(run.info.run_id, "val_miou", score, step=epoch)
            client.log_metric(run.info.run_id, "train_loss", 1.0 - score, step=epoch)
            client.log_metric(run.info.run_id, "val_loss", 1.1 - score, step=epoch)
        if status:
            client.set_terminated(run.info.run_id, status)
        return run.info.run_id

    ids = {1: trial(1, [0.30, 0.52], "COMPLETE", "FINISHED"),
           0: trial(0, [0.10, 0.95], "FAIL", "FAILED"),  # diverged: never the best
           2: trial(2, [0.40], None, None)}
    client.create_run(experiment, run_name="evaluate", tags={"mlflow.parentRunId": parent_id})
    return client, parent_id, ids


def test_parent_is_found_by_the_kubeflow_runs_name_or_id(store):
    client, parent_id, _ = store
    found = pipeline_runs.find_parent(client, "ui-runs", kfp_run_name=RUN_NAME)
    assert (found.run_id, found.state, found.status) == (parent_id, "running", "RUNNING")
    assert pipeline_runs.find_parent(client, "ui-runs", kfp_run_id="97252012") == found
    assert pipeline_runs.find_parent(client, "ui-runs", kfp_run_name="other") is None
    assert pipeline_runs.find_parent(client, "ui-runs") is None
    assert pipeline_runs.find_parent(client, "no-such-experiment",
                                     kfp_run_name=RUN_NAME) is None


def test_the_outcome_is_read_from_the_parent(store):
    client, _, _ = store
    experiment = client.get_experiment_by_name("ui-runs").experiment_id
    parent_id = client.create_run(experiment, tags={KFP_RUN_NAME_TAG: "done"}).info.run_id
    client.log_metric(parent_id, pipeline_runs.TEST_MIOU, 0.61)
    client.set_tag(parent_id, pipeline_runs.REGISTERED_VERSION_TAG, "3")
    client.set_tag(parent_id, "segpipe.decision", "promoted: beat the champion")
    client.set_tag(parent_id, pipeline_runs.STATE_TAG, "finished")
    found = pipeline_runs.find_parent(client, "ui-runs", kfp_run_name="done")
    assert (found.test_miou, found.registered_version, found.decision, found.state) == (
        0.61, "3", "promoted: beat the champion", "finished")


def test_trials_curves_and_the_best_trial(store):
    client, _, ids = store
    parent = pipeline_runs.find_parent(client, "ui-runs", kfp_run_name=RUN_NAME)
    trials = pipeline_runs.trials(client, parent)
    assert [(t.number, t.state, t.finished) for t in trials] == [
        (0, "FAIL", True), (1, "COMPLETE", True), (2, "RUNNING", False)]
    assert trials[1].params == {"learning_rate": "0.0026122937099604315"}
    cache: dict = {}
    points = [p for t in trials for p in pipeline_runs.trial_curves(client, t, cache)]
    assert {(p.trial, p.metric) for p in points} == {
        (n, m) for n in (0, 1, 2) for m in pipeline_runs.CURVES}
    best = pipeline_runs.best_trial(points, excluded={0})
    assert (best.number, best.val_miou, best.epoch) == (1, 0.52, 1)
    assert pipeline_runs.best_trial(points).number == 0
    assert pipeline_runs.best_trial([]) is None
    # Finished trials are read once; a running one again on every refresh.
    assert set(cache) == {ids[0], ids[1]}
    client.log_metric(ids[2], "val_miou", 0.7, step=1)
    again = pipeline_runs.trial_curves(client, trials[2], cache)
    assert [p.value for p in again if p.metric == "val_miou"] == [0.4, 0.7]
