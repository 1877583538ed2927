"""`segpipe ui`: one clear line when there is nothing to show, and Streamlit started local,
headless and silent."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from pipelines.cli import app
from pipelines.ui.command import child_env, streamlit_command
from pipelines.ui.settings import SETTINGS_ENV, UiSettings

REPO_ROOT = Path(__file__).resolve().parents[2]


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


def test_default_workdir_and_store_are_in_the_users_data_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    settings = UiSettings()
    assert settings.workdir == tmp_path / "data" / "segpipe" / "ui"
    assert settings.tracking_uri == f"sqlite:///{settings.workdir}/mlflow.db"


def test_workdir_inside_the_checkout_is_refused():
    inside = REPO_ROOT / "ui-runs"
    result = _ui("--workdir", str(inside))
    assert result.exit_code == 2
    assert _one_line(result).startswith(f"segpipe ui: --workdir: {inside} lies "
                                        f"inside the segpipe checkout {REPO_ROOT}")
    assert not inside.exists()


def test_empty_workdir_starts_with_its_own_store(tmp_path):
    """A first start: no tracking URI, no store yet. The app starts on the workdir's own
    store (for the Train page to fill), creates nothing in the current folder, and says
    there is no model yet."""
    from tests.ui.harness import UiApp

    workdir, cwd = tmp_path / "work", tmp_path / "cwd"
    cwd.mkdir()
    app = UiApp(None, tmp_path / "ui.log", "--workdir", str(workdir), cwd=cwd)
    try:
        app.wait_ready()
        first = app.log_text().splitlines()[0]
    finally:
        app.stop()
    assert "no registered model yet (train one on the Train page" in first
    assert f"in sqlite:///{workdir}/mlflow.db; runs in {workdir})" in first
    assert list(cwd.iterdir()) == []


@pytest.mark.parametrize(("args", "message"), [
    (["--endpoint", "127.0.0.1:5000"], "--endpoint: model server endpoint 127.0.0.1:5000: "
                                       "must be http(s)://host:port, e.g. "
                                       "http://127.0.0.1:5001"),
    (["--port", "0"], "--port: Input should be greater than or equal to 1"),
    (["--kfp-host", "kfp.example:8888"], "--kfp-host: Kubeflow Pipelines host "
                                         "kfp.example:8888: must be http(s)://host:port, e.g. "
                                         "http://localhost:8080"),
    (["--mlflow-ui", "http://"], "--mlflow-ui: MLflow UI address http://: must be "
                                 "http(s)://host:port, e.g. http://127.0.0.1:5000"),
    (["--endpoint", "http://host:port"], "--endpoint: model server endpoint "
                                         "http://host:port: not a URL (Port could not be "
                                         "cast to integer value as 'port')"),
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


def test_a_store_password_is_neither_shown_nor_linked(tmp_path):
    """`segpipe ui` takes the store from $MLFLOW_TRACKING_URI, password included: the
    sidebar, the Train page, the start-up line and the links to MLflow go without it."""
    settings = UiSettings(tracking_uri="http://segpipe:s3cret@mlflow.example:5000/",
                          workdir=tmp_path)
    assert settings.shown_tracking_uri == "http://segpipe:***@mlflow.example:5000/"
    assert settings.run_base_url() == "http://segpipe@mlflow.example:5000"
    plain = UiSettings(tracking_uri="http://mlflow.example:5000/mlflow@prod",
                       workdir=tmp_path)
    assert plain.shown_tracking_uri == "http://mlflow.example:5000/mlflow@prod"
