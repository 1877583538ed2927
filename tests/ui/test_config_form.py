"""The Train form is generated from the pipeline config's models, and what it produces is
validated and written exactly like a YAML config file."""

from __future__ import annotations

from pathlib import Path
from typing import get_args

import pytest

from components.sample_data import generate_sample_dataset
from components.split import SplitOptions
from components.tile import TileOptions
from components.tune_options import TuneOptions
from pipelines.config import ConfigError, PipelineConfig, load_config, parse_config
from pipelines.ui import search_form
from pipelines.ui.config_form import FormError, config_mapping, form_fields
from pipelines.ui.settings import UiError, UiSettings
from pipelines.ui.train_config import check_inputs, for_run, parse_yaml_text

SKIP = frozenset({"workdir", "tuning.search_space"})


@pytest.fixture(scope="module")
def fields():
    return form_fields(PipelineConfig, skip=SKIP)


def _by_key(fields):
    return {field.key: field for field in fields}


def _defaults(fields) -> dict:
    return {field.key: field.widget_default() for field in fields}


def test_widgets_take_kind_default_bounds_and_choices_from_the_models(fields):
    by_key = _by_key(fields)
    patch = by_key["data.tile.patch_size"]
    assert (patch.kind, patch.default) == ("int", TileOptions().patch_size)
    bounds = {type(m).__name__: m for m in TileOptions.model_fields["patch_size"].metadata}
    assert (patch.minimum, patch.maximum) == (bounds["Ge"].ge, bounds["Le"].le)
    strategy = by_key["data.split.strategy"]
    assert strategy.kind == "choice" and strategy.default == SplitOptions().strategy
    assert strategy.choices == get_args(SplitOptions.model_fields["strategy"].annotation)
    assert by_key["tuning.n_trials"].minimum == 1  # gt=0 on an int
    assert by_key["tuning.train.learning_rate"].minimum is None  # gt=0 on a float: validation
    assert by_key["tuning.pruner"].help == TuneOptions.model_fields["pruner"].description
    side = by_key["data.ingest.side_by_side"]  # bool | None: a checkbox cannot be unset
    assert side.kind == "choice" and side.optional and side.choices == (True, False)
    ratios = by_key["data.split.ratios"]
    assert ratios.kind == "yaml" and ratios.widget_default() == "[0.7, 0.15, 0.15]"
    assert by_key["source"].required and by_key["source"].kind == "text"
    assert "workdir" not in by_key and not any(k.startswith("tuning.search_space")
                                               for k in by_key)


def test_untouched_form_gives_only_the_source(fields):
    raw = _defaults(fields) | {"source": "scenes"}
    assert config_mapping(fields, raw) == {"source": "scenes"}


def test_changed_widgets_become_nested_sections(fields, tmp_path):
    (tmp_path / "scenes").mkdir()
    raw = _defaults(fields) | {"source": "scenes", "data.tile.patch_size": 32,
                               "data.split.ratios": "[0.5, 0.25, 0.25]",
                               "tuning.train.model_params": "{depth: 3}",
                               "tracking.optuna_storage": "  "}
    mapping = config_mapping(fields, raw)
    assert mapping == {"source": "scenes", "data": {"tile": {"patch_size": 32},
                                                    "split": {"ratios": [0.5, 0.25, 0.25]}},
                       "tuning": {"train": {"model_params": {"depth": 3}}}}
    config = parse_config(mapping, origin="form", base=tmp_path)
    assert config.data.split.ratios == (0.5, 0.25, 0.25)
    assert config.source == str(tmp_path / "scenes")  # relative to the base


def test_bad_yaml_names_every_field(fields):
    raw = _defaults(fields) | {"source": "s", "data.split.ratios": "[0.5, 0.25",
                               "data.ingest.class_values": "{1: [}"}
    with pytest.raises(FormError) as err:
        config_mapping(fields, raw)
    lines = str(err.value).splitlines()
    assert [line.split(": not valid YAML")[0] for line in lines] == [
        "form: data.ingest.class_values", "form: data.split.ratios"]


@pytest.mark.parametrize(("change", "message"), [
    ({"tuning.n_trials": 0}, "form: tuning.n_trials: Input should be greater than 0"),
    ({"data.split.ratios": "[0.5, 0.5, 0.5]"}, "form: data.split.ratios: ratios"),
    ({"source": ""}, "form: source: String should have at least 1 character"),
    ({"registry.model_name": "bad name"}, "form: registry.model_name: String should match"),
])
def test_validation_messages_are_the_config_files(fields, change, message):
    raw = _defaults(fields) | {"source": "s"} | change
    with pytest.raises(ConfigError, match="^" + message.replace("(", r"\(")):
        parse_config(config_mapping(fields, raw), origin="form")


def test_search_space_parts_default_to_the_tune_steps_space():
    space = search_form.default_space()  # this machine's: CPU or GPU
    training = {dim: search_form.default_spec(dim) for dim in space.training}
    models = {arch: {dim: spec.model_dump(mode="json", exclude_defaults=True)
                     for dim, spec in space.models[arch].items()}
              for arch in space.architecture.choices}
    assert search_form.search_space_value(space.architecture.choices, training, models) is None
    # A dimension the defaults do not search starts at the fixed training value.
    assert search_form.default_spec("weight_decay") == {"type": "categorical",
                                                        "choices": [0.0]}


def test_a_dimension_keeps_only_the_fields_its_type_uses():
    prefix = ("tuning", "search_space", "models", "unet", "depth")
    fields = search_form.spec_fields(prefix, {"type": "int", "low": 3, "high": 5})
    raw = {field.key: field.widget_default() for field in fields}
    assert search_form.spec_value(fields, raw) == {"type": "int", "low": 3, "high": 5}
    raw[".".join((*prefix, "type"))] = "categorical"
    raw[".".join((*prefix, "choices"))] = "[2]"
    assert search_form.spec_value(fields, raw) == {"type": "categorical", "choices": [2]}


def test_tiny_search_space_validates_and_round_trips_through_the_written_file(tmp_path):
    (tmp_path / "scenes").mkdir()
    unet = {"depth": {"type": "categorical", "choices": [2]},
            "filters": {"type": "categorical", "choices": [4]}}
    training = {"batch_size": {"type": "categorical", "choices": [8]}}
    space = search_form.search_space_value(["unet"], training, {"unet": unet})
    config = parse_config({"source": str(tmp_path / "scenes"),
                           "tuning": {"search_space": space, "n_trials": 2}})
    assert config.tuning.search_space.architecture.choices == ["unet"]
    settings = UiSettings(tracking_uri=f"sqlite:///{tmp_path}/store/mlflow.db",
                          workdir=tmp_path / "ui")
    folder = tmp_path / "ui" / "runs" / "train-1"
    run_config = for_run(config, settings, folder)
    written = folder / "train-1.yaml"
    folder.mkdir(parents=True)
    written.write_text(run_config.to_yaml())
    assert load_config(written) == run_config  # what `segpipe run --config` reads back
    assert "search_space" in written.read_text() and "pruner" not in written.read_text()
    assert run_config.workdir == folder
    # Named after the app's run where the config has run names (issue #14).
    assert getattr(run_config.tracking, "run_name", folder.name) == folder.name
    assert run_config.tracking.mlflow_tracking_uri == settings.tracking_uri
    assert run_config.tracking.mlflow_artifact_location == (
        tmp_path / "store" / "mlartifacts").as_uri()


def test_kubeflow_runs_keep_the_clusters_stores(tmp_path):
    config = parse_config({"source": "s3://bucket/scenes"})
    settings = UiSettings(tracking_uri="http://mlflow.example", workdir=tmp_path,
                          kfp_host="http://kfp.example")
    run_config = for_run(config, settings, tmp_path / "run")
    stores = ("mlflow_tracking_uri", "mlflow_artifact_location", "optuna_storage")
    assert all(getattr(run_config.tracking, name) is None for name in stores)
    with pytest.raises(UiError, match=f"^source: {tmp_path} is a local path, which a "
                       "Kubeflow run cannot read"):
        check_inputs(parse_config({"source": str(tmp_path)}), kubeflow=True)
    check_inputs(config, kubeflow=True)


def test_pasted_yaml_errors_name_their_origin():
    with pytest.raises(ConfigError, match="^pasted YAML: not valid YAML"):
        parse_yaml_text("source: [unclosed", "pasted YAML", Path("/"))
    with pytest.raises(ConfigError, match="^my.yaml: tuning.n_trails: Extra inputs"):
        parse_yaml_text("source: x\ntuning: {n_trails: 3}\n", "my.yaml", Path("/"))
    with pytest.raises(ConfigError, match="^pasted YAML: line 3: duplicate key 'n_trials'"):
        parse_yaml_text("source: x\ntuning: {n_trials: 3,\n  n_trials: 5}\n", "pasted YAML",
                        Path("/"))


def test_local_inputs_are_checked_before_a_run_starts(tmp_path):
    generate_sample_dataset(tmp_path / "scenes", scenes=3, size=32, seed=0)
    config = parse_config({"source": str(tmp_path / "scenes")})
    check_inputs(config, kubeflow=False)
    missing = tmp_path / "nowhere"
    with pytest.raises(UiError, match=f"^source: {missing} does not exist"):
        check_inputs(config.model_copy(update={"source": str(missing)}), kubeflow=False)
    notes = tmp_path / "notes.txt"
    notes.write_text("no scenes here")
    with pytest.raises(UiError, match=f"^source: {notes} is a file but not an archive"):
        check_inputs(config.model_copy(update={"source": str(notes)}), kubeflow=False)
    typo = parse_config({"source": str(tmp_path / "scenes"),
                         "data": {"ingest": {"palette": "palete.json"}}}, base=tmp_path)
    with pytest.raises(UiError, match=f"^data.ingest.palette: {tmp_path}/palete.json does "):
        check_inputs(typo, kubeflow=False)
