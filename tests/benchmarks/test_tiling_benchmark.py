"""The tiling benchmark runs end to end on a tiny scene and prints its JSON document."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_tiling_benchmark_prints_figures_for_each_size():
    proc = subprocess.run(
        [sys.executable, str(REPO_ROOT / "benchmarks" / "tiling.py"), "--sizes", "128", "256",
         "--patch", "64", "--bands", "2"],
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)}, capture_output=True, text=True,
        timeout=300, check=True)
    report = json.loads(proc.stdout)
    assert report["inputs"]["sizes"] == [128, 256]
    assert [r["tiles"] for r in report["results"]] == [4, 16]
    assert all(r["peak_rss_mib"] > 0 and r["tiles_per_s"] > 0 and r["cpu_seconds"] > 0
               and len(r["load_average_1min"]) == 2 for r in report["results"])
    assert report["machine"]["cpus"] >= 1
