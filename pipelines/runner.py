"""Compile the segmentation pipeline, or submit it to a Kubeflow Pipelines cluster."""

from __future__ import annotations

import os
import re
import warnings
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from components.atomic import atomic_path
from pipelines.images import ComponentImages, retarget

if TYPE_CHECKING:  # pipelines.config imports TensorFlow (the options models), seconds
    from pipelines.config import PipelineConfig

KFP_TOKEN_ENV = "KFP_TOKEN"
# A host that does not answer at all (firewalled, wrong address) is reported after the connect
# timeout; one that accepts but says nothing after the read timeout. Both well under 10 s.
CONNECT_TIMEOUT_S = 3.0
READ_TIMEOUT_S = 5.0
# Fields of KFP's healthz answer (kfp_server_api V2beta1GetHealthzResponse, v1's commit/tag).
_HEALTHZ_FIELDS = {"multi_user", "pipeline_store", "commit_sha", "tag_name"}


#: What a compiled spec may be named: kfp 2.17's compiler writes YAML only for these
#: (JSON for .json, deprecated; anything else refused).
SPEC_SUFFIXES = (".yaml", ".yml")


class SubmitError(ValueError):
    """The Kubeflow Pipelines API could not be reached or refused the run; names the host."""


def compile_pipeline(out: Path, images: ComponentImages | None = None,
                     cache: bool = True) -> Path:
    """Write the pipeline's IR YAML to ``out`` atomically, its tasks running in ``images``
    (default: ``ComponentImages.resolve()``); ``cache=False`` turns caching off for every task,
    data steps included."""
    if out.suffix.lower() not in SPEC_SUFFIXES:
        raise ValueError(f"{out}: a compiled pipeline is YAML; name it "
                         f"{' or '.join(SPEC_SUFFIXES)}")
    with atomic_path(out, suffix=".yaml") as tmp:
        _write_spec(tmp, images or ComponentImages.resolve(), cache)
    return out


def _write_spec(path: Path, images: ComponentImages, cache: bool) -> None:
    """kfp's own compile, with the executors' images and the tasks' caching edited in the
    spec before it is written (so the YAML keeps kfp's comments)."""
    from google.protobuf import json_format
    from kfp.compiler import pipeline_spec_builder as builder

    from pipelines.kfp_components import DECORATED_IMAGES
    from pipelines.pipeline import SECTIONS, section_defaults, segmentation_pipeline

    spec = builder.modify_pipeline_spec_with_override(
        segmentation_pipeline.pipeline_spec, pipeline_name=None, pipeline_parameters=None)
    deployment = json_format.MessageToDict(spec.deployment_spec)
    retarget(deployment, DECORATED_IMAGES, images)
    spec.deployment_spec.Clear()
    spec.deployment_spec.update(deployment)
    if not cache:
        # kfp's Client(enable_caching=False) only reaches the root DAG's tasks; the data steps
        # sit inside the exit handler's DAG, so every DAG's tasks are switched off here.
        for dag in [spec.root.dag, *(c.dag for c in spec.components.values())]:
            for task in dag.tasks.values():
                task.caching_options.enable_cache = False
    # Written as kfp writes it, but for the sections' defaults: a dict parameter's default is
    # a protobuf Struct, whose numbers are all doubles, so kfp would show every int as a
    # float (patch_size: 256.0). The models' own JSON says which numbers are ints; a cluster
    # reads the two alike.
    data = json_format.MessageToDict(spec)
    parameters = data["root"]["inputDefinitions"]["parameters"]
    for name, model in SECTIONS.items():
        parameters[name]["defaultValue"] = section_defaults(model)
    write_spec_yaml(path, data, segmentation_pipeline.description,
                    segmentation_pipeline.platform_spec)


def _downloads_to_workspace(data: dict) -> bool:
    executors = data.get("deploymentSpec", {}).get("executors", {})
    return any(isinstance(e, dict) and e.get("importer", {}).get("downloadToWorkspace")
               for e in executors.values())


def _has_workspace(platforms: dict) -> bool:
    return any(isinstance(p, dict) and (p.get("pipelineConfig") or {}).get("workspace")
               is not None for p in platforms.get("platforms", {}).values())


def write_spec_yaml(path: Path, data: dict, description: str | None, platform_spec) -> None:
    """Write a pipeline spec (``data``, as a dict) as kfp 2.17's write_pipeline_spec_to_file
    writes YAML (kfp/compiler/pipeline_spec_builder.py): its check that an importer
    downloading to the workspace has a workspace configured, its comments, and the
    platform spec as a second document only when the pipeline has platform features."""
    from google.protobuf import json_format
    from kfp.compiler import pipeline_spec_builder as builder

    platforms = json_format.MessageToDict(platform_spec)
    if _downloads_to_workspace(data) and not _has_workspace(platforms):
        raise ValueError("dsl.importer(download_to_workspace=True) requires "
                         "PipelineConfig(workspace=...) on the pipeline")
    documents = [data, platforms] if len(platform_spec.platforms) > 0 else [data]
    with open(path, "w") as file:
        file.write(builder.extract_comments_from_pipeline_spec(data, description))
        yaml.dump_all(documents, file, sort_keys=True)


@dataclass(frozen=True)
class SubmittedRun:
    run_id: str
    url: str


def source_fingerprint_for(config: PipelineConfig) -> tuple[str, str | None]:
    """The fingerprint of what ``config``'s source holds, listed from this machine at
    submission (the ingest's cache key on the cluster), and a warning when it cannot be
    listed from here (e.g. no S3 credentials outside the cluster): the run then goes without
    one, and a cached ingest of the same source is reused even if files in it changed."""
    from components.raster import DataError
    from components.source_fingerprint import fingerprint, list_source

    try:
        return fingerprint(list_source(config.source,
                                       config.data.ingest.max_source_files)), None
    except DataError as err:
        return "", (f"source: {err}; the run goes without a fingerprint of the source, so "
                    f"a cached ingest of it is reused even if its files changed "
                    f"(--no-cache re-reads it)")


def cluster_warnings(config: PipelineConfig) -> list[str]:
    """What in ``config`` names this machine's files, which a cluster's tasks cannot read."""
    local = [("source", config.source)]
    ingest = config.data.ingest
    if ingest.classes_file:
        local.append(("data.ingest.classes_file", ingest.classes_file))
    if isinstance(ingest.palette, str) and ingest.palette not in ("auto", "classes.json"):
        local.append(("data.ingest.palette", ingest.palette))
    for name in ("mlflow_tracking_uri", "optuna_storage", "mlflow_artifact_location"):
        value = getattr(config.tracking, name)
        if value:
            local.append((f"tracking.{name}", value))
    return [f"{field}: {value} is a path on this machine; the cluster's tasks cannot read it "
            "(use s3://bucket/prefix, or a server URL for the stores)"
            for field, value in local if _is_local(value)]


def _is_local(value: str) -> bool:
    scheme = value.split("://", 1)[0].lower() if "://" in value else ""
    return scheme in ("", "file") or scheme.startswith("sqlite")


def check_api(host: str, token: str | None = None, connect_timeout_s: float = CONNECT_TIMEOUT_S,
              read_timeout_s: float = READ_TIMEOUT_S) -> None:
    """Fail fast, naming ``host``, unless it answers KFP's healthz JSON: before kfp.Client's
    own retries (a minute or more) start, and before the config's heavy imports."""
    import requests

    host = host.rstrip("/")
    url = f"{host}/apis/v2beta1/healthz"
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        response = requests.get(url, headers=headers, allow_redirects=False,
                                timeout=(connect_timeout_s, read_timeout_s))
    except requests.ConnectTimeout:
        raise SubmitError(f"Kubeflow Pipelines API at {host} is unreachable: no connection "
                          f"within {connect_timeout_s:g} s") from None
    except requests.Timeout:
        raise SubmitError(f"Kubeflow Pipelines API at {host} is unreachable: it took the "
                          f"connection but sent no answer within {read_timeout_s:g} s") from None
    except requests.RequestException as err:
        raise SubmitError(f"Kubeflow Pipelines API at {host} is unreachable: "
                          f"{os_reason(err) or _short(err)}") from None
    if response.status_code in (401, 403):
        raise SubmitError(f"Kubeflow Pipelines API at {host} refused the request "
                          f"(HTTP {response.status_code}): set ${KFP_TOKEN_ENV} to a valid "
                          "token")
    if 300 <= response.status_code < 400:
        # e.g. a login page in front of the API (Dex, OAuth2 proxy)
        raise SubmitError(f"Kubeflow Pipelines API at {host} redirected {url} to "
                          f"{response.headers.get('Location', '?')}: a login in front of the "
                          f"API? Set ${KFP_TOKEN_ENV}, or give the API's own address")
    if response.status_code >= 400:
        raise SubmitError(f"Kubeflow Pipelines API at {host} answered HTTP "
                          f"{response.status_code} on {url}: is this a Kubeflow Pipelines "
                          "endpoint?")
    try:
        answer = response.json()
    except ValueError:
        answer = None
    if not isinstance(answer, dict) or (answer and not _HEALTHZ_FIELDS & set(answer)):
        kind = response.headers.get("Content-Type", "unknown content").split(";")[0]
        raise SubmitError(f"{host} is not a Kubeflow Pipelines API: {url} answered {kind}, "
                          "not KFP's healthz JSON (the KFP UI and API are usually "
                          "`kubectl -n kubeflow port-forward svc/ml-pipeline-ui 8080:80`)")


def submit(host: str, config: PipelineConfig, experiment: str | None = None,
           run_name: str | None = None, images: ComponentImages | None = None,
           cache: bool | None = None, source_fingerprint: str = "") -> SubmittedRun:
    """Submit a run of the pipeline with ``config``'s parameters to the KFP API at ``host``,
    its tasks in ``images`` (default ``ComponentImages.resolve()``), caching data steps
    unless ``cache`` (default: the config's ``cache``) is off; ``source_fingerprint``
    (``source_fingerprint_for``) is a part of the ingest's cache key.

    The API token comes from ``$KFP_TOKEN`` (never from the config). Stores left unset in the
    config are taken by the tasks from the cluster's ``segpipe-endpoints`` ConfigMap.
    """
    import tempfile

    host = host.rstrip("/")
    token = os.environ.get(KFP_TOKEN_ENV)
    check_api(host, token)
    images = images or ComponentImages.resolve()
    import kfp

    from pipelines.pipeline import PIPELINE_NAME, pipeline_arguments

    with tempfile.TemporaryDirectory(prefix="segpipe-submit-") as folder:
        package = Path(folder) / "pipeline.yaml"
        _write_spec(package, images, config.cache if cache is None else cache)
        try:
            with warnings.catch_warnings():
                # kfp warns on every Client() that it needs a v2 API; the probe checked for one.
                warnings.filterwarnings("ignore", category=FutureWarning, module="kfp")
                client = kfp.Client(host=host, existing_token=token)
            result = client.create_run_from_pipeline_package(
                str(package),
                arguments=pipeline_arguments(config, config.tracking, source_fingerprint),
                run_name=run_name or f"{PIPELINE_NAME} {datetime.now():%Y-%m-%d %H-%M-%S}",
                experiment_name=experiment or config.tracking.mlflow_experiment)
        except Exception as err:  # the client raises urllib3, ApiException, ValueError...
            raise SubmitError(f"Kubeflow Pipelines API at {host} did not accept the run: "
                              f"{_short(err)}") from err
    return SubmittedRun(run_id=result.run_id, url=f"{host}/#/runs/details/{result.run_id}")


def os_reason(err: BaseException) -> str | None:
    """The system's words under urllib3's wrapping: 'Connection refused', 'Name or service
    not known'..."""
    found = re.search(r"\[Errno -?\d+\] ([^'\")\]]+)", str(err))
    return found.group(1).strip() if found else None


def _short(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return (text[0] if text else type(err).__name__)[:300]

