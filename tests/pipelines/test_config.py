"""The config file: one YAML validated at the edge, errors that name the file and field."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest

from pipelines.config import ConfigError, PipelineConfig, load_config
from pipelines.params import (
    classes_from_param,
    classes_to_param,
    ingest_options_from_params,
    pipeline_arguments,
    split_options_from_params,
)

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
    ("source: x\ndata: {tile: {patch_size: -1}}\n", "my.yaml: data.tile.patch_size: Input should be greater than or equal to 8"),  # noqa: E501
    ("source: x\ndata: {split: {strategy: diagonal}}\n", "my.yaml: data.split.strategy:"),  # noqa: E501
    ("source: x\ndata: {split: {ratios: [0.5, 0.5, 0.5]}}\n", "my.yaml: data.split.ratios: Value error"),  # noqa: E501
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


def test_training_settings_are_checked_against_the_train_step(tmp_path):
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, "source: x\ntuning: {train: {batch_size: 0, bogus: 1}}\n"))
    assert "my.yaml: tuning.train.batch_size: Input should be greater than or equal to 1" \
        in str(info.value)
    assert "my.yaml: tuning.train.bogus: Extra inputs are not permitted" in str(info.value)


def test_search_space_is_checked_against_the_tune_step(tmp_path):
    text = ("source: x\ntuning:\n  search_space:\n    models:\n      unet:\n"
            "        depth: {type: int, low: 5, high: 2}\n")
    with pytest.raises(ConfigError, match=r"my\.yaml: tuning\.search_space\.models\.unet\.depth"):
        load_config(write(tmp_path, text))


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


@pytest.mark.parametrize(("palette", "classes_file"), [
    ("auto", None), (None, None), ("classes.json", None), ("classes.json", "/data/classes.json"),
    ([{"name": "water", "color": "#0000FF"}], None)])
def test_classes_round_trip_through_the_run_parameter(palette, classes_file):
    fields = classes_from_param(classes_to_param(palette, classes_file))
    assert fields["palette"] == palette
    assert fields.get("classes_file") == classes_file


def test_ingest_options_from_run_parameters_validate():
    options = ingest_options_from_params("/d/classes.json", {"ignore_values": [0]})
    assert (options.palette, options.classes_file) == ("classes.json", "/d/classes.json")
    assert options.ignore_values == [0]
    with pytest.raises(ValueError, match="color_tolerance"):
        ingest_options_from_params("auto", {"color_tolerance": 999})


def test_classes_file_resolves_against_the_config_folder(tmp_path):
    text = "source: s\ndata: {ingest: {palette: classes.json, classes_file: c/classes.json}}\n"
    config = load_config(write(tmp_path, text))
    assert config.data.ingest.classes_file == str(tmp_path / "c" / "classes.json")
    assert pipeline_arguments(config, local=True)["classes"] == str(tmp_path / "c" / "classes.json")


def test_cli_reports_config_errors_without_a_traceback(tmp_path):
    import os
    import subprocess
    import sys

    repo_root = Path(__file__).resolve().parents[2]
    bad = write(tmp_path, "source: x\ntuning: {n_trials: 0}\n", name="bad.yaml")
    done = subprocess.run([sys.executable, "-m", "pipelines.cli", "run", "--config", str(bad)],
                          cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(repo_root)},
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert "bad.yaml: tuning.n_trials: Input should be greater than 0" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(("patch_size", "stride"), [(256, None), (256, 192), (256, 1),
                                                    (100, 37), (64, 64)])
def test_tile_stride_round_trips_through_the_overlap_parameter(patch_size, stride):
    from pipelines.params import overlap_for, stride_for

    overlap = overlap_for(patch_size, stride)
    assert stride_for(patch_size, overlap) == (None if stride in (None, patch_size) else stride)


@pytest.mark.parametrize("overlap", [-0.1, 1.0])
def test_overlap_outside_its_range_is_an_error(overlap):
    from pipelines.params import stride_for

    with pytest.raises(ValueError, match="tile_overlap"):
        stride_for(256, overlap)


def test_every_split_option_reaches_the_split_step():
    from pipelines.config import parse_config

    split = {"strategy": "block", "ratios": [0.5, 0.3, 0.2], "seed": 7, "block_size": 96,
             "drop_overlaps": False}
    config = parse_config({"source": "s", "data": {"split": split}})
    args = pipeline_arguments(config, local=False)
    rebuilt = split_options_from_params(
        **{name: args[f"split_{name}"] for name in type(config.data.split).model_fields})
    assert rebuilt == config.data.split


def test_every_tile_option_reaches_the_tile_step():
    from pipelines.config import parse_config
    from pipelines.params import tile_options_from_params

    tile = {"patch_size": 128, "stride": 96, "scale": 0.5, "min_valid_fraction": 0.4}
    config = parse_config({"source": "s", "data": {"tile": tile}})
    args = pipeline_arguments(config, local=False)
    rebuilt = tile_options_from_params(args["patch_size"], args["tile_overlap"],
                                       args["tile_scale"], args["min_valid_fraction"])
    assert rebuilt == config.data.tile
