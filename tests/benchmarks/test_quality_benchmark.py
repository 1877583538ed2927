"""The quality benchmark: a pipeline config's data and tuning sections under the command
line, bad settings refused in one message before any work, and a tiny case end to end."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.tiny_run import tiny_run_config

REPO_ROOT = Path(__file__).resolve().parents[2]
SCRIPT = REPO_ROOT / "benchmarks" / "quality.py"

TINY = tiny_run_config(tuning={"n_trials": 1})


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *args],
                          env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
                          capture_output=True, text=True, timeout=600)


def test_a_bad_setting_is_one_message_before_any_work(tmp_path):
    config = tmp_path / "q.yaml"
    config.write_text("data: {split: {strategy: diagonal}}\n")
    done = _run("--cases", "synthetic", "--config", str(config), "--workdir",
                str(tmp_path / "work"))
    assert done.returncode == 2 and "data.split.strategy" in done.stderr, done.stderr[-1500:]
    assert "Traceback" not in done.stderr and not (tmp_path / "work").exists()


@pytest.mark.slow
def test_a_tiny_synthetic_case_prints_scene_and_tile_figures(tmp_path):
    config = tmp_path / "q.yaml"
    config.write_text(TINY)
    done = _run("--cases", "synthetic", "--config", str(config), "--budget-minutes", "5",
                "--synthetic-scenes", "4", "--synthetic-size", "64", "--split", "scene")
    assert done.returncode == 0, done.stderr[-3000:]
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    assert 0 <= figures["scene_miou"] <= 1 and 0 <= figures["tile_miou"] <= 1
    settings = figures["settings"]
    assert (settings["patch_size"], settings["split"], settings["n_trials"]) == (32, "scene", 1)
    assert settings["architectures"] == ["unet"]  # the space the study searched, as logged
    assert figures["trials"]["COMPLETE"] == 1 and figures["test_scenes"] >= 1
