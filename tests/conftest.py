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
