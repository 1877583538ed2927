"""The config file: one YAML validated at the edge, errors that name the file and field."""

from __future__ import annotations

import inspect
import os
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

from pipelines.config import ConfigError, PipelineConfig, load_config
from pipelines.pipeline import SECTIONS, pipeline_arguments

CONFIGS = Path(__file__).resolve().parents[2] / "pipelines" / "configs"


def write(tmp_path: Path, text: str, name: str = "my.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.fixture(autouse=True)
def _sources(tmp_path):
    """The local sources the configs below name exist (a missing one is an error)."""
    for name in ("scenes", "x", "s", "a"):
        (tmp_path / name).mkdir()


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
    ("source: x\ndata: {split: {ratios: [0.5, 0.5, 0.5]}}\n", "my.yaml: data.split.ratios: ratios"),
    ("source: x\ndata: {split: {ratios: [0.8, 0.2, 0]}}\n", "my.yaml: data.split.ratios: the test ratio is 0, but segpipe run scores the model"),  # noqa: E501
    ("source: x\ndata: {split: {ratios: [1, 0, 0], allow_empty_splits: true}}\n", "my.yaml: data.split.ratios: the val ratio is 0, but segpipe run tunes on the val split; allow_empty_splits is for `segpipe prepare`"),  # noqa: E501
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


@pytest.mark.parametrize(("train", "expected"), [
    ("{batch_size: 16}", "my.yaml: tuning: train.batch_size: the search space searches it "
                         "(search_space.training.batch_size)"),
    ("{epochs: 5}", "my.yaml: tuning: train.epochs: every trial runs up to tuning.epochs"),
    ("{architecture: deeplabv3plus}", "my.yaml: tuning: train.architecture: the search space "
                                      "picks the architecture"),
])
def test_a_training_setting_the_study_overrides_is_refused(tmp_path, train, expected):
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, f"source: x\ntuning: {{train: {train}}}\n"))
    assert expected in str(info.value)


def test_the_removed_timeout_names_its_replacement(tmp_path):
    with pytest.raises(ConfigError, match="tuning: timeout_s: replaced by budget_minutes"):
        load_config(write(tmp_path, "source: x\ntuning: {timeout_s: 7200}\n"))


@pytest.mark.parametrize(("dimension", "expected"), [
    ("{type: categorical, choices: [8, 2048]}", "2048"),
    ("{type: int, low: 1000, high: 1040, step: 25}", "1025"),  # 1040 is never drawn
    ("{type: categorical, choices: [8, 0]}", "0: Input should be greater than or equal to 1"),
])
def test_search_space_batch_sizes_are_checked_against_the_train_step(tmp_path, dimension,
                                                                      expected):
    text = ("source: x\ntuning:\n  search_space:\n    training:\n"
            f"      batch_size: {dimension}\n")
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, text))
    assert (f"my.yaml: tuning: search_space.training.batch_size: {expected}"
            in str(info.value)), str(info.value)
    if expected != "0: Input should be greater than or equal to 1":
        assert "Input should be less than or equal to 1024" in str(info.value)


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
                         {"source": str(tmp_path / "s"), "cache": False})
    assert (config.source, config.cache) == (str(tmp_path / "s"), False)


def test_a_local_source_that_is_not_there_is_refused_naming_the_field(tmp_path):
    with pytest.raises(ConfigError, match=r"my\.yaml: source: .*/nowhere does not exist"):
        load_config(write(tmp_path, "source: nowhere\n"))


@pytest.mark.parametrize("name", ["demo.yaml", "example.yaml"])
def test_shipped_configs_validate(name, tmp_path):
    config = load_config(CONFIGS / name, {"source": str(tmp_path)})
    assert isinstance(config, PipelineConfig)


def test_local_run_fills_in_embedded_stores(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("OPTUNA_STORAGE", raising=False)
    config = load_config(write(tmp_path, "source: s\nworkdir: w\n"))
    tracking = config.tracking.for_local_run(config.workdir)
    assert tracking.mlflow_tracking_uri == f"sqlite:///{tmp_path / 'w' / 'mlflow.db'}?timeout=60"
    assert tracking.optuna_storage == f"sqlite:///{tmp_path / 'w' / 'optuna.db'}"
    assert tracking.mlflow_artifact_location == (tmp_path / "w" / "mlartifacts").as_uri()


def test_a_tracking_server_in_the_environment_wins_over_the_embedded_store(tmp_path,
                                                                            monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://mlflow:5000")
    config = load_config(write(tmp_path, "source: s\nworkdir: w\n"))
    tracking = config.tracking.for_local_run(config.workdir)
    assert tracking.mlflow_tracking_uri == "http://mlflow:5000"
    assert tracking.mlflow_artifact_location is None  # the server's default


def test_cluster_arguments_leave_unset_stores_to_the_cluster(tmp_path):
    config = load_config(write(tmp_path, "source: s3://b/p\n"))
    args = pipeline_arguments(config, config.tracking)
    assert args["tracking"] == {"mlflow_experiment": "segpipe"}


def test_arguments_match_the_pipeline_signature(tmp_path):
    from pipelines.pipeline import segmentation_pipeline

    config = load_config(write(tmp_path, "source: s\n"))
    args = pipeline_arguments(config, config.tracking)
    signature = inspect.signature(segmentation_pipeline.pipeline_func)
    assert set(args) == set(signature.parameters)


def test_every_section_reaches_its_step_unchanged(tmp_path):
    """The run parameters are the config's sections as they are: each step validates its
    own back into the very options the config holds (Kubeflow's doubles included)."""
    from pipelines.step_options import step_options

    text = """
source: s
data:
  ingest: {palette: classes.json, classes_file: c/classes.json, ignore_colors: ["#000000"]}
  tile: {patch_size: 128, stride: 96, scale: 0.5, min_valid_fraction: 0.4}
  split: {strategy: block, ratios: [0.5, 0.3, 0.2], seed: 7, block_size: 96,
          drop_overlaps: false}
tuning:
  n_trials: 7
  n_workers: 3
  search_space:
    architecture: {type: categorical, choices: [unet]}
    models: {unet: {filters: {type: categorical, choices: [8, 16]}}}
  train: {warmup_epochs: 3, early_stopping_patience: 0, model_params: {depth: 3}}
registry: {model_name: my-model, min_improvement: 0.01}
"""
    config = load_config(write(tmp_path, text))
    args = pipeline_arguments(config, config.tracking)
    as_doubles = {name: _doubles(value) for name, value in args.items()}
    sections = {"ingest": config.data.ingest, "tile": config.data.tile,
                "split": config.data.split, "tuning": config.tuning,
                "registry": config.registry, "tracking": config.tracking}
    for name, model in SECTIONS.items():
        assert step_options(model, as_doubles[name]) == sections[name], name
    rebuilt = step_options(SECTIONS["tuning"], as_doubles["tuning"])
    assert type(rebuilt.search_space.models["unet"]["filters"].choices[0]) is int
    assert type(rebuilt.train.model_params["depth"]) is int


def _doubles(value):
    """What a protobuf Struct gives back: every number a float."""
    if isinstance(value, dict):
        return {k: _doubles(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_doubles(v) for v in value]
    if isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


def test_no_section_field_needs_none_to_differ_from_its_default():
    """Kubeflow parameters cannot carry null, so sections travel without their unset
    fields; that loses nothing only while no field's default is something other than
    None when None is also allowed."""
    import types
    import typing

    def walk(model, where):
        for name, field in model.model_fields.items():
            annotation = field.annotation
            optional = (typing.get_origin(annotation) in (typing.Union, types.UnionType)
                        and type(None) in typing.get_args(annotation))
            default = field.get_default(call_default_factory=True)
            assert not optional or default is None, f"{where}.{name}"
            if isinstance(annotation, type) and issubclass(annotation, PipelineConfig.__base__):
                walk(annotation, f"{where}.{name}")

    for name, model in SECTIONS.items():
        walk(model, name)


def test_classes_and_palette_files_resolve_against_the_config_folder(tmp_path):
    text = ("source: s\ndata: {ingest: {palette: p/palette.json, "
            "classes_file: c/classes.json}}\n")
    config = load_config(write(tmp_path, text))
    assert config.data.ingest.classes_file == str(tmp_path / "c" / "classes.json")
    assert config.data.ingest.palette == str(tmp_path / "p" / "palette.json")


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


def test_configs_are_checked_without_keras_or_tensorflow(tmp_path):
    """Loading a config (and failing on it) imports neither Keras nor a backend: a typo is
    reported in about a second, not after TensorFlow's import (5-6 s); nor scipy.spatial
    (0.2-0.4 s), which only the tile step's crop search needs."""
    import os
    import subprocess
    import sys

    repo_root = Path(__file__).resolve().parents[2]
    bad = write(tmp_path, "source: x\ntuning:\n  search_space:\n    architecture: "
                "{type: categorical, choices: [unet, segformer]}\n", name="bad.yaml")
    script = f"""
import sys
from pathlib import Path
from pipelines.config import ConfigError, load_config
for path in sorted(Path({str(CONFIGS)!r}).glob("*.yaml")):
    load_config(path, {{"source": {str(tmp_path / "x")!r}}})
try:
    load_config({str(bad)!r})
except ConfigError as err:
    print(err)
print(sorted(m for m in ("keras", "tensorflow", "jax", "torch", "scipy.spatial")
             if m in sys.modules))
"""
    done = subprocess.run([sys.executable, "-c", script], cwd=tmp_path,
                          env={**os.environ, "PYTHONPATH": str(repo_root)},
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    error, modules = done.stdout.strip().splitlines()[-2:]
    assert "bad.yaml: tuning.search_space" in error and "unknown ['segformer']" in error
    assert modules == "[]"


def test_a_duplicate_key_is_refused_naming_file_line_and_key(tmp_path):
    with pytest.raises(ConfigError, match=r"my\.yaml: line 4: duplicate key 'n_trials'"):
        load_config(write(tmp_path, "source: x\ntuning:\n  n_trials: 2\n  n_trials: 3\n"))


def _segpipe_run(config: Path) -> subprocess.CompletedProcess:
    repo_root = Path(__file__).resolve().parents[2]
    return subprocess.run([sys.executable, "-m", "pipelines.cli", "run", "--config",
                           str(config)], cwd=config.parent,
                          env={**os.environ, "PYTHONPATH": str(repo_root)},
                          capture_output=True, text=True, timeout=120)


def test_a_workdir_that_cannot_be_created_is_a_config_error_before_any_work(tmp_path):
    for name in ("a_image.tif", "a_mask.tif"):  # a scene, as far as discovery looks
        (tmp_path / "x" / name).write_bytes(b"")
    done = _segpipe_run(write(tmp_path, "source: x\nworkdir: /proc/nope\n"))
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"error: {tmp_path / 'my.yaml'}: workdir: cannot use /proc/nope: No such file or "
        "directory"], done.stderr


def test_a_local_source_without_scenes_is_refused_before_the_runner_starts(tmp_path):
    done = _segpipe_run(write(tmp_path, "source: x\nworkdir: work\n"))  # x/ is empty
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"error: {tmp_path / 'my.yaml'}: source: {tmp_path / 'x'}: source is empty "
        "(no files)"], done.stderr
    assert not (tmp_path / "work").exists()  # refused before anything was made


@pytest.mark.parametrize("source, problem", [
    ("s3://tea/nothing-here", "s3://tea/nothing-here: no objects under this S3 prefix"),
    ("s3://no-bucket/tea", "s3://no-bucket/tea: cannot list objects (An error occurred "
                           "(NoSuchBucket)"),
])
def test_an_s3_prefix_without_objects_is_refused_before_the_runner_starts(
        tmp_path, moto_endpoint, source, problem):
    import boto3

    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="tea")
    s3.put_object(Bucket="tea", Key="nothing-here-either/a_image.tif", Body=b"x")
    done = _segpipe_run(write(tmp_path, f"source: {source}\nworkdir: work\n"))
    assert done.returncode == 2, done.stderr
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith(f"error: {tmp_path / 'my.yaml'}: source: {problem}"), line
    assert not (tmp_path / "work").exists()  # refused before anything was made


def _zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


@pytest.mark.parametrize("archive, problem", [
    ("empty.zip", "empty.zip: the archive holds no files"),
    ("folders.zip", "folders.zip: the archive holds no files"),
    ("text.zip", "text.zip: cannot read archive (File is not a zip file)"),
    ("evil.zip", "evil.zip: member '../a_image.tif' would extract outside the target folder"),
    ("empty.tar.gz", "empty.tar.gz: the archive holds no files"),
    ("text.tar.gz", "text.tar.gz: cannot read archive (not a tar archive"),
])
def test_an_archive_that_a_listing_shows_unusable_is_refused_before_the_runner_starts(
        tmp_path, archive, problem):
    path = tmp_path / archive
    if archive == "empty.zip":
        _zip(path, {})
    elif archive == "folders.zip":
        _zip(path, {"images/": b"", "masks/": b""})
    elif archive == "evil.zip":
        _zip(path, {"../a_image.tif": b"x", "a_mask.tif": b"x"})
    elif archive == "empty.tar.gz":
        tarfile.open(path, "w:gz").close()
    else:
        path.write_text("not an archive\n")
    done = _segpipe_run(write(tmp_path, f"source: {archive}\nworkdir: work\n"))
    assert done.returncode == 2, done.stderr
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith(f"error: {tmp_path / 'my.yaml'}: source: {tmp_path / problem}"), line
    assert not (tmp_path / "work").exists()


@pytest.mark.parametrize("workdir, refused", [("scenes/wd", True), ("scenes", True),
                                              ("scenes/.segpipe", False), ("wd", False)])
def test_a_workdir_inside_the_source_is_refused_unless_hidden(tmp_path, workdir, refused):
    """Outputs written where ingest looks for scenes would be read as data by the next run
    (and written into the user's data folder); hidden folders are skipped by ingest."""
    path = write(tmp_path, f"source: scenes\nworkdir: {workdir}\n")
    if not refused:
        assert load_config(path).workdir == tmp_path / workdir
        return
    with pytest.raises(ConfigError, match=r"my.yaml: workdir: .* is inside the source"):
        load_config(path)


def test_with_image_dir_only_the_folders_ingest_reads_count_as_the_source(tmp_path):
    """With image_dir (and mask_dir) ingest reads those folders only, so a workdir beside
    them in the source folder is fine; one inside them is not."""
    text = ("source: scenes\nworkdir: {}\ndata: {{ingest: {{image_dir: images, "
            "mask_dir: masks}}}}\n")
    assert load_config(write(tmp_path, text.format("scenes/runs"))).workdir == \
        tmp_path / "scenes" / "runs"
    with pytest.raises(ConfigError, match="workdir: .*/scenes/masks/runs is inside"):
        load_config(write(tmp_path, text.format("scenes/masks/runs")))


def test_paths_keep_the_users_symlinks_and_the_inside_check_sees_through_them(tmp_path):
    """Messages name the paths the user wrote (a symlinked data folder stays the link), while
    a workdir reached through the link's target is still found inside the source."""
    real = tmp_path / "disk" / "tea"
    real.mkdir(parents=True)
    (tmp_path / "tea").symlink_to(real)
    config = load_config(write(tmp_path, "source: ./x/../tea\nworkdir: wd\n"))
    assert config.source == str(tmp_path / "tea") and config.workdir == tmp_path / "wd"
    with pytest.raises(ConfigError, match=r"workdir: .*/disk/tea/runs is inside the source"):
        load_config(write(tmp_path, f"source: tea\nworkdir: {real / 'runs'}\n"))


def test_a_written_config_is_what_a_user_writes_and_reads_back_equal(tmp_path):
    """The models' own dump, without defaults, is the config file: an int dimension's
    bounds as ints (``low: 2``, not ``2.0``), no ``search_space: null`` for an unset
    space, and ``load_config`` gives the very config back."""
    import yaml

    unset = load_config(write(tmp_path, "source: scenes\ntuning: {n_trials: 2}\n"))
    assert unset.model_dump(mode="json", exclude_defaults=True)["tuning"] == {"n_trials": 2}
    assert "null" not in unset.to_yaml()
    text = """
source: scenes
tuning:
  search_space:
    models:
      unet:
        depth: {type: int, low: 2, high: 4, step: 2}
        dropout: {type: float, low: 0.0, high: 0.5}
"""
    config = load_config(write(tmp_path, text))
    written = config.to_yaml()
    unet = yaml.safe_load(written)["tuning"]["search_space"]["models"]["unet"]
    assert unet["depth"] == {"type": "int", "low": 2, "high": 4, "step": 2}
    assert all(type(unet["depth"][key]) is int for key in ("low", "high", "step"))
    assert unet["dropout"] == {"type": "float", "low": 0.0, "high": 0.5}
    assert type(unet["dropout"]["low"]) is float
    assert "search_space" in written and "pruner" not in written
    assert load_config(write(tmp_path, written, "written.yaml")) == config


def test_a_password_in_a_config_url_is_refused_in_one_line_before_anything_is_written(
        tmp_path):
    repo_root = Path(__file__).resolve().parents[2]
    (tmp_path / "data").mkdir()
    config = write(tmp_path, "source: data\nworkdir: wd\ntracking:\n  optuna_storage: "
                   "postgresql+psycopg2://segpipe:s3cret@127.0.0.1:5432/optuna\n")
    done = subprocess.run([sys.executable, "-m", "pipelines.cli", "run", "--config",
                           str(config)],
                          cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(repo_root)},
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr[-2000:]
    lines = (done.stdout + done.stderr).strip().splitlines()
    assert len(lines) == 1, lines
    assert "tracking.optuna_storage" in lines[0] and "$PGPASSWORD" in lines[0]
    assert "s3cret" not in lines[0]
    assert not (tmp_path / "wd").exists()
