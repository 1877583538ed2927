"""`segpipe evaluate` end to end through typer: the table, the report, and one-line errors."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import mlflow
import pytest
from typer.testing import CliRunner

from components.artifacts import SplitManifest
from components.dataset_paths import PreparedDataset
from pipelines.cli import app
from tests.components.conftest import write_tiny_dataset
from tests.logged_models import register_known_model, save_known_model

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> dict:
    """A tiny prepared dataset and the known model registered as 'tea' in a SQLite store."""
    root = tmp_path_factory.mktemp("evaluate")
    dataset = PreparedDataset(write_tiny_dataset(root / "dataset").root)
    uri = f"sqlite:///{root / 'mlflow.db'}"
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(uri)
    try:
        experiment = mlflow.create_experiment("models", (root / "artifacts").as_uri())
        mlflow.set_experiment(experiment_id=experiment)
        register_known_model(save_known_model(root / "model"), dataset, "tea")
    finally:
        mlflow.set_tracking_uri(previous)
    return {"uri": uri, "dataset": dataset}


def _evaluate(monkeypatch, store, *args: str):
    # The command points MLflow at the store for its process: keep that inside the test.
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store["uri"])
    return CliRunner().invoke(app, ["evaluate", *args, "--tracking-uri", store["uri"]])


def _one_line(result) -> str:
    lines = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in result.output, result.output
    return lines[0]


def test_prints_the_scores_and_writes_the_report(store, tmp_path, monkeypatch):
    result = _evaluate(monkeypatch, store, str(store["dataset"].root), "--out",
                       str(tmp_path / "eval"), "--model-uri", "models:/tea@champion",
                       "--log-to-mlflow", "--overlay-tiles", "0")
    assert result.exit_code == 0, result.output
    saved = json.loads((tmp_path / "eval/metrics.json").read_text())
    assert saved["model_uri"] == "models:/tea/1" and saved["split"] == "test"
    for name in ("background", "tea", "water"):
        assert f" {name} " in result.output
    metrics = saved["metrics"]
    # The summary line carries the trivial baseline, and a line says which class it answers.
    assert (f"mIoU {metrics['miou']:.4f}  F1 (macro) {metrics['f1_macro']:.4f}  pixel accuracy "
            f"{metrics['pixel_accuracy']:.4f}  tile mIoU {metrics['tile_miou']:.4f}  trivial "
            f"mIoU {metrics['trivial_miou']:.4f}") in result.output
    assert "trivial baseline: background everywhere (the train split's majority class)" in \
        result.output
    assert "report.md" in result.output and "MLflow run: " + saved["mlflow_run_id"] in \
        result.output
    client = mlflow.MlflowClient(tracking_uri=store["uri"])
    runs = client.search_runs([client.get_experiment_by_name("segpipe-evaluations")
                               .experiment_id])
    assert [r.data.tags["segpipe.evaluated_model_version"] for r in runs] == ["1"]


def test_an_unknown_model_is_one_line(store, tmp_path, monkeypatch):
    result = _evaluate(monkeypatch, store, str(store["dataset"].root), "--out",
                       str(tmp_path / "eval"), "--model-uri", "models:/coffee@champion")
    assert result.exit_code == 1
    assert _one_line(result).startswith("error: model models:/coffee@champion is not in the "
                                        "tracking store")


def test_a_class_mismatch_and_an_empty_split_are_one_line(store, tmp_path, monkeypatch):
    data = tmp_path / "data"
    shutil.copytree(store["dataset"].root, data)
    classes = json.loads((data / "classes.json").read_text())
    classes["classes"][1]["name"] = "coffee"
    (data / "classes.json").write_text(json.dumps(classes))
    result = _evaluate(monkeypatch, store, str(data), "--out", str(tmp_path / "eval"),
                       "--model-uri", "models:/tea/1")
    assert result.exit_code == 2
    assert "does not fit the model models:/tea/1" in _one_line(result)
    assert "(background, coffee, water)" in _one_line(result)

    split = SplitManifest.load(store["dataset"].split)
    split.splits["test"] = []
    split.save(data / "split.json")
    shutil.copy(store["dataset"].classes, data / "classes.json")
    result = _evaluate(monkeypatch, store, str(data), "--out", str(tmp_path / "eval"),
                       "--model-uri", "models:/tea/1")
    assert result.exit_code == 2
    assert "the test split has no tiles to score" in _one_line(result)
    assert not (tmp_path / "eval").exists()


@pytest.mark.parametrize("case", ["out under a file", "out on /proc", "split of a source",
                                  "ingest flag on a dataset", "out inside the data"])
def test_arguments_are_checked_before_the_store_and_the_model(store, tmp_path, monkeypatch,
                                                              case):
    """An --out that cannot be written, --split on a source or an ingest flag on a prepared
    dataset: exit 2 naming it, before the store is read (the unknown model would be exit 1)
    and before any scoring."""
    dataset, out, extra = str(store["dataset"].root), tmp_path / "eval", []
    (tmp_path / "file").write_text("")
    if case == "out under a file":
        out, expected = tmp_path / "file" / "eval", f"--out {tmp_path}/file/eval: "
    elif case == "out on /proc":
        out, expected = Path("/proc/segpipe-eval"), "cannot create files and folders in /proc"
    elif case == "split of a source":
        dataset = _source(store["dataset"], tmp_path / "source")
        extra, expected = ["--split", "val"], "--split applies to a prepared dataset"
    elif case == "out inside the data":
        out, expected = store["dataset"].root / "eval", "is inside the data"
    else:
        extra, expected = ["--palette", "auto"], "ingest options apply to a source"
    result = _evaluate(monkeypatch, store, dataset, "--out", str(out), "--model-uri",
                       "models:/coffee@champion", *extra)
    assert result.exit_code == 2 and expected in _one_line(result), result.output
    assert not out.exists()


@pytest.mark.parametrize("flag, value, limit", [("--overlay-tiles", "100000", "32"),
                                                ("--batch-size", "4096", "1024")])
def test_sizes_past_their_limit_are_refused_naming_the_flag(store, tmp_path, monkeypatch,
                                                             flag, value, limit):
    """--overlay-tiles 100000 would read that many tiles into one figure: refused first."""
    result = _evaluate(monkeypatch, store, str(store["dataset"].root), "--out",
                       str(tmp_path / "eval"), "--model-uri", "models:/tea/1", flag, value)
    line = _one_line(result)
    assert result.exit_code == 2 and f"less than or equal to {limit} ({flag})" in line, line
    assert not (tmp_path / "eval").exists()


def _source(dataset: PreparedDataset, folder) -> str:
    for kind, sub in (("image", "images"), ("mask", "masks")):
        (folder / sub).mkdir(parents=True)
        for path in dataset.scenes_dir.glob(f"*_{kind}.tif"):
            shutil.copy(path, folder / sub / path.name.replace(f"_{kind}", ""))
    shutil.copy(dataset.classes, folder / "classes.json")
    return str(folder)


@pytest.mark.slow  # a process of its own: TensorFlow's import
def test_sigterm_removes_the_scratch_folder_beside_out(store, tmp_path):
    """A source is worked on in a hidden folder beside --out; `kill` (SIGTERM) while it is
    there ends the command with 143 and the folder gone, as Ctrl-C would."""
    source = _source(store["dataset"], tmp_path / "source")
    results = tmp_path / "results"
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "MLFLOW_TRACKING_URI": store["uri"],
           "TF_CPP_MIN_LOG_LEVEL": "2"}
    process = subprocess.Popen(
        [sys.executable, "-m", "pipelines.cli", "evaluate", source, "--out",
         str(results / "eval"), "--model-uri", "models:/tea/1", "--palette", "classes.json",
         "--ignore-values", "255", "--overlay-tiles", "0"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while not (results.is_dir() and any(results.glob(".eval.scratch-*"))):
        assert process.poll() is None, process.stderr.read().decode()
        assert time.monotonic() < deadline, "no scratch folder appeared"
        time.sleep(0.01)
    process.send_signal(signal.SIGTERM)
    assert process.wait(60) == 143, process.stderr.read().decode()
    assert not list(results.glob(".eval.scratch-*"))


@pytest.mark.slow  # a process of its own: TensorFlow's import
def test_ctrl_c_keeps_the_previous_results_whole_and_says_so(store, tmp_path):
    """Ctrl-C while the new results are being written into their staging folder leaves
    --out as the previous evaluation left it, and says so in one line (exit 130)."""
    out = tmp_path / "eval"
    out.mkdir()
    (out / "metrics.json").write_text('{"previous": true}')
    (out / "report.md").write_text("previous")
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "MLFLOW_TRACKING_URI": store["uri"],
           "TF_CPP_MIN_LOG_LEVEL": "2"}
    process = subprocess.Popen(
        [sys.executable, "-m", "pipelines.cli", "evaluate", str(store["dataset"].root),
         "--out", str(out), "--model-uri", "models:/tea/1", "--overlay-tiles", "0"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while not [p for p in tmp_path.glob(".eval.*") if "scratch" not in p.name]:
        assert process.poll() is None, process.stderr.read().decode()
        assert time.monotonic() < deadline, "no staging folder appeared"
        time.sleep(0.005)
    process.send_signal(signal.SIGINT)
    code = process.wait(60)
    errors = [line for line in process.stderr.read().decode().splitlines()
              if line.startswith("error:")]
    if errors == [f"error: interrupted: {out} keeps the previous evaluation's results, "
                  f"unchanged"]:
        assert code == 130
        assert (out / "metrics.json").read_text() == '{"previous": true}'
        assert sorted(p.name for p in out.iterdir()) == ["metrics.json", "report.md"]
    else:
        # The signal came after the swap (the poll above was not scheduled in time): the new
        # set, whole, and said so; never a mix of the two.
        assert code in (0, 130), errors
        if code == 130:
            assert errors == [f"error: interrupted after the results were written: {out} "
                              f"holds this evaluation's"]
        assert json.loads((out / "metrics.json").read_text())["model_uri"] == "models:/tea/1"
        assert "previous" not in (out / "report.md").read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["eval"]


def test_a_tiling_mismatch_is_told_before_tensorflow_is_imported(store, tmp_path):
    """Importing TensorFlow takes seconds: a prepared dataset the model cannot take is
    refused from the model's serving config alone, without it."""
    data = tmp_path / "data"
    shutil.copytree(store["dataset"].root, data)
    manifest = json.loads((data / "tiles.json").read_text())
    (data / "tiles.json").write_text(json.dumps({**manifest, "patch_size": 16}))
    script = ("import sys\nfrom typer.testing import CliRunner\nfrom pipelines.cli import app\n"
              f"r = CliRunner().invoke(app, ['evaluate', {str(data)!r}, '--out', "
              f"{str(tmp_path / 'eval')!r}, '--model-uri', 'models:/tea/1'])\n"
              "print(r.exit_code, 'tensorflow' in sys.modules, 'keras' in sys.modules)\n")
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "MLFLOW_TRACKING_URI": store["uri"]}
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.stdout.splitlines()[-1] == "2 False False", done.stdout + done.stderr


def _polygons(folder: Path) -> str:
    """Two scenes and polygons of classes field, pond and road (the model's are background,
    tea and water)."""
    from tests.components.test_vectors import FEATURES_UTM, UTM, _scenes, _write_layer

    _scenes(folder)
    _write_layer(folder / "labels.gpkg", FEATURES_UTM, crs=UTM)
    return str(folder)


def test_polygons_named_otherwise_are_scored_under_class_aliases(store, tmp_path,
                                                                 monkeypatch):
    """Refused in one line naming each class the model lacks and the flag that maps it;
    scored with --class-alias given as pairs and as a mapping, the classes the model's."""
    source = _polygons(tmp_path / "polygons")
    refused = _evaluate(monkeypatch, store, source, "--out", str(tmp_path / "refused"),
                        "--model-uri", "models:/tea/1", "--vector-labels", "labels.gpkg",
                        "--class-alias", "field=tea")
    assert refused.exit_code == 2
    assert _one_line(refused).endswith(
        "label classes 'pond', 'road' are not among the model's classes (background, tea, "
        "water); map each onto one: --class-alias pond=<class> --class-alias road=<class>")
    result = _evaluate(monkeypatch, store, source, "--out", str(tmp_path / "eval"),
                       "--model-uri", "models:/tea/1", "--vector-labels", "labels.gpkg",
                       "--class-alias", "field=tea", "--class-alias", "{pond: water, road: tea}",
                       "--overlay-tiles", "0")
    assert result.exit_code == 0, result.output
    saved = json.loads((tmp_path / "eval/metrics.json").read_text())
    assert saved["class_names"] == ["background", "tea", "water"]
    assert saved["pixel_count"] == 2 * 64 * 64
    assert sum(saved["confusion_matrix"][2]) == 100  # the 20 m pond, as water
    # A source has no train split: the baseline is the model's own training majority.
    assert "trivial baseline: background everywhere (the majority class of the model's train " \
        "split)" in result.output
    assert f"trivial mIoU {saved['metrics']['trivial_miou']:.4f}" in result.output


def test_an_alias_onto_a_class_the_model_lacks_is_refused_before_any_work(store, tmp_path):
    """From the model's serving config alone: exit 2 naming the alias and the model's
    classes, before the source is read (its label file is unreadable, which would be exit
    1) and before TensorFlow is imported."""
    source = _polygons(tmp_path / "polygons")
    (tmp_path / "polygons" / "labels.gpkg").write_bytes(b"not a GeoPackage")
    out = tmp_path / "results" / "eval"
    out.parent.mkdir()
    script = ("import sys\nfrom typer.testing import CliRunner\nfrom pipelines.cli import app\n"
              f"r = CliRunner().invoke(app, ['evaluate', {source!r}, '--out', {str(out)!r}, "
              "'--model-uri', 'models:/tea/1', '--vector-labels', 'labels.gpkg', "
              "'--class-alias', 'field=Tea', '--class-alias', 'pond=water'])\n"
              "print(r.output)\n"
              "print(r.exit_code, 'tensorflow' in sys.modules, 'keras' in sys.modules)\n")
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "MLFLOW_TRACKING_URI": store["uri"]}
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                          text=True, timeout=120)
    lines = done.stdout.splitlines()
    assert lines[-1] == "2 False False", done.stdout + done.stderr
    assert (f"error: {source} does not fit the model models:/tea/1: --class-alias field -> "
            "Tea: 'Tea' is not among the model's classes (background, tea, water)") in lines
    assert list(out.parent.iterdir()) == []
