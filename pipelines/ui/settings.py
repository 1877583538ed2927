"""The app's settings: defined once here, filled by ``segpipe ui`` and handed to the
Streamlit process as JSON in one environment variable."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from components.tracking import redact_url, without_password
from serving.server import DEFAULT_HOST, DEFAULT_PORT, MLFLOW_UI_PORT
from serving.urls import check_http_url

SETTINGS_ENV = "SEGPIPE_UI_SETTINGS"
CODE_ROOT = Path(__file__).resolve().parents[2]
#: The app's addresses, as its messages name them, with an example of each.
_URL_FIELDS = {"endpoint": ("model server endpoint", f"http://{DEFAULT_HOST}:{DEFAULT_PORT}"),
               "mlflow_ui_url": ("MLflow UI address", f"http://{DEFAULT_HOST}:{MLFLOW_UI_PORT}"),
               "kfp_host": ("Kubeflow Pipelines host", "http://localhost:8080")}


def default_workdir() -> Path:
    """The user's data folder (XDG on Linux), never the checkout or the current folder."""
    home = Path.home()
    if sys.platform == "darwin":
        base = home / "Library" / "Application Support"
    elif sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA") or home / "AppData" / "Local")
    else:
        base = Path(os.environ.get("XDG_DATA_HOME") or home / ".local" / "share")
    return base / "segpipe" / "ui"


class UiError(ValueError):
    """Something the app cannot do; the message names the file or setting and the problem,
    and is shown as it is (never with a traceback)."""


class UiSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tracking_uri: str | None = Field(None, description="MLflow tracking URI holding the "
                                     "registered models; unset: the workdir's own store")
    host: str = Field("127.0.0.1", description="interface to bind; 0.0.0.0 exposes the app")
    port: int = Field(8501, ge=1, le=65535)
    endpoint: str | None = Field(None, description="scoring server URL the Predict page may "
                                 "send windows to instead of running the model in the app")
    data_dir: Path | None = Field(None, description="folder of scenes offered on the Predict "
                                  "page besides uploads")
    mlflow_ui_url: str | None = Field(None, description="MLflow UI base URL for links to runs "
                                      "and versions (default: the tracking URI when it is a "
                                      "server)")
    max_upload_mb: int = Field(500, gt=0, description="largest upload; bigger scenes go "
                               "through the data folder or `segpipe predict`")
    max_pixels: int = Field(100_000_000, gt=0, description="largest scene (width x height) "
                            "the app predicts, checked before decoding")
    scratch_dir: Path | None = Field(None, description="where masks are written; the "
                                     "command makes a temporary folder and removes it on exit")
    workdir: Path = Field(default_factory=default_workdir, validate_default=True,
                          description="where the Train page's runs go, one folder each "
                          "(config, logs, pipeline outputs, Optuna study); default: "
                          "segpipe/ui in the user's data folder")
    kfp_host: str | None = Field(None, description="Kubeflow Pipelines API URL: the Train "
                                 "page submits runs there (token from $KFP_TOKEN) instead of "
                                 "running them on this machine")

    @field_validator("workdir")
    @classmethod
    def _outside_checkout(cls, value: Path) -> Path:
        value = value.expanduser().absolute()
        if value.is_relative_to(CODE_ROOT):
            raise ValueError(f"{value} lies inside the segpipe checkout {CODE_ROOT}; runs "
                             "write datasets and models there: choose a folder outside it")
        return value

    @model_validator(mode="after")
    def _own_store_by_default(self) -> UiSettings:
        if not self.tracking_uri:
            self.tracking_uri = self.own_store
        return self

    @field_validator("endpoint", "mlflow_ui_url", "kfp_host")
    @classmethod
    def _http_url(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is not None:
            check_http_url(value, *_URL_FIELDS[info.field_name])
        return value.rstrip("/") if value else value

    def run_base_url(self) -> str | None:
        """MLflow UI base for links: the option, else a tracking server's own address."""
        if self.mlflow_ui_url:
            return self.mlflow_ui_url
        if self.tracking_uri.startswith(("http://", "https://")):
            # a link in the browser: the MLflow UI asks for the password itself
            return without_password(self.tracking_uri).rstrip("/")
        return None

    @property
    def shown_tracking_uri(self) -> str:
        """The tracking URI as the app and its start-up line show it: without a password
        (the URL may come from $MLFLOW_TRACKING_URI with one)."""
        return redact_url(self.tracking_uri)

    @property
    def own_store(self) -> str:
        """The tracking URI when none is given: a SQLite store in the workdir, created by the
        first training."""
        return f"sqlite:///{self.workdir / 'mlflow.db'}"

    def to_env(self) -> dict[str, str]:
        return {SETTINGS_ENV: self.model_dump_json()}

    @classmethod
    def from_env(cls) -> UiSettings:
        raw = os.environ.get(SETTINGS_ENV)
        if not raw:
            raise UiError(f"${SETTINGS_ENV} is not set: start the app with `segpipe ui`")
        return cls.model_validate_json(raw)
