"""The pipeline's MLflow parent run, from its first task to its last.

A pipeline run's first task creates the parent run (``start_pipeline_run``, tagged with the
Kubeflow run id and name; an unfinished run of the same name and owner is resumed instead,
``owned_runs``) and hands a
``RunContext`` JSON artifact to every later task, which makes the parent active again
(``resume_parent_run``) whichever pod or process it runs in. The context travels as an
artifact rather than as string parameters because Kubeflow's local runner substitutes
upstream parameter outputs inside a ParallelFor body with the loop item. The last task closes
it (``finish_pipeline_run``); a run that did not finish is closed with its state and error
(``close_unfinished_run``). Where runs go is components/tracking.py's TrackingOptions."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from components.atomic import write_json
from components.tracking import TrackingOptions, with_env_password, without_password

KFP_RUN_ID_TAG = "kfp.run_id"
KFP_RUN_NAME_TAG = "kfp.run_name"
STUDY_TAG = "optuna.study_name"
RUN_NAME_TAG = "segpipe.run_name"
OWNER_TAG = "segpipe.run_owner"  # host:workdir of a local run; absent on a cluster
STATE_TAG = "segpipe.pipeline_state"  # running | finished | failed
FAILED_STEP_TAG = "segpipe.failed_step"
ERROR_TAG = "segpipe.error"
EXPERIMENT_ENV = "MLFLOW_EXPERIMENT_ID"  # MLflow's own variable: where new runs go


class RunContext(BaseModel):
    """What every task of a pipeline run needs to find the run's parent run and Optuna study
    (handed on as a JSON artifact)."""

    model_config = ConfigDict(extra="forbid")

    tracking_uri: str
    experiment_id: str
    parent_run_id: str
    optuna_storage: str
    study_name: str
    kfp_run_id: str
    kfp_run_name: str
    resumed: bool = Field(False, description="an interrupted run of the same name and owner "
                          "goes on")

    @classmethod
    def load(cls, path: str | Path) -> RunContext:
        """The context ``save`` wrote, the stores' passwords back from this task's
        environment where it gave them (every task has the same)."""
        context = cls.model_validate_json(Path(path).read_text())
        return context.model_copy(update={
            "tracking_uri": with_env_password(context.tracking_uri, "MLFLOW_TRACKING_URI"),
            "optuna_storage": with_env_password(context.optuna_storage, "OPTUNA_STORAGE")})

    def shareable(self) -> dict[str, object]:
        """The context as it may be stored and shown (an artifact in the pipeline's object
        store and the Kubeflow UI, the run's log): the stores' URLs without passwords."""
        return {**self.model_dump(), "tracking_uri": without_password(self.tracking_uri),
                "optuna_storage": without_password(self.optuna_storage)}

    def save(self, path: str | Path) -> None:
        write_json(path, self.shareable())


def _study_name(model_name: str, run_name: str, parent_run_id: str) -> str:
    """A study per pipeline run (its parent run's id in the name): a new run never mixes
    its trials with another's; a resumed one finds its own again."""
    name = f"{model_name}-{run_name}-{parent_run_id[:8]}"
    return re.sub(r"[^A-Za-z0-9_.\-]+", "-", name)[:200]


#: Earlier runs of a name looked at to number the next one.
_MAX_NAMESAKES = 1000


def _new_run_name(client, experiment_id: str, run_name: str) -> str:
    """The MLflow name of a new run of ``run_name``: that name for the first, then
    ``<run_name>-2``, ``-3``... (after a finished one, the same config runs anew), so the
    MLflow UI tells them apart. The ``segpipe.run_name`` tag stays ``run_name`` on all of
    them: it is what a re-run of the config resumes by."""
    earlier = client.search_runs([experiment_id], f"tags.`{RUN_NAME_TAG}` = '{run_name}'",
                                 max_results=_MAX_NAMESAKES)
    taken = {run.info.run_name for run in earlier}
    if run_name not in taken:
        return run_name
    number = 2
    while f"{run_name}-{number}" in taken:
        number += 1
    return f"{run_name}-{number}"


def owned_runs(client, experiment_id: str, options: TrackingOptions, *,
               unfinished: bool = False) -> list:
    """The parent runs of ``options.run_name`` started by ``options.run_owner`` (a run
    without the tag belongs to an unset owner), newest first; with ``unfinished`` only those
    not finished, which a new start resumes. The owner is compared here rather than in the
    filter: a workdir path may hold any quote."""
    query = f"tags.`{RUN_NAME_TAG}` = '{options.run_name}'"
    if unfinished:
        query += f" and tags.`{STATE_TAG}` != 'finished'"
    runs = client.search_runs([experiment_id], query, order_by=["attributes.start_time DESC"],
                              max_results=_MAX_NAMESAKES)
    return [run for run in runs if run.data.tags.get(OWNER_TAG) == options.run_owner]


def start_pipeline_run(options: TrackingOptions, *, model_name: str, kfp_run_id: str,
                       kfp_run_name: str) -> RunContext:
    """The parent run of this pipeline run and the name of its Optuna study. An unfinished
    run of the same name (``options.run_name``, else the Kubeflow run's) and owner
    (``options.run_owner``) is resumed; else a new one is created, with a study of its own,
    in an experiment created if needed. Unset stores come from the environment (a
    cluster's ConfigMap)."""
    from mlflow.tracking import MlflowClient

    tracking_uri = _from_env(options.mlflow_tracking_uri, "MLFLOW_TRACKING_URI",
                             "the MLflow tracking URI")
    optuna_storage = _from_env(options.optuna_storage, "OPTUNA_STORAGE",
                               "the Optuna storage URL")
    client = MlflowClient(tracking_uri)  # creates the store's tables before any worker runs
    _initialize_optuna_storage(optuna_storage)
    found = client.get_experiment_by_name(options.mlflow_experiment)
    if found is None:
        experiment_id = client.create_experiment(
            options.mlflow_experiment, artifact_location=options.mlflow_artifact_location)
    else:
        experiment_id = found.experiment_id
    run_name = options.run_name or kfp_run_name
    options = options.model_copy(update={"run_name": run_name})
    tags = {KFP_RUN_ID_TAG: kfp_run_id, KFP_RUN_NAME_TAG: kfp_run_name, STATE_TAG: "running"}
    unfinished = owned_runs(client, experiment_id, options, unfinished=True)
    if unfinished:
        run, resumed = unfinished[0], True
        client.update_run(run.info.run_id, status="RUNNING")
        for key, value in tags.items():
            client.set_tag(run.info.run_id, key, value)
        for key in (FAILED_STEP_TAG, ERROR_TAG):
            if key in run.data.tags:
                client.delete_tag(run.info.run_id, key)
        study_name = run.data.tags[STUDY_TAG]
    else:
        owner = {OWNER_TAG: options.run_owner} if options.run_owner else {}
        shown = _new_run_name(client, experiment_id, run_name)
        run, resumed = client.create_run(experiment_id, run_name=shown, tags={
            **tags, **owner, RUN_NAME_TAG: run_name, "mlflow.source.type": "PIPELINE"}), False
        study_name = _study_name(model_name, run_name, run.info.run_id)
        client.set_tag(run.info.run_id, STUDY_TAG, study_name)
    return RunContext(tracking_uri=tracking_uri, experiment_id=experiment_id,
                      parent_run_id=run.info.run_id, optuna_storage=optuna_storage,
                      study_name=study_name, kfp_run_id=kfp_run_id, kfp_run_name=kfp_run_name,
                      resumed=resumed)


def finish_pipeline_run(options: TrackingOptions, *, kfp_run_id: str, succeeded: bool,
                        error: str = "", failed_step: str = "") -> str | None:
    """Close the parent run of Kubeflow run ``kfp_run_id``: FINISHED, or FAILED with the
    error (and the failed step, where known) as tags, its trial runs still RUNNING ended
    as FAILED. Returns the parent run's id, None when the run never started one."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(_from_env(options.mlflow_tracking_uri, "MLFLOW_TRACKING_URI",
                                    "the MLflow tracking URI"))
    experiment = client.get_experiment_by_name(options.mlflow_experiment)
    if experiment is None:
        return None
    parents = client.search_runs([experiment.experiment_id],
                                 f"tags.`{KFP_RUN_ID_TAG}` = '{kfp_run_id}'", max_results=1)
    if not parents:
        return None
    parent_id = parents[0].info.run_id
    if succeeded:
        client.set_tag(parent_id, STATE_TAG, "finished")
        client.set_terminated(parent_id, "FINISHED")
        return parent_id
    close_unfinished_run(client, parents[0], state="failed", status="FAILED", error=error,
                         failed_step=failed_step)
    return parent_id


def close_unfinished_run(client, parent, *, state: str, status: str, error: str = "",
                         failed_step: str = "") -> None:
    """End a parent run that did not finish (failed, interrupted) and the trial runs it left
    open, with the state, error and failed step as tags: nothing stays RUNNING, and the
    state (not "finished") lets the same run name resume it."""
    parent_id = parent.info.run_id
    client.set_tag(parent_id, STATE_TAG, state)
    if error:
        client.set_tag(parent_id, ERROR_TAG, error[:4000])
    if failed_step:
        client.set_tag(parent_id, FAILED_STEP_TAG, failed_step)
    open_children = client.search_runs(
        [parent.info.experiment_id], f"tags.`mlflow.parentRunId` = '{parent_id}' and "
        "attributes.status = 'RUNNING'")
    for child in open_children:
        client.set_terminated(child.info.run_id, status)
    client.set_terminated(parent_id, status)


def _initialize_optuna_storage(url: str) -> None:
    """Create the study database's schema once, here: parallel workers that each meet a
    fresh database race on its migrations (sqlite: UNIQUE constraint on alembic_version)."""
    import optuna

    optuna.storages.RDBStorage(url)


def _from_env(value: str | None, variable: str, what: str) -> str:
    """An unset option means "the cluster's setting" (a ConfigMap-provided variable)."""
    value = value or os.environ.get(variable, "")
    if not value:
        raise ValueError(f"{what} is not set: give it in the config's tracking section or "
                         f"set ${variable}")
    return value


@contextmanager
def resume_parent_run(context: RunContext) -> Iterator[object]:
    """Make the pipeline's parent run the active MLflow run of this process; runs started
    inside (trials, evaluation) nest under it, in its experiment. The parent stays RUNNING
    afterwards (the pipeline's last task closes it), and the process's previous tracking URI
    and experiment come back."""
    import mlflow
    from mlflow.tracking import fluent

    previous_uri = mlflow.get_tracking_uri()
    previous_experiment = os.environ.get(EXPERIMENT_ENV)
    # set_experiment below also sets MLflow's process-wide active experiment, which would
    # outlive this block and send later runs of another store to an experiment it lacks.
    previous_active = fluent._active_experiment_id
    mlflow.set_tracking_uri(context.tracking_uri)
    os.environ[EXPERIMENT_ENV] = context.experiment_id
    try:
        # An experiment set earlier in this process (another store, another step run in the
        # same interpreter) takes precedence over the variable and makes MLflow refuse to
        # resume a run of another experiment.
        mlflow.set_experiment(experiment_id=context.experiment_id)
        with mlflow.start_run(run_id=context.parent_run_id) as run:
            yield run
        # Leaving the block ended the run; the pipeline is not over, unless what closed it
        # meanwhile (the last task, an interruption) says otherwise.
        client = mlflow.MlflowClient()
        if client.get_run(context.parent_run_id).data.tags.get(STATE_TAG) == "running":
            client.update_run(context.parent_run_id, status="RUNNING")
    finally:
        mlflow.set_tracking_uri(previous_uri)
        fluent._active_experiment_id = previous_active
        if previous_experiment is None:
            os.environ.pop(EXPERIMENT_ENV, None)
        else:
            os.environ[EXPERIMENT_ENV] = previous_experiment
