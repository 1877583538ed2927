"""`segpipe ui`: one clear line when there is nothing to show, and Streamlit started local,
headless and silent."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from pipelines.cli import app
from pipelines.ui.command import child_env, streamlit_command
from pipelines.ui.settings import SETTINGS_ENV, UiSettings


def _ui(*args: str):
    return CliRunner().invoke(app, ["ui", *args])


def _one_line(result) -> str:
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    return lines[0]


def test_missing_store_is_one_line_and_creates_nothing(tmp_path):
    path = tmp_path / "mlflow.db"
    result = _ui("--tracking-uri", f"sqlite:///{path}")
    assert result.exit_code == 1
    assert _one_line(result).startswith(f"segpipe ui: no MLflow store at {path}")
    assert not path.exists()


def test_default_store_is_not_created_in_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    result = _ui()
    assert result.exit_code == 1
    assert "segpipe ui: no MLflow store at" in _one_line(result)
    assert list(tmp_path.iterdir()) == []


def test_store_without_registered_models_is_one_line(tmp_path):
    import mlflow

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    mlflow.MlflowClient(tracking_uri=uri).create_experiment("runs-only")
    result = _ui("--tracking-uri", uri)
    assert result.exit_code == 1
    assert _one_line(result) == (f"segpipe ui: no registered model in the tracking store {uri}:"
                                 f" register one first (`segpipe demo` or `segpipe run`)")


@pytest.mark.parametrize(("args", "message"), [
    (["--endpoint", "127.0.0.1:5000"], "--endpoint: Value error, '127.0.0.1:5000' is not an "
                                       "http:// or https:// URL"),
    (["--port", "0"], "--port: Input should be greater than or equal to 1"),
])
def test_bad_options_are_one_line(tmp_path, args, message):
    # Options are checked before the store is looked at.
    result = _ui("--tracking-uri", f"sqlite:///{tmp_path / 'mlflow.db'}", *args)
    assert result.exit_code == 2
    assert _one_line(result) == f"segpipe ui: {message}"


def test_streamlit_binds_loopback_headless_without_telemetry():
    settings = UiSettings(tracking_uri="sqlite:////tmp/x.db", max_upload_mb=64)
    command = streamlit_command(settings)
    assert command[1:4] == ["-m", "streamlit", "run"]
    assert Path(command[4]).name == "app.py" and Path(command[4]).is_file()
    flags = dict(zip(command[5::2], command[6::2], strict=True))
    assert flags["--server.address"] == "127.0.0.1" and flags["--server.port"] == "8501"
    assert flags["--server.headless"] == "true"
    assert flags["--browser.gatherUsageStats"] == "false"
    assert flags["--server.maxUploadSize"] == "64"
    assert flags["--client.showErrorDetails"] == "none"
    env = child_env(settings)
    assert env["STREAMLIT_BROWSER_GATHER_USAGE_STATS"] == "false"
    assert UiSettings.model_validate_json(env[SETTINGS_ENV]) == settings
    assert env["PYTHONPATH"].split(":")[0] == str(Path(__file__).resolve().parents[2])
