"""`segpipe run`: the whole pipeline on this machine through Kubeflow's local runner.

Every step runs as a subprocess of the current interpreter (``kfp.local.SubprocessRunner``).
A run is named after its config (``tracking.run_name``, else a digest of the config) and
owned by its workdir (``run_owner_for``), so running the same config again from the same
workdir after a kill or a failure resumes it: the data steps are cache hits, the MLflow
parent run and the Optuna study are the same, and an interrupted trial goes on from its last
epoch checkpoint (kept under ``<workdir>/trials``).

No task outlives the run: SIGINT/SIGTERM stop the task processes before the runner exits, and
each task process exits by itself when the runner dies, even by SIGKILL (``local_task_site``
starts a watchdog in every Python process the runner starts). A failed run says where and why
in its last line, and its MLflow parent run is FAILED with the step and the error as tags.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import secrets
import signal
import socket
import sys
import tempfile
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from components.raster import DataError
from components.tracking import TrackingOptions, redact_url
from pipelines.config import PipelineConfig
from pipelines.console import report_cache_hits, tee_task_output
from pipelines.run_record import (
    failure_cause,
    newest_parent_run,
    record_failure,
    record_interruption,
)
from pipelines.run_stop import STOP_FILE_ENV, Interrupted, stop_tasks, stopped_by_signals
from pipelines.run_temp import run_temp_folder
from pipelines.step_cache import prepare_step_cache

CODE_ROOT = Path(__file__).resolve().parents[1]
TASK_SITE = Path(__file__).resolve().parent / "local_task_site"
RUNNER_PID_ENV = "SEGPIPE_RUNNER_PID"


class PipelineRunError(RuntimeError):
    """A local run failed or was interrupted; the message says where, why, and names the
    full log."""


class PipelineInterrupted(PipelineRunError):
    """SIGINT/SIGTERM stopped a local run: ``kept`` says what it left."""

    def __init__(self, signum: int, kept: str) -> None:
        self.signum, self.kept = signum, kept
        super().__init__(f"interrupted by {signal.Signals(signum).name}; {kept}")


@dataclass(frozen=True)
class LocalRunResult:
    test_miou: float
    model_version: str
    champion_version: str
    mlflow_run_id: str
    run_name: str  # the MLflow parent run's (numbered for a repeat run: cfg-2)
    kfp_run_name: str
    tracking_uri: str  # may hold $MLFLOW_TRACKING_URI's password: for reading, not printing
    model_name: str
    log_path: Path
    seconds: float
    resumed: bool
    test_tile_miou: float = float("nan")
    config_run_name: str = ""  # the name resuming goes by (tracking.run_name)


def run_name_for(config: PipelineConfig) -> str:
    """The config's own run name, else a digest of the values that shape the run (source,
    data, tuning, registry) where they differ from the defaults: the same config names the
    same run, a default spelled out does not change it, and neither does an option the code
    gains later with a default (an unfinished run from before resumes rather than starting
    afresh). A changed default, in turn, keeps the name of a config that leaves it out, and
    its unfinished run resumes with the new default (docs/pipeline.md, "Resuming")."""
    if config.tracking.run_name:
        return config.tracking.run_name
    shaping = config.model_dump_json(include={"source", "data", "tuning", "registry"},
                                     exclude_defaults=True)
    return f"run-{hashlib.sha256(shaping.encode()).hexdigest()[:10]}"


def run_owner_for(workdir: Path) -> str:
    """Who a local run is: this host and workdir, where its resume state (trial checkpoints,
    the step cache) lives. Only a run of the same config from the same workdir resumes it;
    from another workdir, or another machine sharing the MLflow server, it is another run."""
    return f"{socket.gethostname()}:{workdir.resolve()}"


def local_options(config: PipelineConfig, *, fresh: bool = False) -> PipelineConfig:
    """The config with what a local run adds: the embedded stores under the workdir, the run
    name (a new one with ``fresh``) and owner, and a checkpoint folder that outlives a killed
    run."""
    workdir = config.workdir
    run_name = run_name_for(config)
    if fresh:
        run_name = f"{run_name}-{datetime.now(UTC):%Y%m%dT%H%M%S}"
    tracking: TrackingOptions = config.tracking.for_local_run(workdir)
    tuning = config.tuning
    if tuning.checkpoint_dir is None:
        tuning = tuning.model_copy(update={"checkpoint_dir": str(workdir / "trials")})
    owner = tracking.run_owner or run_owner_for(workdir)
    return config.model_copy(update={
        "tracking": tracking.model_copy(update={"run_name": run_name, "run_owner": owner}),
        "tuning": tuning})


def run_local(config: PipelineConfig, *, verbose: bool = False, fresh: bool = False,
              console: TextIO | None = None) -> LocalRunResult:
    """Run (or resume) the whole pipeline through ``kfp.local`` with the current interpreter.

    Task output streams to ``<workdir>/logs/<time>.log``; ``console`` shows the task
    progress (everything when ``verbose``). Data steps are cached across runs when
    ``config.cache`` is on; with it off they run again and their outputs replace the cache's
    entries (``step_cache.prepare_step_cache``). The source is listed first: it fails when
    it cannot be, or holds more than ``ingest.max_source_files`` files.
    """
    from pipelines.pipeline import pipeline_arguments, segmentation_pipeline

    console = console or sys.stdout
    if not verbose:  # MLflow's notices (creating the store's tables...) are not news here
        logging.getLogger("mlflow").setLevel(logging.WARNING)
    config = local_options(config, fresh=fresh)
    tracking = config.tracking
    workdir = config.workdir
    log_path = workdir / "logs" / f"run-{datetime.now(UTC):%Y%m%dT%H%M%S%f}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    resumed = _has_unfinished_run(tracking)
    pipeline_root = workdir / "kfp-outputs"
    try:
        source_fingerprint, news = prepare_step_cache(pipeline_root, config)
    except DataError as err:
        raise PipelineRunError(f"source: {err}") from None
    for line in news:
        print(line, file=console)
    started = time.monotonic()
    with run_temp_folder(workdir) as temp, open(log_path, "w") as log, \
            _task_environment(temp), \
            tee_task_output(log, console, verbose) as task_output, \
            stopped_by_signals(on_signal=task_output.mute), \
            _quiet_local_runner_warnings(), report_cache_hits():
        (temp / "kfp-workspace").mkdir()
        init_local_runner(pipeline_root, temp / "kfp-workspace")
        try:
            segmentation_pipeline(**pipeline_arguments(config, tracking,
                                                        source_fingerprint))
        except RuntimeError:
            log.flush()
            cause = failure_cause(log_path.read_text(errors="replace"))
            record_failure(tracking, cause)
            raise PipelineRunError(f"{cause.sentence()} (full log: {log_path})") from None
        except Interrupted as err:
            stop_tasks()  # any a task started while the first stop was under way
            record_interruption(tracking, err.name)
            raise PipelineInterrupted(err.signum, f"the task processes were stopped. Run "
                                      f"the same config again to resume it (full log: "
                                      f"{log_path})") from None
    return _result(config, log_path, time.monotonic() - started, resumed)


def init_local_runner(pipeline_root: Path, workspace_root: Path | None = None) -> None:
    """``kfp.local`` set up for a run: tasks as subprocesses of this interpreter, outputs
    and cache under ``pipeline_root``. Caching stays on with --no-cache too: kfp would then
    neither read nor write entries, leaving the next cached run the entries from before;
    ``prepare_step_cache`` drops them instead, and this run's become the ones reused."""
    from kfp import local

    local.init(runner=local.SubprocessRunner(use_venv=False),
               pipeline_root=str(pipeline_root),
               workspace_root=str(workspace_root) if workspace_root else None,
               enable_caching=True, raise_on_error=True)


def _has_unfinished_run(tracking: TrackingOptions) -> bool:
    from mlflow.tracking import MlflowClient

    from components.parent_run import owned_runs

    client = MlflowClient(tracking.mlflow_tracking_uri)
    experiment = client.get_experiment_by_name(tracking.mlflow_experiment)
    if experiment is None:
        return False
    return bool(owned_runs(client, experiment.experiment_id, tracking, unfinished=True))


def _result(config: PipelineConfig, log_path: Path, seconds: float,
            resumed: bool) -> LocalRunResult:
    """What the run left in MLflow: its test score, the version it registered, the
    champion."""
    from components.champion_gate import champion_version
    from components.register import TAG_REGISTERED_VERSION

    tracking, name = config.tracking, config.registry.model_name
    # unset: $MLFLOW_TRACKING_URI, a URL with a password (TrackingOptions.for_local_run)
    tracking_uri = tracking.mlflow_tracking_uri or os.environ["MLFLOW_TRACKING_URI"]
    client, parent = newest_parent_run(tracking)
    if parent is None or TAG_REGISTERED_VERSION not in parent.data.tags:
        raise PipelineRunError(f"the run finished but registered no model in "
                               f"{redact_url(tracking_uri)} (full log: {log_path})")
    champion = champion_version(client, name, config.registry.champion_alias)
    return LocalRunResult(
        test_miou=parent.data.metrics.get("test_miou", float("nan")),
        model_version=parent.data.tags[TAG_REGISTERED_VERSION],
        champion_version=str(champion.version) if champion else "none",
        mlflow_run_id=parent.info.run_id, run_name=parent.info.run_name,
        kfp_run_name=parent.data.tags.get("kfp.run_name", ""),
        tracking_uri=tracking_uri, model_name=name, log_path=log_path,
        seconds=seconds, resumed=resumed,
        test_tile_miou=parent.data.metrics.get("test_tile_miou", float("nan")),
        config_run_name=tracking.run_name or "")


@contextlib.contextmanager
def _task_environment(temp: Path) -> Iterator[None]:
    """Task subprocesses inherit this environment: this very checkout first on the path,
    the watchdog that ends them with the runner, TensorFlow's start-up chatter down, and
    the run's own ``temp`` folder as their TMPDIR."""
    previous = dict(os.environ)
    tempfile.gettempdir()  # settled now: this process's own temp files stay where they were
    os.environ["TMPDIR"] = str(temp)
    # Named now, created only by a stop: a runner killed with SIGKILL leaves nothing behind.
    stop_file = Path(tempfile.gettempdir()) / f"segpipe-stop-{os.getpid()}-{secrets.token_hex(6)}"
    paths = [str(TASK_SITE), str(CODE_ROOT)] + [
        p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep)
        if p and p not in (str(CODE_ROOT), str(TASK_SITE))]
    os.environ["PYTHONPATH"] = os.pathsep.join(paths)
    os.environ[RUNNER_PID_ENV] = str(os.getpid())
    os.environ[STOP_FILE_ENV] = str(stop_file)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(previous)
        stop_file.unlink(missing_ok=True)


@contextlib.contextmanager
def _quiet_local_runner_warnings() -> Iterator[None]:
    # Expected locally: cluster-only settings (resources, GPU) and a non-"python" image name.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*no effect in the current local runner.*")
        warnings.filterwarnings("ignore", message=".*non-Python base image.*")
        yield
