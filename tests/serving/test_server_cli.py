"""`python -m serving.server` refusing to start: one line, no traceback, nothing left in the
temporary folder (the served model's download goes there)."""

from __future__ import annotations

import socket
import subprocess
import sys

from tests.serving.server import child_env, free_port


def _server(tmp_path, *args: str) -> subprocess.CompletedProcess:
    temp = tmp_path / "tmp"
    temp.mkdir(exist_ok=True)
    return subprocess.run([sys.executable, "-m", "serving.server", *args], cwd=tmp_path,
                          env=child_env(TMPDIR=str(temp),
                                        MLFLOW_TRACKING_URI=f"sqlite:///{tmp_path / 'm.db'}"),
                          capture_output=True, text=True, timeout=120)


def test_a_model_that_cannot_be_fetched_is_one_line_and_leaves_nothing(tmp_path):
    uri = "runs:/0123456789abcdef0123456789abcdef/model"
    done = _server(tmp_path, "--model-uri", uri, "--port", str(free_port()))
    assert done.returncode == 1
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith(f"error: cannot fetch model {uri}: "), last
    assert "Traceback" not in done.stderr
    assert not list((tmp_path / "tmp").iterdir())


def test_a_folder_that_is_not_a_model_is_refused_before_anything_is_fetched(tmp_path):
    (tmp_path / "empty").mkdir()
    for folder in (tmp_path / "empty", tmp_path / "missing"):
        done = _server(tmp_path, "--model-uri", str(folder), "--port", str(free_port()))
        assert done.returncode == 2, done.stderr
        problem = "no such folder" if folder.name == "missing" else \
            f"not an MLflow model: no MLmodel file in {folder}"
        assert done.stderr.strip().splitlines() == [f"error: model {folder}: {problem}"]
        assert not list((tmp_path / "tmp").iterdir())


def test_a_port_in_use_is_refused_before_the_model_is_fetched(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = _server(tmp_path, "--model-uri", "models:/x/1", "--port", str(port))
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines() == [
        f"error: cannot listen on 127.0.0.1:{port}: Address already in use"]
    assert not (tmp_path / "m.db").exists()  # the store was never opened


def test_bad_options_are_refused_by_the_parser(tmp_path):
    done = _server(tmp_path, "--model-uri", "models:/x/1", "--workers", "0")
    assert done.returncode == 2
    assert "--workers: must be at least 1, got 0" in done.stderr
