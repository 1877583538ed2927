"""The model-server memory benchmark runs end to end on tiny requests and prints its JSON
document (its figures are measured, never judged here)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_server_memory_benchmark_prints_every_case_and_phase():
    bin_dir = str(Path(sys.executable).parent)  # mlflow starts uvicorn by name
    proc = subprocess.run(
        [sys.executable, str(REPO_ROOT / "benchmarks" / "server_memory.py"), "--megapixels",
         "0.1", "--phase-megapixels", "0.1", "--tensor-megapixels", "0.01"],
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT), "TF_CPP_MIN_LOG_LEVEL": "3",
             "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"},
        capture_output=True, text=True, timeout=600, check=True)
    report = json.loads(proc.stdout)
    cases = [case["case"] for case in report["server"]]
    assert cases == ["tensor_json_numbers_mask", "npy_mask", "npy_probabilities",
                     "geotiff_mask", "npy_mask_two_at_once"]
    for case in report["server"]:
        assert all(status == 200 for status in case["status"]), case
        assert case["peak_rss_mb"] >= case["rss_before_mb"] > 0
    assert [phase["phase"] for phase in report["in_process"]["phases"]] == [
        "body", "guard: json parse", "dataframe", "base64 decode", ".npy decode", "predict",
        "encode the answer", "answer json"]
    assert len(report["load_average_at_start"]) == 3
