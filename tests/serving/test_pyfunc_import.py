"""Importing the pyfunc model (every `segpipe predict` and `evaluate` does) prints none of
MLflow's advice to model authors, which comes with raw colour codes and a site-packages
path; other warnings still show."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_importing_the_model_class_prints_no_type_hint_advice():
    done = subprocess.run([sys.executable, "-W", "default", "-c",
                           "import serving.pyfunc; print('ok')"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin",
                               "TF_CPP_MIN_LOG_LEVEL": "2"})
    assert done.returncode == 0 and done.stdout == "ok\n", done.stderr
    assert "type hints" not in done.stderr and "\x1b[" not in done.stderr
