"""`segpipe ui` finds the tracking store and its registered models without creating one."""

from __future__ import annotations

import contextlib
import hashlib
import sqlite3
from pathlib import Path

import mlflow
import pytest

from pipelines.tracking_store import (
    StoreError,
    check_registered_models,
    count_registered_models,
    resolve_tracking_uri,
)


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_relative_local_stores_become_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert resolve_tracking_uri("sqlite:///stores/mlflow.db") == \
        f"sqlite:///{tmp_path}/stores/mlflow.db"
    assert resolve_tracking_uri("mlruns") == (tmp_path / "mlruns").as_uri()
    assert resolve_tracking_uri("http://127.0.0.1:5000") == "http://127.0.0.1:5000"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:///from-env.db")
    assert resolve_tracking_uri(None) == f"sqlite:///{tmp_path}/from-env.db"


def test_missing_sqlite_store_is_an_error_and_stays_missing(tmp_path):
    path = tmp_path / "typo" / "mlflow.db"
    with pytest.raises(StoreError, match=f"no MLflow store at {path}"):
        check_registered_models(f"sqlite:///{path}")
    assert not path.exists() and not path.parent.exists()


def test_sqlite_store_is_read_without_being_changed(tiny_store):
    path = Path(tiny_store.tracking_uri.removeprefix("sqlite:///"))
    before = _digest(path)
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
        (registered,) = db.execute("SELECT count(*) FROM registered_models").fetchone()
    assert registered >= 1  # the Train page's browser tests may have added their own
    assert check_registered_models(tiny_store.tracking_uri) == registered
    assert _digest(path) == before


def test_store_without_registered_models_is_an_error(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    mlflow.MlflowClient(tracking_uri=uri).create_experiment("only-runs")
    assert count_registered_models(uri) == 0
    with pytest.raises(StoreError, match="no registered model in the tracking store"):
        check_registered_models(uri)


def test_file_that_is_not_a_database_is_named(tmp_path):
    path = tmp_path / "notes.db"
    path.write_text("not sqlite")
    with pytest.raises(StoreError, match=f"{path} is not an MLflow SQLite store"):
        check_registered_models(f"sqlite:///{path}")


def test_file_stores_are_counted_from_their_folders(tmp_path):
    root = tmp_path / "mlruns"
    with pytest.raises(StoreError, match="no MLflow store at"):
        check_registered_models(root.as_uri())
    assert not root.exists()
    (root / "models" / "segpipe").mkdir(parents=True)
    (root / "models" / "half-written").mkdir()
    assert count_registered_models(root.as_uri()) == 0
    (root / "models" / "segpipe" / "meta.yaml").write_text("name: segpipe\n")
    assert count_registered_models(root.as_uri()) == 1


def test_unreachable_server_is_one_quick_error(tmp_path):
    from tests.ui.harness import free_port

    with pytest.raises(StoreError, match="cannot list registered models at http://127.0.0.1"):
        check_registered_models(f"http://127.0.0.1:{free_port()}")
