"""MLflow helpers shared by train, tune, evaluate and register.

The tracking URI comes from the argument, else ``MLFLOW_TRACKING_URI`` (read by MLflow),
so the embedded SQLite store and a remote server work the same way."""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import mlflow
from mlflow.data.dataset_source_registry import resolve_dataset_source
from mlflow.data.meta_dataset import MetaDataset

DATASET_DIGEST_TAG = "segpipe.dataset_digest"


def configure(tracking_uri: str | None, experiment_name: str | None) -> None:
    if tracking_uri:
        mlflow.set_tracking_uri(tracking_uri)
    if experiment_name and mlflow.active_run() is None:
        mlflow.set_experiment(experiment_name)


@contextmanager
def run_scope(run_id: str | None = None, run_name: str | None = None,
              parent_run_id: str | None = None,
              tags: dict[str, str] | None = None,
              reuse_active: bool = True) -> Iterator[mlflow.ActiveRun]:
    """Log into ``run_id`` (resumed), else the active run (if ``reuse_active``), else a new
    run.

    A new run is nested under the active run, or under ``parent_run_id`` when the parent
    lives in another process (tuning workers, Kubeflow steps)."""
    active = mlflow.active_run()
    if active is not None and (active.info.run_id == run_id or (run_id is None and reuse_active)):
        if tags:
            mlflow.set_tags(tags)
        yield active
        return
    nested = active is not None
    parent = None if nested or run_id else parent_run_id
    # A child started in another process goes into its parent's experiment.
    experiment_id = mlflow.MlflowClient().get_run(parent).info.experiment_id if parent else None
    with mlflow.start_run(run_id=run_id, run_name=None if run_id else run_name, nested=nested,
                          parent_run_id=parent, experiment_id=experiment_id,
                          tags=tags) as run:
        yield run


def log_dataset(dataset_dir: Path, digest: str, context: str, name: str | None = None) -> None:
    """Record the prepared dataset as a run input, so the run names the exact data it saw."""
    with warnings.catch_warnings():  # a local path matches two equivalent source types
        warnings.simplefilter("ignore", UserWarning)
        source = resolve_dataset_source(str(Path(dataset_dir).resolve()))
    # The store's digest column is short; the full sha256 goes into a tag.
    dataset = MetaDataset(source=source, name=name or Path(dataset_dir).name, digest=digest[:32])
    mlflow.log_input(dataset, context=context)
    mlflow.set_tag(DATASET_DIGEST_TAG, digest)


def redact_url(url: str) -> str:
    """Drop the password from a database URL before it goes anywhere visible."""
    return re.sub(r"://([^:/@]+):[^@]*@", r"://\1:***@", url)
