"""One MLflow parent run per pipeline run, shared by the tasks that log under it.

The first task creates the parent run (tagged with the Kubeflow run id and name) and writes a
``RunContext`` JSON artifact; every later task reads it and resumes the parent run, so trials,
evaluation and registration nest under one run whichever pod or process they run in. The
context travels as an artifact rather than as string parameters because Kubeflow's local
runner substitutes upstream parameter outputs inside a ParallelFor body with the loop item.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from components.atomic import write_json

KFP_RUN_ID_TAG = "kfp.run_id"
KFP_RUN_NAME_TAG = "kfp.run_name"
STUDY_TAG = "optuna.study_name"
EXPERIMENT_ENV = "MLFLOW_EXPERIMENT_ID"  # MLflow's own variable: where new runs go


class RunContext(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tracking_uri: str
    experiment_id: str
    parent_run_id: str
    optuna_storage: str
    study_name: str
    kfp_run_id: str
    kfp_run_name: str

    @classmethod
    def load(cls, path: str | Path) -> RunContext:
        return cls.model_validate_json(Path(path).read_text())

    def save(self, path: str | Path) -> None:
        write_json(path, self.model_dump())


def study_name_for(model_name: str, kfp_run_name: str) -> str:
    """A study per pipeline run: re-runs never mix trials of different data."""
    return re.sub(r"[^A-Za-z0-9_.\-]+", "-", f"{model_name}-{kfp_run_name}")[:200]


def start_pipeline_run(*, tracking_uri: str, experiment: str, artifact_location: str,
                       optuna_storage: str, study_name: str, kfp_run_id: str,
                       kfp_run_name: str) -> RunContext:
    """Create the experiment if needed (artifacts at ``artifact_location`` when given) and a
    parent run tagged with the Kubeflow run; return the context later tasks resume."""
    from mlflow.tracking import MlflowClient

    tracking_uri = _from_env(tracking_uri, "MLFLOW_TRACKING_URI", "the MLflow tracking URI")
    optuna_storage = _from_env(optuna_storage, "OPTUNA_STORAGE", "the Optuna storage URL")
    client = MlflowClient(tracking_uri)  # creates the store's tables before any worker runs
    _initialize_optuna_storage(optuna_storage)
    found = client.get_experiment_by_name(experiment)
    if found is None:
        experiment_id = client.create_experiment(experiment,
                                                 artifact_location=artifact_location or None)
    else:
        experiment_id = found.experiment_id
    run = client.create_run(experiment_id, run_name=kfp_run_name, tags={
        KFP_RUN_ID_TAG: kfp_run_id,
        KFP_RUN_NAME_TAG: kfp_run_name,
        STUDY_TAG: study_name,
        "mlflow.source.type": "PIPELINE",
    })
    return RunContext(tracking_uri=tracking_uri, experiment_id=experiment_id,
                      parent_run_id=run.info.run_id, optuna_storage=optuna_storage,
                      study_name=study_name, kfp_run_id=kfp_run_id, kfp_run_name=kfp_run_name)


def _initialize_optuna_storage(url: str) -> None:
    """Create the study database's schema once, here: parallel workers that each meet a
    fresh database race on its migrations (sqlite: UNIQUE constraint on alembic_version)."""
    import optuna

    optuna.storages.RDBStorage(url)


def _from_env(value: str, variable: str, what: str) -> str:
    """An empty run parameter means "the cluster's setting" (a ConfigMap-provided variable)."""
    value = value or os.environ.get(variable, "")
    if not value:
        raise ValueError(f"{what} is not set: give the run parameter or set ${variable}")
    return value


@contextmanager
def resume_parent_run(context: RunContext) -> Iterator[object]:
    """Make the pipeline's parent run the active MLflow run of this process; runs started
    inside (trials, evaluation) nest under it, in its experiment. The process's previous
    tracking URI and experiment come back afterwards."""
    import mlflow

    previous_uri = mlflow.get_tracking_uri()
    previous_experiment = os.environ.get(EXPERIMENT_ENV)
    mlflow.set_tracking_uri(context.tracking_uri)
    os.environ[EXPERIMENT_ENV] = context.experiment_id
    try:
        # An experiment set earlier in this process (another store, another step run in the
        # same interpreter) takes precedence over the variable and makes MLflow refuse to
        # resume a run of another experiment.
        mlflow.set_experiment(experiment_id=context.experiment_id)
        with mlflow.start_run(run_id=context.parent_run_id) as run:
            yield run
    finally:
        mlflow.set_tracking_uri(previous_uri)
        if previous_experiment is None:
            os.environ.pop(EXPERIMENT_ENV, None)
        else:
            os.environ[EXPERIMENT_ENV] = previous_experiment
