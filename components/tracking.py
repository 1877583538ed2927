"""MLflow tracking: where runs go (``TrackingOptions``) and the runs steps log into.

Steps (train, evaluate, register, tune) never take tracking URIs or run ids: they log into
the MLflow run their caller made active (``ensure_run``), so the same function logs into a
pipeline's parent run, a trial's nested run or a run a test opened. A trial's run nests
under the active one (``child_run``); a step records the dataset it read (``log_dataset``).
The pipeline's parent run itself (start, resume in each task, finish) is
components/parent_run.py."""

from __future__ import annotations

import os
import re
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:
    from mlflow.data.meta_dataset import MetaDataset

DATASET_DIGEST_TAG = "segpipe.dataset_digest"


class TrackingOptions(BaseModel):
    """Where a pipeline run records runs, models and trials."""

    model_config = ConfigDict(extra="forbid")

    mlflow_tracking_uri: str | None = Field(
        None, description="MLflow tracking URI; unset: $MLFLOW_TRACKING_URI (a cluster's "
        "segpipe-endpoints ConfigMap), else a local run's sqlite:///<workdir>/mlflow.db")
    mlflow_experiment: str = Field("segpipe", min_length=1,
                                   description="MLflow experiment of the parent run")
    mlflow_artifact_location: str | None = Field(
        None, description="artifact location of a newly created experiment; unset: the "
        "server's default, or <workdir>/mlartifacts for a local run's embedded store")
    optuna_storage: str | None = Field(
        None, description="Optuna storage URL shared by the tune workers; unset: "
        "$OPTUNA_STORAGE (PostgreSQL on a cluster, password from $PGPASSWORD), else a "
        "local run's sqlite:///<workdir>/optuna.db")
    run_name: str | None = Field(
        None, description="the pipeline run's name in MLflow; started again under the same "
        "name, an interrupted (killed or failed) run resumes: its parent run, its Optuna "
        "study, its trials' checkpoints. Unset: the Kubeflow run's own name; `segpipe run` "
        "names a run after its config, so re-running a config resumes it")
    run_owner: str | None = Field(
        None, description="who may resume an unfinished run of this name, recorded on the "
        "run when it starts: `segpipe run` sets <host>:<absolute workdir>, so the same config "
        "run from another workdir (a teammate on one MLflow server) starts its own run. "
        "Unset (a cluster run): resumes only a run started with it unset")

    def for_local_run(self, workdir: Path) -> TrackingOptions:
        """The embedded stores under ``workdir`` wherever neither the options nor the
        environment name a store."""
        # SQLite's default 5 s lock wait is too short for parallel tune workers on a busy
        # machine; both stores get a minute.
        tracking_uri = _patient_sqlite(self.mlflow_tracking_uri
                                       or os.environ.get("MLFLOW_TRACKING_URI")
                                       or f"sqlite:///{workdir / 'mlflow.db'}")
        artifacts = self.mlflow_artifact_location
        if artifacts is None and not (self.mlflow_tracking_uri
                                      or os.environ.get("MLFLOW_TRACKING_URI")):
            artifacts = (workdir / "mlartifacts").as_uri()
        storage = (self.optuna_storage or os.environ.get("OPTUNA_STORAGE")
                   or f"sqlite:///{workdir / 'optuna.db'}")
        return self.model_copy(update={"mlflow_tracking_uri": tracking_uri,
                                       "mlflow_artifact_location": artifacts,
                                       "optuna_storage": storage})


def _patient_sqlite(uri: str) -> str:
    """A SQLite store URI that waits up to a minute for a lock (SQLite's default, 5 s, is too
    short for parallel tune workers on a busy machine); other URIs as they are."""
    if uri.startswith("sqlite:///") and "?" not in uri:
        return f"{uri}?timeout=60"
    return uri


@contextmanager
def ensure_run(run_name: str) -> Iterator[object]:
    """The active MLflow run, or a new one named ``run_name`` (in the current experiment)
    for the duration of the block when the caller opened none."""
    import mlflow

    active = mlflow.active_run()
    if active is not None:
        yield active
        return
    with mlflow.start_run(run_name=run_name) as run:
        yield run


@contextmanager
def child_run(run_name: str, tags: dict[str, str] | None = None,
              run_id: str | None = None) -> Iterator[object]:
    """A run nested under the active one (a trial under the pipeline's parent run); with
    ``run_id``, that earlier child resumed (a trial interrupted by a kill)."""
    import mlflow

    with mlflow.start_run(run_id=run_id, run_name=None if run_id else run_name,
                          nested=mlflow.active_run() is not None, tags=tags) as run:
        yield run


def log_dataset(dataset_dir: Path | str, digest: str, context: str,
                name: str | None = None) -> MetaDataset:
    """Record the prepared dataset (a local folder, or the s3:// prefix or archive it was
    prepared from) as an input of the active run, so the run names the exact data it saw;
    returned for ``mlflow.log_metrics(dataset=...)``, which links metrics to it."""
    import mlflow
    from mlflow.data.dataset_source_registry import resolve_dataset_source
    from mlflow.data.meta_dataset import MetaDataset

    where = str(dataset_dir)
    if "://" not in where:
        where = str(Path(where).resolve())
    with warnings.catch_warnings():  # a local path matches two equivalent source types
        warnings.simplefilter("ignore", UserWarning)
        source = resolve_dataset_source(where)
    # The store's digest column is short; the full sha256 goes into a tag.
    dataset = MetaDataset(source=source, name=name or Path(where.rstrip("/")).name or where,
                          digest=digest[:32])
    mlflow.set_tag(DATASET_DIGEST_TAG, digest)
    try:
        mlflow.log_input(dataset, context=context)
    except mlflow.exceptions.MlflowException:
        # Parallel workers logging the same new dataset race on its row; the loser finds it
        # there on a second try.
        mlflow.log_input(dataset, context=context)
    return dataset


def redact_url(url: str) -> str:
    """Drop the password from a database URL before it goes anywhere visible."""
    return re.sub(r"://([^:/@]+):[^@]*@", r"://\1:***@", url)
