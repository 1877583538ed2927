"""From the Train form (or a pasted YAML) to the config a run starts with: validated by
``pipelines.config.parse_config`` like any config file, then placed in the run's folder and
pointed at the app's tracking store, and its source checked before anything starts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from components.tracking import has_password
from pipelines.config import PipelineConfig, is_local, parse_config
from pipelines.config_file import load_yaml
from pipelines.ui.settings import UiError, UiSettings

_SQLITE = "sqlite:///"


def parse_yaml_text(text: str, origin: str, base: Path) -> PipelineConfig:
    """A pasted or uploaded config; ConfigError naming ``origin`` and the field."""
    data = load_yaml(text, origin)
    return parse_config({} if data is None else data, origin=origin, base=base)


def for_run(config: PipelineConfig, settings: UiSettings, folder: Path) -> PipelineConfig:
    """The config as the run uses it: its workdir is the run's folder, the pipeline run is
    named after the app's run (unless the config names it), and a local run logs to the
    app's tracking store (unless the config names another), with a new experiment's
    artifacts beside a SQLite store rather than in the run's folder."""
    update: dict[str, Any] = {"workdir": folder}
    tracking = config.tracking
    # segpipe run resumes an unfinished run of the same name, and names a run after the
    # settings that shape it: two app runs with the same settings must not become one.
    if not tracking.run_name:
        tracking = tracking.model_copy(update={"run_name": folder.name})
        update["tracking"] = tracking
    # A store URL with a password stays out of the config (which the run's folder keeps,
    # and which refuses one): the run reads it from $MLFLOW_TRACKING_URI, the app's own.
    if not settings.kfp_host and not has_password(settings.tracking_uri):
        uri = tracking.mlflow_tracking_uri or settings.tracking_uri
        changes: dict[str, Any] = {"mlflow_tracking_uri": uri}
        if uri.startswith(_SQLITE) and not tracking.mlflow_artifact_location:
            store = Path(uri[len(_SQLITE):].split("?")[0])
            changes["mlflow_artifact_location"] = (store.parent / "mlartifacts").as_uri()
        update["tracking"] = tracking.model_copy(update=changes)
    return config.model_copy(update=update)


def check_inputs(config: PipelineConfig, kubeflow: bool) -> None:
    """Before a run starts, what can be checked here in an instant: a local source, palette
    or classes file must be there, and a Kubeflow run cannot read this machine's files.
    Whether the source holds scene pairs is the ingest step's to say (its message shows on
    the run's page within seconds)."""
    from components.extract import ARCHIVE_SUFFIXES

    ingest = config.data.ingest
    files = {"data.ingest.classes_file": ingest.classes_file}
    if isinstance(ingest.palette, str) and ingest.palette not in ("auto", "classes.json"):
        files["data.ingest.palette"] = ingest.palette
    local = {field: path for field, path in files.items() if path and is_local(path)}
    source = config.source
    if is_local(source):
        local = {"source": source, **local}
    if kubeflow and local:
        field, path = next(iter(local.items()))
        raise UiError(f"{field}: {path} is a local path, which a Kubeflow run cannot read: "
                      "give an s3:// URI")
    for field, path in local.items():
        if not Path(path).exists():
            raise UiError(f"{field}: {path} does not exist")
        if field != "source" and not Path(path).is_file():
            raise UiError(f"{field}: {path} is not a file")
    if is_local(source) and Path(source).is_file() and not source.lower().endswith(
            ARCHIVE_SUFFIXES):
        raise UiError(f"source: {source} is a file but not an archive "
                      f"({', '.join(ARCHIVE_SUFFIXES)})")
