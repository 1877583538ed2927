"""The config file: one YAML validated at the edge, errors that name the file and field."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest

from pipelines.config import ConfigError, PipelineConfig, load_config
from pipelines.params import palette_from_param, palette_to_param, pipeline_arguments

CONFIGS = Path(__file__).resolve().parents[2] / "pipelines" / "configs"


def write(tmp_path: Path, text: str, name: str = "my.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_minimal_config_resolves_paths_against_its_folder(tmp_path):
    config = load_config(write(tmp_path, "source: scenes\nworkdir: work\n"))
    assert config.source == str(tmp_path / "scenes")
    assert config.workdir == tmp_path / "work"
    assert config.tuning.n_trials > 0 and config.registry.model_name == "segpipe"


def test_remote_source_is_kept_verbatim(tmp_path):
    config = load_config(write(tmp_path, "source: s3://bucket/prefix\n"))
    assert config.source == "s3://bucket/prefix"


@pytest.mark.parametrize(("text", "expected"), [
    ("source: x\ntuning: {n_trials: 0}\n", "my.yaml: tuning.n_trials: Input should be greater than 0"),  # noqa: E501
    ("source: x\ntuning: {n_trails: 3}\n", "my.yaml: tuning.n_trails: Extra inputs are not permitted"),  # noqa: E501
    ("source: x\ndata: {tile: {patch_size: -1}}\n", "my.yaml: data.tile.patch_size: Input should be greater than 0"),  # noqa: E501
    ("source: x\ndata: {split: {strategy: diagonal}}\n", "my.yaml: data.split.strategy:"),  # noqa: E501
    ("source: x\ndata: {split: {ratios: [0.5, 0.5, 0.5]}}\n", "my.yaml: data.split: Value error, ratios"),  # noqa: E501
    ("source: x\nregistry: {model_name: 'bad name!'}\n", "my.yaml: registry.model_name:"),
    ("workdir: w\n", "my.yaml: source: Field required"),
    ("- a\n- b\n", "my.yaml: expected a mapping"),
    ("source: [unclosed\n", "my.yaml: not valid YAML"),
])
def test_errors_name_the_file_and_the_field(tmp_path, text, expected):
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, text))
    assert expected in str(info.value)
    assert isinstance(info.value, ValueError)


def test_missing_file_is_named(tmp_path):
    with pytest.raises(ConfigError, match="nope.yaml: config file not found"):
        load_config(tmp_path / "nope.yaml")


def test_overrides_replace_file_values(tmp_path):
    config = load_config(write(tmp_path, "source: a\ncache: true\n"),
                         {"source": "/data/b", "cache": False})
    assert (config.source, config.cache) == ("/data/b", False)


@pytest.mark.parametrize("name", ["demo.yaml", "example.yaml"])
def test_shipped_configs_validate(name):
    config = load_config(CONFIGS / name, {"source": "/tmp/anything"})
    assert isinstance(config, PipelineConfig)


def test_local_arguments_fill_in_embedded_stores(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    config = load_config(write(tmp_path, "source: s\nworkdir: w\ntuning: {n_workers: 3}\n"))
    args = pipeline_arguments(config, local=True)
    assert args["mlflow_tracking_uri"] == f"sqlite:///{tmp_path / 'w' / 'mlflow.db'}"
    assert args["optuna_storage"] == f"sqlite:///{tmp_path / 'w' / 'optuna.db'}"
    assert args["mlflow_artifact_location"] == (tmp_path / "w" / "mlartifacts").as_uri()
    assert args["tune_workers"] == [0, 1, 2]


def test_cluster_arguments_leave_unset_stores_to_the_cluster(tmp_path):
    config = load_config(write(tmp_path, "source: s3://b/p\n"))
    args = pipeline_arguments(config, local=False)
    assert args["mlflow_tracking_uri"] == "" and args["optuna_storage"] == ""
    assert args["mlflow_artifact_location"] == ""


def test_arguments_match_the_pipeline_signature(tmp_path):
    from pipelines.pipeline import segmentation_pipeline

    args = pipeline_arguments(load_config(write(tmp_path, "source: s\n")), local=True)
    signature = inspect.signature(segmentation_pipeline.pipeline_func)
    assert set(args) == set(signature.parameters)


@pytest.mark.parametrize("palette", ["auto", None, "/data/classes.json",
                                     [{"name": "water", "color": "#0000FF"}]])
def test_palette_round_trips_through_the_run_parameter(palette):
    assert palette_from_param(palette_to_param(palette)) == palette
