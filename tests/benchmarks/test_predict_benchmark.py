"""The prediction benchmark runs end to end on tiny scenes and prints its JSON document."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_predict_benchmark_prints_scene_and_classic_figures():
    # One runtime for the scene figures, OpenVINO: the classic comparison runs segpipe's own
    # forward pass on Keras, so both of the worker's runtimes still run (each worker process
    # loads TensorFlow; a Keras scene pair cost ~12 s more here). The `light` network (depth
    # 2, 4 filters) runs the same blending, export and worker code as the default one at a
    # fraction of its forward passes (36 s -> 31 s CPU here).
    proc = subprocess.run(
        [sys.executable, str(REPO_ROOT / "benchmarks" / "predict.py"), "--sizes", "512",
         "--band-rows", "256", "--repeats", "2", "--tta-size", "256", "--tta-rows", "256",
         "--classic-size", "256", "--skip-server", "--runtimes", "openvino", "--models",
         "light"],
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"},
        capture_output=True, text=True, timeout=600, check=True)
    report = json.loads(proc.stdout)
    assert [(scene["runtime"], scene["tta"]) for scene in report["scenes"]] == [
        ("openvino", False), ("openvino", True)]
    plain, tta = report["scenes"][:2]
    assert all("error" not in scene for scene in report["scenes"]), report["scenes"]
    assert (plain["scene"], plain["predicted_rows"], plain["tta"]) == ("512x512", 256, False)
    assert tta["tta"] and tta["forward_windows"] == 8 * 9  # 3x3 windows, 8 D4 passes each
    for scene in report["scenes"]:
        assert len(scene["time_over_floor_each"]) == 2
        assert scene["forward_floor_seconds"] > 0 and scene["time_over_floor"] > 0
        assert 0 <= scene["model_busy_seconds"] <= scene["seconds"]
        assert scene["peak_rss_mb"] > 0
    comparison = report["classic_comparison"]
    assert "error" not in comparison["classic"], comparison["classic"]
    assert (comparison["segpipe"]["runtime"], comparison["segpipe"]["tta"]) == ("keras", True)
    assert comparison["speedup"] > 0 and comparison["memory_ratio"] > 0
    assert report["server"] is None and report["machine"]["cpus"] >= 1
