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

from pydantic import BaseModel, ConfigDict, Field, field_validator

if TYPE_CHECKING:
    from mlflow.data.meta_dataset import MetaDataset

DATASET_DIGEST_TAG = "segpipe.dataset_digest"
#: On a pipeline's parent run: the source it was given (components/lineage.py sets it).
SOURCE_TAG = "segpipe.source"


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

    @field_validator("mlflow_tracking_uri", "mlflow_artifact_location", "optuna_storage")
    @classmethod
    def _no_password(cls, value: str | None, info) -> str | None:
        # These options travel as a pipeline parameter and in the run_context artifact, both
        # shown in the Kubeflow UI and the run's log: secrets come from the environment only.
        if value and has_password(value):
            raise ValueError(f"the URL holds a password, which would be stored with the run "
                             f"(its parameters, artifacts and log); leave it out: "
                             f"{_WHERE_PASSWORDS_GO[info.field_name]}")
        return value

    def for_local_run(self, workdir: Path) -> TrackingOptions:
        """The embedded stores under ``workdir`` wherever neither the options nor the
        environment name a store. A store the environment names by a URL with a password
        stays unset here: the tasks, which inherit the environment, read it there, and the
        options (every task's parameter, written to the run's log) never hold the password."""
        # SQLite's default 5 s lock wait is too short for parallel tune workers on a busy
        # machine; both stores get a minute.
        tracking_uri = self.mlflow_tracking_uri or _shareable_env(
            "MLFLOW_TRACKING_URI", f"sqlite:///{workdir / 'mlflow.db'}")
        artifacts = self.mlflow_artifact_location
        if artifacts is None and not (self.mlflow_tracking_uri
                                      or os.environ.get("MLFLOW_TRACKING_URI")):
            artifacts = (workdir / "mlartifacts").as_uri()
        storage = self.optuna_storage or _shareable_env(
            "OPTUNA_STORAGE", f"sqlite:///{workdir / 'optuna.db'}")
        return self.model_copy(update={
            "mlflow_tracking_uri": tracking_uri and _patient_sqlite(tracking_uri),
            "mlflow_artifact_location": artifacts,
            "optuna_storage": storage})


#: Where each store's password goes instead of the config (what the libraries read).
_WHERE_PASSWORDS_GO = {
    "optuna_storage": "a PostgreSQL password goes in $PGPASSWORD (or ~/.pgpass), or leave "
    "optuna_storage unset and set $OPTUNA_STORAGE",
    "mlflow_tracking_uri": "an MLflow server's login goes in $MLFLOW_TRACKING_USERNAME and "
    "$MLFLOW_TRACKING_PASSWORD, a database's password in $PGPASSWORD; or leave "
    "mlflow_tracking_uri unset and set $MLFLOW_TRACKING_URI",
    "mlflow_artifact_location": "S3 credentials go in $AWS_ACCESS_KEY_ID and "
    "$AWS_SECRET_ACCESS_KEY",
}


def _shareable_env(variable: str, default: str) -> str | None:
    """``$variable``, else ``default``; None when the variable's URL holds a password."""
    value = os.environ.get(variable)
    if not value:
        return default
    return None if has_password(value) else value


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
                name: str | None = None, source: str | None = None) -> MetaDataset:
    """Record the prepared dataset in ``dataset_dir`` as an input of the active run, by the
    data the user gave: ``source``; else the source of the pipeline run the active run belongs
    to (its own or its parent run's ``SOURCE_TAG``: an s3:// prefix, archive or folder); else
    the folder itself. A pipeline's tiles folder is a task's output: on a shared tracking
    server it would name a path on someone's machine or in a pod. ``digest`` names the exact
    tiles. Returned for ``mlflow.log_metrics(dataset=...)``, which links metrics to it."""
    import mlflow
    from mlflow.data.dataset_source_registry import resolve_dataset_source
    from mlflow.data.meta_dataset import MetaDataset

    where = redact_url(source or _run_source() or str(dataset_dir))
    if "://" not in where:
        where = str(Path(where).resolve())
    with warnings.catch_warnings():  # a local path matches two equivalent source types
        warnings.simplefilter("ignore", UserWarning)
        resolved = resolve_dataset_source(where)
    # The store's digest column is short; the full sha256 goes into a tag.
    dataset = MetaDataset(source=resolved, name=name or Path(where.rstrip("/")).name or where,
                          digest=digest[:32])
    mlflow.set_tag(DATASET_DIGEST_TAG, digest)
    try:
        mlflow.log_input(dataset, context=context)
    except mlflow.exceptions.MlflowException:
        # Parallel workers logging the same new dataset race on its row; the loser finds it
        # there on a second try.
        mlflow.log_input(dataset, context=context)
    return dataset


def _run_source() -> str | None:
    """The source the active run's pipeline run was given: a trial's run nests one level
    under the parent run that carries it."""
    import mlflow
    from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID

    active = mlflow.active_run()
    if active is None:
        return None
    tags = mlflow.get_run(active.info.run_id).data.tags
    if SOURCE_TAG not in tags and (parent := tags.get(MLFLOW_PARENT_RUN_ID)):
        tags = mlflow.get_run(parent).data.tags
    return tags.get(SOURCE_TAG) or None


def redact_url(url: str) -> str:
    """Drop the password from a database URL before it goes anywhere visible."""
    return _USERINFO_PASSWORD.sub(r"://\1:***@", url)


def has_password(url: str) -> bool:
    """``url`` names a non-empty password (``scheme://user:password@host``)."""
    return bool(_USERINFO_PASSWORD.search(url))


def without_password(url: str) -> str:
    """``url`` without its password (``scheme://user@host``): what a record may keep; the
    library then finds the password where it looks for one ($PGPASSWORD...)."""
    return _USERINFO_PASSWORD.sub(r"://\1@", url)


def with_env_password(url: str, variable: str) -> str:
    """``$variable`` where ``url`` is that URL with its password dropped (a record kept
    without it, ``without_password``), else ``url``: the password comes back from the
    environment that gave it."""
    given = os.environ.get(variable, "")
    return given if given and has_password(given) and without_password(given) == url else url


# The userinfo of a URL with a password: "://user:secret@" (the user may be empty). Neither
# part holds "/ ? #" (RFC 3986 userinfo escapes them), so an "@" in a path, query or
# fragment ("http://mlflow:5000/#/x?u=a@b") is no password; nor "@" or space, so that a line
# of text holding URLs is redacted URL by URL.
_USERINFO_PASSWORD = re.compile(r"://([^:/@?#\s]*):([^@/?#\s]+)@")
