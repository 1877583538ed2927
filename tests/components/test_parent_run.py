"""Who resumes a pipeline's parent run (components/parent_run.py), on a real store: the same
config run from two workdirs against one tracking server gets two parent runs and two
Optuna studies; the same workdir after a crash gets its own run back."""

from __future__ import annotations

from mlflow.tracking import MlflowClient

from components.parent_run import (
    OWNER_TAG,
    STATE_TAG,
    finish_pipeline_run,
    resume_parent_run,
    start_pipeline_run,
)
from components.tracking import TrackingOptions
from pipelines.config import PipelineConfig
from pipelines.local_run import local_options
from pipelines.run_record import newest_parent_run


def _tracking(tmp_path, workdir) -> TrackingOptions:
    """The tracking options `segpipe run` gives the tasks for one config (one shared store,
    the same run name) run from ``workdir``."""
    config = PipelineConfig(source="s3://team/scenes", workdir=workdir,
                            tracking={"mlflow_tracking_uri": f"sqlite:///{tmp_path / 'mlflow.db'}",
                                      "optuna_storage": f"sqlite:///{tmp_path / 'optuna.db'}",
                                      "mlflow_experiment": "shared"})
    return local_options(config).tracking


def _start(options: TrackingOptions, kfp_run_id: str):
    return start_pipeline_run(options, model_name="team", kfp_run_id=kfp_run_id,
                              kfp_run_name=f"segpipe-segmentation-{kfp_run_id}")


def test_one_config_from_two_workdirs_gets_two_runs_and_two_studies(tmp_path):
    team_a, team_b = _tracking(tmp_path, tmp_path / "wd-a"), _tracking(tmp_path, tmp_path / "wd-b")
    assert team_a.run_name == team_b.run_name  # one config: one name
    assert team_a.run_owner != team_b.run_owner
    first, second = _start(team_a, "a"), _start(team_b, "b")  # both running at once
    assert not first.resumed and not second.resumed
    assert first.parent_run_id != second.parent_run_id
    assert first.study_name != second.study_name
    client = MlflowClient(team_a.mlflow_tracking_uri)
    assert client.get_run(first.parent_run_id).data.tags[OWNER_TAG] == team_a.run_owner
    # What each local run reads back (its failure, interruption, result) is its own run.
    assert newest_parent_run(team_a)[1].info.run_id == first.parent_run_id
    assert newest_parent_run(team_b)[1].info.run_id == second.parent_run_id


def test_a_crashed_run_resumes_from_its_own_workdir_only(tmp_path):
    mine = _tracking(tmp_path, tmp_path / "wd")
    crashed = _start(mine, "1")  # then SIGKILL: the parent run stays RUNNING, state running
    elsewhere = _start(_tracking(tmp_path, tmp_path / "other"), "2")
    assert not elsewhere.resumed and elsewhere.parent_run_id != crashed.parent_run_id
    again = _start(_tracking(tmp_path, tmp_path / "wd" / ".." / "wd"), "3")  # same folder
    assert again.resumed
    assert (again.parent_run_id, again.study_name) == (crashed.parent_run_id,
                                                       crashed.study_name)


def test_a_cluster_run_without_an_owner_resumes_by_name_as_before(tmp_path):
    options = TrackingOptions(mlflow_tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}",
                              optuna_storage=f"sqlite:///{tmp_path / 'optuna.db'}",
                              run_name="nightly")
    first = _start(options, "kfp-1")
    local = _start(_tracking(tmp_path, tmp_path / "wd").model_copy(
        update={"run_name": "nightly", "mlflow_experiment": "segpipe"}), "local")
    assert not local.resumed  # a local run does not take a cluster run's name over
    again = _start(options, "kfp-2")  # the KFP run retried, or submitted again
    assert again.resumed and again.parent_run_id == first.parent_run_id


def test_a_task_ending_after_the_run_was_closed_leaves_it_closed(tmp_path):
    """The parent run's status agrees with its pipeline state, whatever order the last
    task and a straggling one end in."""
    options = _tracking(tmp_path, tmp_path / "wd")
    context = _start(options, "1")
    client = MlflowClient(options.mlflow_tracking_uri)
    with resume_parent_run(context):
        finish_pipeline_run(options, kfp_run_id="1", succeeded=True)
    closed = client.get_run(context.parent_run_id)
    assert closed.data.tags[STATE_TAG] == "finished"
    assert closed.info.status == "FINISHED"
    reopened = _start(options, "2")
    with resume_parent_run(reopened):
        pass
    assert client.get_run(reopened.parent_run_id).info.status == "RUNNING"  # goes on
