"""From the Train form (or a pasted YAML) to the config a run starts with: validated by
``pipelines.config.parse_config`` like any config file, then placed in the run's folder and
pointed at the app's tracking store, and its source checked before anything starts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel

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
    if not settings.kfp_host:
        uri = tracking.mlflow_tracking_uri or settings.tracking_uri
        changes: dict[str, Any] = {"mlflow_tracking_uri": uri}
        if uri.startswith(_SQLITE) and not tracking.mlflow_artifact_location:
            store = Path(uri[len(_SQLITE):].split("?")[0])
            changes["mlflow_artifact_location"] = (store.parent / "mlartifacts").as_uri()
        update["tracking"] = tracking.model_copy(update=changes)
    return config.model_copy(update=update)


def _tidy(model: BaseModel, data: dict[str, Any]) -> dict[str, Any]:
    """``data`` (``model`` dumped without defaults) without the unset sections a field
    serializer still dumps (``search_space: null``: pydantic keeps a serialized field's
    default), recursively."""
    for name, field in type(model).model_fields.items():
        if name not in data:
            continue
        value = getattr(model, name)
        if data[name] is None and field.default is None:
            del data[name]
        elif isinstance(value, BaseModel) and isinstance(data[name], dict):
            _tidy(value, data[name])
    return data


def _int_bounds(data: Any) -> Any:
    """An ``int`` search dimension's bounds and step as ints (its model holds them as
    floats): ``depth: {type: int, low: 2, high: 4}``, as a user writes it."""
    if isinstance(data, dict):
        if data.get("type") == "int":
            for key in ("low", "high", "step"):
                if isinstance(data.get(key), float) and data[key].is_integer():
                    data[key] = int(data[key])
        for value in data.values():
            _int_bounds(value)
    elif isinstance(data, list):
        for value in data:
            _int_bounds(value)
    return data


def to_yaml(config: PipelineConfig) -> str:
    """The config file a run reads: only what differs from the models' defaults."""
    data = _tidy(config, config.model_dump(mode="json", exclude_defaults=True))
    tuning = data.get("tuning", {})
    if "search_space" in tuning:
        _int_bounds(tuning["search_space"])
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)




def check_inputs(config: PipelineConfig, kubeflow: bool) -> None:
    """Before a run starts, what can be checked here in an instant: a local source, palette
    or classes file must be there, and a Kubeflow run cannot read this machine's files.
    Whether the source holds scene pairs is the ingest step's to say (its message shows on
    the run's page within seconds)."""
    from components.sources import ARCHIVE_SUFFIXES

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
