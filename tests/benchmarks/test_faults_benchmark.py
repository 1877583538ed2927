"""The fault catalogue runs end to end on its two cheapest cases (a real `segpipe run` on a
config whose source is missing, a real `segpipe prepare` on a truncated GeoTIFF) and prints
its JSON table and summary line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
CHEAPEST = ["run_config_source_missing", "prepare_truncated_geotiff"]


@pytest.mark.slow
def test_fault_catalogue_prints_one_row_per_case_and_a_summary():
    command = [sys.executable, str(REPO_ROOT / "benchmarks" / "faults.py"), "--quick"]
    for name in CHEAPEST:
        command += ["--case", name]
    proc = subprocess.run(command, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    report = json.loads(proc.stdout)
    rows = {row["case"]: row for row in report["cases"]}
    assert sorted(rows) == sorted(CHEAPEST)
    for row in rows.values():
        assert set(row) >= {"case", "expected", "got", "ok"}
        assert row["ok"], row
    assert "run.yaml: source:" in rows["run_config_source_missing"]["got"]
    assert "cut_image.tif" in rows["prepare_truncated_geotiff"]["got"]
    assert report["summary"] == {"cases": 2, "ok": 2, "not_ok": [], "quick": True}
    assert len(report["load_average_at_start"]) == 3
    assert proc.stderr.strip().splitlines()[-1].startswith(
        "faults: 2/2 cases behaved as expected")
    assert proc.returncode == 0
