"""`python -m serving.server` refusing to start: one line, no traceback, nothing left in the
temporary folder (the served model's download goes there)."""

from __future__ import annotations

import subprocess
import sys

from tests.serving.server import child_env


def _server(tmp_path, *args: str) -> subprocess.CompletedProcess:
    temp = tmp_path / "tmp"
    temp.mkdir(exist_ok=True)
    return subprocess.run([sys.executable, "-m", "serving.server", *args], cwd=tmp_path,
                          env=child_env(TMPDIR=str(temp),
                                        MLFLOW_TRACKING_URI=f"sqlite:///{tmp_path / 'm.db'}"),
                          capture_output=True, text=True, timeout=120)


def test_a_model_that_cannot_be_fetched_is_one_line_and_leaves_nothing(tmp_path):
    done = _server(tmp_path, "--model-uri", str(tmp_path / "no-model"), "--port", "1")
    assert done.returncode == 1
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith(f"error: cannot fetch model {tmp_path / 'no-model'}: "), last
    assert "Traceback" not in done.stderr
    assert not list((tmp_path / "tmp").iterdir())


def test_bad_options_are_refused_by_the_parser(tmp_path):
    done = _server(tmp_path, "--model-uri", "models:/x/1", "--workers", "0")
    assert done.returncode == 2
    assert "--workers: must be at least 1, got 0" in done.stderr
