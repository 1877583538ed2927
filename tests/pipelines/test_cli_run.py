"""`segpipe run`'s pre-checks against the tracking server: one that does not answer is one
line and exit code 2 within seconds, before anything talks to MLflow (whose own retries take
minutes), whether the config or $MLFLOW_TRACKING_URI names it."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from components.sample_data import generate_sample_dataset
from tests.serving.server import free_port
from tests.tiny_run import tiny_run_config

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("named_by", ["environment", "config"])
def test_a_tracking_server_that_does_not_answer_is_one_line_in_seconds(tmp_path, named_by):
    generate_sample_dataset(tmp_path / "data", scenes=3, size=48, seed=1)
    # nothing listens there; a config may not hold a password (refused before this check),
    # the environment may, and the message hides it
    closed = f"http://team{'' if named_by == 'config' else ':s3cret'}@127.0.0.1:{free_port()}"
    tracking = {"mlflow_tracking_uri": closed} if named_by == "config" else {}
    (tmp_path / "run.yaml").write_text(tiny_run_config(source="data", workdir="work",
                                                       tracking=tracking))
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "TF_CPP_MIN_LOG_LEVEL": "2",
           "MLFLOW_TRACKING_URI": closed}
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "pipelines.cli", "run", "--config", "run.yaml"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    seconds = time.monotonic() - started
    assert done.returncode == 2, done.stdout[-2000:] + done.stderr[-2000:]
    field = "run.yaml: tracking.mlflow_tracking_uri" if named_by == "config" \
        else "$MLFLOW_TRACKING_URI"
    assert done.stderr.strip().splitlines() == [
        f"error: {field}: MLflow tracking server {closed.replace(':s3cret@', ':***@')} does "
        "not answer: Connection refused"]
    assert done.stdout == ""
    assert seconds < 10, seconds
    assert not (tmp_path / "work" / "logs").exists()  # refused before the run started
