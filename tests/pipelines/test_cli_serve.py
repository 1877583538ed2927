"""`segpipe predict` and `segpipe serve` refusing what they cannot use before any work: one
line naming the option and the problem, exit 2 for a command-line value (1 for the store),
no traceback, the input untouched. No model is needed: each refusal comes before it loads
(the model URIs here do not even exist, except the store of registered versions)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import mlflow
import numpy as np
import pytest
import rasterio
from affine import Affine
from typer.testing import CliRunner

from pipelines.cli import app
from tests.serving.server import REPO_ROOT, child_env


@pytest.fixture
def scene(tmp_path):
    path = tmp_path / "scene.tif"
    with rasterio.open(path, "w", driver="GTiff", width=16, height=16, count=2,
                       dtype="uint8", crs="EPSG:32644",
                       transform=Affine(1.0, 0.0, 600000.0, 0.0, -1.0, 2700000.0)) as dst:
        dst.write(np.arange(512, dtype=np.uint8).reshape(2, 16, 16))
    return path


def _predict(*args: str):
    result = CliRunner().invoke(app, ["predict", *args])
    assert "Traceback" not in result.output and result.exception is None or \
        isinstance(result.exception, SystemExit), result.output
    return result


def _one_line(result) -> str:
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    return lines[0]


@pytest.mark.parametrize("alias", ["same", "symlink", "hardlink", "relative"])
def test_predict_refuses_to_overwrite_the_input_scene(scene, tmp_path, alias, monkeypatch):
    before = scene.read_bytes()
    out = {"same": scene, "symlink": tmp_path / "link.tif", "hardlink": tmp_path / "hard.tif",
           "relative": "./scene.tif"}[alias]
    if alias == "symlink":
        out.symlink_to(scene)
    elif alias == "hardlink":
        os.link(scene, out)
    monkeypatch.chdir(tmp_path)
    result = _predict(str(scene), "--out", str(out), "--model-uri", str(tmp_path / "no-model"))
    assert result.exit_code == 2, result.output
    line = _one_line(result)
    assert line == (f"error: --out {Path(out)} is the input scene {scene}: the mask would "
                    f"overwrite it")
    assert scene.read_bytes() == before


def test_predict_refuses_polygons_onto_the_scene_or_the_mask(scene, tmp_path):
    model = str(tmp_path / "no-model")
    result = _predict(str(scene), "--out", str(tmp_path / "m.tif"), "--polygons", str(scene),
                      "--model-uri", model)
    assert result.exit_code == 2, result.output
    assert _one_line(result).startswith(f"error: --polygons {scene} is the input scene {scene}")
    mask = tmp_path / "m.tif"
    result = _predict(str(scene), "--out", str(mask), "--polygons", str(mask), "--model-uri",
                      model)
    assert result.exit_code == 2, result.output
    assert _one_line(result).startswith(f"error: --polygons {mask} is the mask --out {mask}")


@pytest.mark.parametrize("option, path, problem", [
    ("--out", "/proc/nope/x.tif", "cannot create files in /proc"),
    ("--polygons", "/proc/nope/p.geojson", "cannot create files in /proc"),
    ("--out", "{tmp}/a-file/x.tif", "{tmp}/a-file is not a folder"),
    ("--out", "{tmp}", "{tmp} is a folder; give a file name"),
])
def test_predict_refuses_outputs_it_cannot_create(scene, tmp_path, option, path, problem):
    (tmp_path / "a-file").write_text("")
    path, problem = path.format(tmp=tmp_path), problem.format(tmp=tmp_path)
    args = {"--out": str(tmp_path / "m.tif"), option: path}
    result = _predict(str(scene), *[x for item in args.items() for x in item],
                      "--model-uri", str(tmp_path / "no-model"))
    assert result.exit_code == 2, result.output
    line = _one_line(result)
    assert line.startswith(f"error: {option} {path}: ") or line.startswith(
        f"error: {option} {path} "), line
    assert problem in line


@pytest.mark.parametrize("option, name, problem", [
    ("--out", "j9.png", "'.png', but a GeoTIFF mask is written; name it .tif or .tiff"),
    ("--out", "mask", "no extension, but a GeoTIFF mask is written; name it .tif or .tiff"),
    ("--polygons", "p1.gpkg", "'.gpkg', but GeoJSON is written; name it .geojson or .json"),
])
def test_predict_refuses_an_output_named_for_another_format(scene, tmp_path, option, name,
                                                           problem):
    args = {"--out": str(tmp_path / "m.tif"), option: str(tmp_path / name)}
    result = _predict(str(scene), *[x for item in args.items() for x in item],
                      "--model-uri", str(tmp_path / "no-model"))  # refused before the model
    assert result.exit_code == 2, result.output
    assert _one_line(result) == f"error: {option} {tmp_path / name}: {problem}"
    assert not (tmp_path / name).exists()


def test_predict_takes_the_format_extensions_in_any_case(scene, tmp_path):
    result = _predict(str(scene), "--out", str(tmp_path / "M.TIFF"), "--polygons",
                      str(tmp_path / "p.GeoJSON"), "--model-uri", str(tmp_path / "no-model"))
    assert result.exit_code == 2, result.output  # the missing model, past the names
    assert "no-model" in _one_line(result)


@pytest.mark.parametrize("endpoint", ["127.0.0.1:5999", "localhost:5999", "ftp://host:21",
                                      "http://:5999", "http://host:port"])
def test_predict_refuses_an_endpoint_that_is_not_an_http_url(scene, tmp_path, endpoint):
    result = _predict(str(scene), "--out", str(tmp_path / "m.tif"), "--endpoint", endpoint,
                      "--model-uri", str(tmp_path / "no-model"))
    assert result.exit_code == 2, result.output
    assert _one_line(result).startswith(f"error: endpoint {endpoint}: ")
    assert not (tmp_path / "m.tif").exists()


@pytest.fixture(scope="module")
def registered_store(tmp_path_factory):
    """A SQLite store with model 'tea', versions 1 and 2, aliases champion and challenger.
    One for the module (creating MLflow's schema takes seconds): the tests only read it."""
    tmp_path = tmp_path_factory.mktemp("registered-store")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = mlflow.MlflowClient(tracking_uri=uri)
    client.create_registered_model("tea")
    for version, alias in ((1, "challenger"), (2, "champion")):
        client.create_model_version("tea", source=str(tmp_path / f"v{version}"))
        client.set_registered_model_alias("tea", alias, str(version))
    return uri


@pytest.mark.parametrize("model_uri, message", [
    ("models:/tea@prod", "model 'tea' has no alias 'prod' in {uri} (aliases: challenger, "
                         "champion)"),
    ("models:/tea/7", "model 'tea' has no version '7' in {uri} (versions: 1, 2)"),
    ("models:/coffee@champion", "model models:/coffee@champion is not in the tracking store "
                                "{uri} (registered models: tea)"),
])
def test_a_missing_alias_or_version_is_named_with_the_ones_there_are(
        scene, tmp_path, registered_store, model_uri, message):
    result = _predict(str(scene), "--out", str(tmp_path / "m.tif"), "--model-uri", model_uri,
                      "--tracking-uri", registered_store)
    assert result.exit_code == 1, result.output
    assert _one_line(result) == f"error: {message.format(uri=registered_store)}"


def _serve(tmp_path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pipelines.cli", "serve", *args],
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=120,
                          env=child_env(MLFLOW_TRACKING_URI=f"sqlite:///{tmp_path / 'm.db'}"))


@pytest.mark.parametrize("content", [[], ["README.md", "images/a.tif"]])
def test_serve_refuses_a_folder_that_is_not_an_mlflow_model(tmp_path, content):
    folder = tmp_path / "not-a-model"
    folder.mkdir()
    for name in content:
        (folder / name).parent.mkdir(exist_ok=True)
        (folder / name).write_text("x")
    done = _serve(tmp_path, "--model-uri", str(folder))
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines() == [
        f"error: model {folder}: not an MLflow model: no MLmodel file in {folder}"]


def test_serve_refuses_a_port_in_use_before_the_model(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = _serve(tmp_path, "--model-uri", str(tmp_path / "no-model"), "--port", str(port))
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines() == [
        f"error: cannot listen on 127.0.0.1:{port}: Address already in use"]


def test_serve_help_says_which_environment_variables_apply():
    """MODEL_URI is ignored (segpipe serve always names its model): the help says so, and
    names the variable of each option that does take one."""
    from serving.options import ENVIRONMENT

    result = CliRunner().invoke(app, ["serve", "--help"], terminal_width=200)
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.replace("│", " ").split())
    assert ("MODEL_URI, which the serving image reads, is ignored here, and --model-uri (or "
            "its default) names the model served") in text
    for dest, variable in ENVIRONMENT.items():
        if dest != "model_uri":
            assert f"${variable}" in text, variable
