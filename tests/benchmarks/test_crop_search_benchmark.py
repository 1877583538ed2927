"""The crop-search benchmark runs end to end on a few scenes and prints its JSON document."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_crop_search_benchmark_prints_figures_for_each_search():
    proc = subprocess.run(
        [sys.executable, str(REPO_ROOT / "benchmarks" / "crop_search.py"), "--counts", "90"],
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)}, capture_output=True, text=True,
        timeout=300, check=True)
    report = json.loads(proc.stdout)
    by_search = {r["search"]: r for r in report["results"]}
    assert set(by_search) == {"overlaps", "touching"}
    # Ten photos cut 3x3 with half overlaps: every crop overlaps a neighbour.
    assert by_search["overlaps"]["scenes_paired"] == 90
    assert 0 < by_search["touching"]["scenes_paired"] <= 90
    assert all(r["seconds"] >= 0 and r["peak_rss_mb"] > 0 and r["count"] == 90
               for r in report["results"])
