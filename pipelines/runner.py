"""Compile, run locally (Kubeflow's local runner) or submit the segmentation pipeline."""

from __future__ import annotations

import contextlib
import os
import sys
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from components.atomic import atomic_path
from pipelines.config import PipelineConfig
from pipelines.console import report_cache_hits, tee_task_output

CODE_ROOT = Path(__file__).resolve().parents[1]
KFP_TOKEN_ENV = "KFP_TOKEN"


class PipelineRunError(RuntimeError):
    """A local run failed; the message names the failed task and the full log."""


class SubmitError(ValueError):
    """The Kubeflow Pipelines API could not be reached or refused the run; names the host."""


def compile_pipeline(out: Path) -> Path:
    """Write the pipeline's IR YAML to ``out`` atomically."""
    from kfp import compiler

    from pipelines.pipeline import segmentation_pipeline

    with atomic_path(out, suffix=".yaml") as tmp:
        compiler.Compiler().compile(segmentation_pipeline, str(tmp))
    return out


@dataclass(frozen=True)
class LocalRunResult:
    test_miou: float
    model_version: str
    champion_version: str
    mlflow_run_id: str
    kfp_run_name: str
    tracking_uri: str
    model_name: str
    log_path: Path
    seconds: float


def run_local(config: PipelineConfig, *, verbose: bool = False,
              console: TextIO | None = None) -> LocalRunResult:
    """Run the whole pipeline through ``kfp.local`` with the current interpreter.

    Task output streams to ``<workdir>/logs/<time>.log``; ``console`` shows the task
    progress (everything when ``verbose``). Data steps are cached across runs when
    ``config.cache`` is on.
    """
    from kfp import local

    from pipelines.pipeline import pipeline_arguments, segmentation_pipeline

    console = console or sys.stdout
    workdir = config.workdir
    workdir.mkdir(parents=True, exist_ok=True)
    log_path = workdir / "logs" / f"run-{datetime.now(UTC):%Y%m%dT%H%M%S%f}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    tracking = config.tracking.for_local_run(workdir)
    arguments = pipeline_arguments(config, tracking)
    _prepare_task_environment()
    local.init(runner=local.SubprocessRunner(use_venv=False),
               pipeline_root=str(workdir / "kfp-outputs"),
               enable_caching=config.cache, raise_on_error=True)
    started = time.monotonic()
    with open(log_path, "w") as log, _quiet_local_runner_warnings(), \
            tee_task_output(log, console, verbose), report_cache_hits():
        try:
            task = segmentation_pipeline(**arguments)
        except RuntimeError as err:
            raise PipelineRunError(f"{err}\nfull log: {log_path}") from None
    outputs = task.outputs
    return LocalRunResult(
        test_miou=float(outputs["test_miou"]), model_version=str(outputs["model_version"]),
        champion_version=str(outputs["champion_version"]),
        mlflow_run_id=str(outputs["mlflow_run_id"]), kfp_run_name=str(outputs["kfp_run_name"]),
        tracking_uri=tracking.mlflow_tracking_uri, model_name=config.registry.model_name,
        log_path=log_path, seconds=time.monotonic() - started)


def _prepare_task_environment() -> None:
    """Task subprocesses inherit this environment: make them import this very checkout and
    keep TensorFlow's start-up chatter down."""
    paths = [str(CODE_ROOT)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep)
                                if p and p != str(CODE_ROOT)]
    os.environ["PYTHONPATH"] = os.pathsep.join(paths)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    os.environ.setdefault("PYTHONUNBUFFERED", "1")


@contextlib.contextmanager
def _quiet_local_runner_warnings() -> Iterator[None]:
    # Expected locally: cluster-only settings (resources, GPU) and a non-"python" image name.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*no effect in the current local runner.*")
        warnings.filterwarnings("ignore", message=".*non-Python base image.*")
        yield


@dataclass(frozen=True)
class SubmittedRun:
    run_id: str
    url: str


def submit(host: str, config: PipelineConfig, experiment: str | None = None,
           run_name: str | None = None, timeout_s: float = 15.0) -> SubmittedRun:
    """Submit a run of the pipeline with ``config``'s parameters to the KFP API at ``host``.

    The API token comes from ``$KFP_TOKEN`` (never from the config). Stores left unset in the
    config are taken by the tasks from the cluster's ``segpipe-endpoints`` ConfigMap.
    """
    host = host.rstrip("/")
    token = os.environ.get(KFP_TOKEN_ENV)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    _probe_api(host, headers, timeout_s)
    import kfp

    from pipelines.pipeline import pipeline_arguments, segmentation_pipeline

    try:
        with warnings.catch_warnings():
            # kfp warns on every Client() that it needs a v2 API; the probe checked for one.
            warnings.filterwarnings("ignore", category=FutureWarning, module="kfp")
            client = kfp.Client(host=host, existing_token=token)
        result = client.create_run_from_pipeline_func(
            segmentation_pipeline, arguments=pipeline_arguments(config, config.tracking),
            run_name=run_name, experiment_name=experiment or config.tracking.mlflow_experiment)
    except Exception as err:  # the client raises urllib3, ApiException, ValueError...
        raise SubmitError(f"Kubeflow Pipelines API at {host} did not accept the run: "
                          f"{_short(err)}") from err
    return SubmittedRun(run_id=result.run_id, url=f"{host}/#/runs/details/{result.run_id}")


def _probe_api(host: str, headers: dict[str, str], timeout_s: float) -> None:
    """Fail fast with a clear message before kfp.Client's own retries (minutes) start."""
    import requests

    url = f"{host}/apis/v2beta1/healthz"
    try:
        response = requests.get(url, headers=headers, timeout=timeout_s)
    except requests.RequestException as err:
        raise SubmitError(f"Kubeflow Pipelines API at {host} is unreachable: "
                          f"{_short(err)}") from None
    if response.status_code in (401, 403):
        raise SubmitError(f"Kubeflow Pipelines API at {host} refused the request "
                          f"(HTTP {response.status_code}): set ${KFP_TOKEN_ENV} to a valid "
                          "token") from None
    if response.status_code >= 400:
        raise SubmitError(f"Kubeflow Pipelines API at {host} answered HTTP "
                          f"{response.status_code} on {url}: is this a Kubeflow Pipelines "
                          "endpoint?") from None


def _short(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return (text[0] if text else type(err).__name__)[:300]
