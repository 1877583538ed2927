"""Training runs started from the app, as folders: one per run under ``<workdir>/runs/``,
what is in it, and the record of what was started.

A run folder holds the validated config (``<run id>.yaml``; its name is the run's, so a
`segpipe run` that names runs after their config never mistakes two app runs for one),
``run.json`` (what was started, and how), ``console.log`` (the command's output),
``exit.json`` and ``stop.json`` (how it ended, written by ``train_processes``) and, for a
local run, everything the pipeline writes (the folder is its ``workdir``). Every process
of a run carries ``SEGPIPE_UI_RUN=<folder>`` in its environment (``marker``), inherited
down to the pipeline's task subprocesses, so the run's processes are found exactly, even
after the app restarted."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, field_validator

from components.tracking import with_env_password, without_password

RUNS_DIR = "runs"
RUN_ENV = "SEGPIPE_UI_RUN"
MAX_LISTED_RUNS = 50

Mode = Literal["local", "kubeflow"]


class RunInfo(BaseModel):
    """``run.json``: what was started for this run."""

    id: str
    mode: Mode
    pid: int
    command: list[str]
    started_at: float
    model_name: str
    experiment: str = Field(description="MLflow experiment of the pipeline's parent run")
    tracking_uri: str = Field(description="where the app reads the run's progress, without "
                              "its password (``store_uri`` puts it back)")
    kfp_host: str | None = None

    @field_validator("tracking_uri")
    @classmethod
    def _no_password(cls, value: str) -> str:
        # run.json lies in the workdir, readable where the app's environment is not
        return without_password(value)

    def store_uri(self) -> str:
        """The tracking URI to read the run from: with its password again where the app's
        $MLFLOW_TRACKING_URI (``segpipe ui`` sets it to the app's store) holds one."""
        return with_env_password(self.tracking_uri, "MLFLOW_TRACKING_URI")


@dataclass(frozen=True)
class TrainRun:
    folder: Path

    @property
    def id(self) -> str:
        return self.folder.name

    @property
    def config_path(self) -> Path:
        return self.folder / f"{self.id}.yaml"

    @property
    def console_path(self) -> Path:
        return self.folder / "console.log"

    @property
    def info_path(self) -> Path:
        return self.folder / "run.json"

    @property
    def exit_path(self) -> Path:
        return self.folder / "exit.json"

    @property
    def stop_path(self) -> Path:
        return self.folder / "stop.json"

    def info(self) -> RunInfo:
        return RunInfo.model_validate_json(self.info_path.read_text())

    def marker(self) -> bytes:
        return f"{RUN_ENV}={self.folder}".encode()


def new_run(workdir: Path) -> TrainRun:
    """A new, empty run folder named after the time (sortable) and a random suffix."""
    run_id = f"train-{datetime.now():%Y%m%d-%H%M%S}-{secrets.token_hex(2)}"
    folder = workdir / RUNS_DIR / run_id
    folder.mkdir(parents=True)
    return TrainRun(folder)


def list_runs(workdir: Path, limit: int = MAX_LISTED_RUNS) -> list[TrainRun]:
    """Started runs, newest first."""
    root = workdir / RUNS_DIR
    if not root.is_dir():
        return []
    runs = [TrainRun(p) for p in root.iterdir() if (p / "run.json").is_file()]
    return sorted(runs, key=lambda r: r.id, reverse=True)[:limit]
