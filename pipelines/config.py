"""The pipeline's one configuration file, validated once at the edge.

A run is described by one YAML file (examples in ``pipelines/configs/``)::

    source: data/my-scenes          # folder, s3://bucket/prefix or .zip/.tar archive
    workdir: .segpipe               # local runs: MLflow store, Optuna study, kfp outputs
    data:
      ingest: {palette: classes.json, classes_file: my-data/classes.json}
      tile: {patch_size: 256, stride: 192}
      split: {strategy: scene, ratios: [0.7, 0.15, 0.15]}
    tuning: {n_trials: 20, epochs: 20, n_workers: 1}
    registry: {model_name: segpipe}
    tracking: {mlflow_tracking_uri: null, optuna_storage: null}

Relative local paths (``source``, ``workdir``) are resolved against the config file's folder,
so a config means the same thing whatever the current directory. Every section forbids
unknown keys, so a typo is an error that names the field, e.g.
``my.yaml: tuning.n_trails: Extra inputs are not permitted``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from pipelines.options import IngestOptions, SplitOptions, TileOptions


class ConfigError(ValueError):
    """The config file is missing, not YAML, or does not validate; the message names the file
    and the field."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DataConfig(_Section):
    ingest: IngestOptions = Field(default_factory=IngestOptions,
                                  description="how scenes, masks and classes are read")
    tile: TileOptions = Field(default_factory=TileOptions, description="patch cutting")
    split: SplitOptions = Field(default_factory=SplitOptions,
                                description="train/val/test split without leakage")


class TuningConfig(_Section):
    n_trials: int = Field(20, gt=0, description="Optuna trials in the study (all workers)")
    n_workers: int = Field(1, gt=0, le=64,
                           description="parallel Optuna workers sharing one study")
    timeout_s: float | None = Field(None, gt=0,
                                    description="stop starting trials after this many seconds")
    epochs: int = Field(20, gt=0, description="maximum epochs per trial")
    search_space: dict[str, Any] = Field(
        default_factory=dict,
        description="hyperparameter search space; empty = the tune step's built-in space")
    train: dict[str, Any] = Field(
        default_factory=dict,
        description="fixed training settings for every trial (batch_size, loss, ...)")
    seed: int = Field(0, description="sampler seed (worker i uses seed + i)")
    pruner: Literal["median", "hyperband", "none"] = "median"


class RegistryConfig(_Section):
    model_name: str = Field("segpipe", min_length=1, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$",
                            description="MLflow registered model name")


class TrackingConfig(_Section):
    mlflow_tracking_uri: str | None = Field(
        None, description="None: $MLFLOW_TRACKING_URI, else sqlite:///<workdir>/mlflow.db")
    mlflow_experiment: str = Field("segpipe", min_length=1)
    optuna_storage: str | None = Field(
        None, description="None: sqlite:///<workdir>/optuna.db (PostgreSQL on a cluster)")


class PipelineConfig(_Section):
    source: str = Field(min_length=1, description="scene folder, s3://bucket/prefix or archive")
    workdir: Path = Field(Path(".segpipe"), description="local runs' stores and outputs")
    data: DataConfig = Field(default_factory=DataConfig)
    tuning: TuningConfig = Field(default_factory=TuningConfig)
    registry: RegistryConfig = Field(default_factory=RegistryConfig)
    tracking: TrackingConfig = Field(default_factory=TrackingConfig)
    cache: bool = Field(True, description="reuse completed data steps when inputs are unchanged")

    @field_validator("source")
    @classmethod
    def _strip(cls, value: str) -> str:
        return value.strip()

    def resolve_paths(self, base: Path) -> PipelineConfig:
        """A copy with relative local paths made absolute against ``base``."""
        update: dict[str, Any] = {"workdir": _absolute(self.workdir, base)}
        if _is_local(self.source):
            update["source"] = str(_absolute(Path(self.source), base))
        ingest = self.data.ingest
        if ingest.classes_file and _is_local(ingest.classes_file):
            classes_file = str(_absolute(Path(ingest.classes_file), base))
            data = self.data.model_copy(
                update={"ingest": ingest.model_copy(update={"classes_file": classes_file})})
            update["data"] = data
        return self.model_copy(update=update)

    # The embedded stores a local run falls back to; a cluster run sets them explicitly.
    def mlflow_tracking_uri(self) -> str:
        return (self.tracking.mlflow_tracking_uri or os.environ.get("MLFLOW_TRACKING_URI")
                or f"sqlite:///{self.workdir / 'mlflow.db'}")

    def mlflow_artifact_location(self) -> str:
        """Where a newly created experiment keeps artifacts: under the workdir for the embedded
        store; '' (the server's default) otherwise."""
        if self.mlflow_tracking_uri().startswith("sqlite:///") and \
                not self.tracking.mlflow_tracking_uri:
            return (self.workdir / "mlartifacts").as_uri()
        return ""

    def optuna_storage(self) -> str:
        return self.tracking.optuna_storage or f"sqlite:///{self.workdir / 'optuna.db'}"


def _is_local(source: str) -> bool:
    return "://" not in source


def _absolute(path: Path, base: Path) -> Path:
    path = path.expanduser()
    return path if path.is_absolute() else (base / path).resolve()


def format_validation_error(origin: str, err: ValidationError, prefix: str = "") -> str:
    """One line per problem: ``origin: dotted.field.path: message``."""
    lines = []
    for problem in err.errors():
        parts = [prefix] if prefix else []
        where = ".".join(parts + [str(part) for part in problem["loc"]]) or "(top level)"
        lines.append(f"{origin}: {where}: {problem['msg']}")
    return "\n".join(lines)


def parse_config(data: Any, origin: str = "config", base: Path | None = None) -> PipelineConfig:
    """Validate an already-loaded mapping; relative paths resolve against ``base``."""
    if not isinstance(data, dict):
        raise ConfigError(f"{origin}: expected a mapping of sections, got {type(data).__name__}")
    try:
        config = PipelineConfig.model_validate(data)
    except ValidationError as err:
        raise ConfigError(format_validation_error(origin, err)) from None
    _validate_step_settings(config, origin)
    return config.resolve_paths(base or Path.cwd())


def _validate_step_settings(config: PipelineConfig, origin: str) -> None:
    """Check the search space and training settings against the tune and train steps' own
    models now, not in a tune worker after the data steps ran. Imported lazily: they pull
    in TensorFlow, which an empty section does not need."""
    checks = []
    if config.tuning.search_space:
        from components.tune_space import SearchSpace

        checks.append(("tuning.search_space", SearchSpace, config.tuning.search_space))
    if config.tuning.train:
        from components.train import TrainParams

        checks.append(("tuning.train", TrainParams, config.tuning.train))
    for prefix, model, value in checks:
        try:
            model.model_validate(value)
        except ValidationError as err:
            raise ConfigError(format_validation_error(origin, err, prefix)) from None


def load_config(path: str | Path, overrides: dict[str, Any] | None = None) -> PipelineConfig:
    """Read and validate a YAML config; ``overrides`` (top-level keys) replace file values."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML: {err}") from None
    data = {} if data is None else data
    if overrides and isinstance(data, dict):
        data = {**data, **overrides}
    return parse_config(data, origin=str(path), base=path.resolve().parent)
