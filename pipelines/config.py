"""The pipeline's one configuration file, validated once at the edge.

A run is described by one YAML file (examples in ``pipelines/configs/``)::

    source: data/my-scenes          # folder, s3://bucket/prefix or .zip/.tar archive
    workdir: .segpipe               # local runs: MLflow store, Optuna study, kfp outputs
    data:                           # components.prepare.PrepareOptions
      ingest: {palette: classes.json, classes_file: my-data/classes.json}
      tile: {patch_size: 256, stride: 192}
      split: {strategy: scene, ratios: [0.7, 0.15, 0.15]}
    tuning: {n_trials: 20, epochs: 20, n_workers: 1}   # components.tune_options.TuneOptions
    registry: {model_name: segpipe}                    # components.register.RegisterOptions
    tracking: {mlflow_tracking_uri: null}              # components.tracking.TrackingOptions

Every section *is* the options model of the step that uses it: fields, defaults and checks are
defined there once, and the Kubeflow pipeline takes each section as one parameter. Relative
local paths (``source``, ``workdir``, a classes or palette file) are resolved against the
config file's folder, so a config means the same thing whatever the current directory. Every
section forbids unknown keys, so a typo is an error that names the field, e.g.
``my.yaml: tuning.n_trails: Extra inputs are not permitted``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from components.prepare import PrepareOptions
from components.register import RegisterOptions
from components.tracking import TrackingOptions
from components.tune_options import TuneOptions
from pipelines.config_file import ConfigError, format_validation_error, read_yaml


class PipelineConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    source: str = Field(min_length=1, description="scene folder, s3://bucket/prefix or archive")
    workdir: Path = Field(Path(".segpipe"), description="local runs' stores and outputs")
    data: PrepareOptions = Field(default_factory=PrepareOptions,
                                 description="ingest, tile and split options")
    tuning: TuneOptions = Field(default_factory=TuneOptions, description="the Optuna study")
    registry: RegisterOptions = Field(default_factory=RegisterOptions,
                                      description="model registry and champion gate")
    tracking: TrackingOptions = Field(default_factory=TrackingOptions,
                                      description="MLflow and Optuna stores")
    cache: bool = Field(True, description="reuse completed data steps when inputs are unchanged")

    @field_validator("source")
    @classmethod
    def _strip(cls, value: str) -> str:
        return value.strip()

    def resolve_paths(self, base: Path) -> PipelineConfig:
        """A copy with relative local paths made absolute against ``base``."""
        update: dict[str, Any] = {"workdir": _absolute(self.workdir, base)}
        if is_local(self.source):
            update["source"] = str(_absolute(Path(self.source), base))
        ingest = self.data.ingest
        files = {}
        if ingest.classes_file and is_local(ingest.classes_file):
            files["classes_file"] = str(_absolute(Path(ingest.classes_file), base))
        if isinstance(ingest.palette, str) and ingest.palette not in ("auto", "classes.json"):
            files["palette"] = str(_absolute(Path(ingest.palette), base))
        if files:
            update["data"] = self.data.model_copy(
                update={"ingest": ingest.model_copy(update=files)})
        return self.model_copy(update=update)

    def to_yaml(self) -> str:
        """The config as a file: only what differs from the models' defaults, as a user
        writes it (the sections' own dumps see to that); ``load_config`` reads it back
        equal. What the web app saves for a run, and anything else that writes a config."""
        data = self.model_dump(mode="json", exclude_defaults=True)
        return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)


def is_local(source: str) -> bool:
    return "://" not in source


def _absolute(path: Path, base: Path) -> Path:
    path = path.expanduser()
    # normalized, symlinks kept: messages then show the paths the user wrote
    return path if path.is_absolute() else Path(os.path.normpath(base / path))


def parse_config(data: Any, origin: str = "config", base: Path | None = None) -> PipelineConfig:
    """Validate an already-loaded mapping; relative paths resolve against ``base``."""
    if not isinstance(data, dict):
        raise ConfigError(f"{origin}: expected a mapping of sections, got {type(data).__name__}")
    try:
        config = PipelineConfig.model_validate(data)
    except ValidationError as err:
        raise ConfigError(format_validation_error(origin, err)) from None
    config = config.resolve_paths(base or Path.cwd())
    if problem := _empty_split_problem(config):
        raise ConfigError(f"{origin}: data.split.ratios: {problem}")
    # A local source that is not there fails now, not in the ingest task minutes later.
    if is_local(config.source) and not Path(config.source).exists():
        raise ConfigError(f"{origin}: source: {config.source} does not exist")
    if is_local(config.source) and _read_as_data(config.workdir.resolve(),
                                                  Path(config.source).resolve(), config):
        raise ConfigError(f"{origin}: workdir: {config.workdir} is inside the source "
                          f"{config.source}, where the ingest step looks for scenes: the "
                          "run's outputs would be read as scenes next time (and written "
                          "into your data); give a workdir outside it, or a hidden folder "
                          "such as .segpipe")
    return config


def _empty_split_problem(config: PipelineConfig) -> str | None:
    """A split the pipeline needs that the config leaves empty whatever the data: a ratio of
    0 (the split step skips such a split, allow_empty_splits or not)."""
    from components.artifacts import SPLIT_NAMES
    from components.split_advice import PIPELINE_NEEDS, WHERE_EMPTY_SPLITS_WORK

    split = config.data.split
    if split.strategy == "given":
        return None  # the dataset's own lists: the split step checks them
    for name, ratio in zip(SPLIT_NAMES, split.ratios, strict=True):
        if name in PIPELINE_NEEDS and ratio == 0:
            return (f"the {name} ratio is 0, but segpipe run {PIPELINE_NEEDS[name]}; "
                    f"{WHERE_EMPTY_SPLITS_WORK}")
    return None


def _read_as_data(workdir: Path, source: Path, config: PipelineConfig) -> bool:
    """``workdir`` lies where ingest looks for scenes in the local ``source``: the whole of
    it, or with ``image_dir`` set that folder and its labels' (by discovery's own rule,
    which skips hidden folders such as the default .segpipe beside a config in the data)."""
    from components.discover_folders import label_folders_beside
    from components.discover_rules import never_read

    ingest = config.data.ingest
    roots = [source]
    if ingest.image_dir:
        images = source / ingest.image_dir
        labels = [source / ingest.mask_dir] if ingest.mask_dir else \
            label_folders_beside(images, ingest.mask_dir_names) if images.parent.is_dir() \
            else []
        roots = [images, *labels]
    for root in roots:
        try:
            inside = workdir.relative_to(root.resolve())
        except ValueError:
            continue
        if not never_read(inside):
            return True
    return False


def load_config(path: str | Path, overrides: dict[str, Any] | None = None) -> PipelineConfig:
    """Read and validate a YAML config; ``overrides`` (top-level keys) replace file values."""
    path = Path(path)
    data = {**read_yaml(path), **(overrides or {})}
    return parse_config(data, origin=str(path), base=Path(os.path.abspath(path)).parent)
