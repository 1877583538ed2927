"""Shared fixtures. Tests build tiny rasters in temp dirs; the real tea-plantations chips are
read from ../shared/data when present."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def tea_plantations() -> Path:
    path = SHARED_DATA / "tea-plantations"
    if not path.is_dir():
        pytest.skip(f"{path} not present")
    return path


@pytest.fixture(scope="session", autouse=True)
def _run_outside_the_repo(tmp_path_factory):
    """Run every test from a scratch folder, so nothing a library writes relative to the
    working directory (MLflow's ./mlruns default, say) lands in the repository."""
    previous = Path.cwd()
    os.chdir(tmp_path_factory.mktemp("cwd"))
    yield
    os.chdir(previous)
