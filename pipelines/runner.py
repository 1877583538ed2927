"""Compile the segmentation pipeline, or submit it to a Kubeflow Pipelines cluster."""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path

from components.atomic import atomic_path
from pipelines.config import PipelineConfig

CODE_ROOT = Path(__file__).resolve().parents[1]
KFP_TOKEN_ENV = "KFP_TOKEN"


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
