"""`segpipe ui`: check the tracking store, then run the Streamlit app as a subprocess."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import typer
from pydantic import ValidationError

from pipelines.ui.settings import UiError, UiSettings

APP = Path(__file__).resolve().parent / "app.py"
_FIELDS = UiSettings.model_fields
#: Settings whose option is not named after them.
_FLAGS = {"mlflow_ui_url": "--mlflow-ui"}


def _default(name: str):
    return _FIELDS[name].default


def _help(name: str) -> str | None:
    return _FIELDS[name].description


def streamlit_command(settings: UiSettings) -> list[str]:
    """`python -m streamlit run app.py` bound as asked, headless, with no usage statistics,
    no file watching and no error details in the browser."""
    flags = {
        "server.address": settings.host,
        "server.port": settings.port,
        "server.headless": "true",
        "server.maxUploadSize": settings.max_upload_mb,
        "server.fileWatcherType": "none",
        "server.runOnSave": "false",
        "browser.gatherUsageStats": "false",
        "client.showErrorDetails": "none",
        "client.toolbarMode": "minimal",
        "global.developmentMode": "false",
    }
    command = [sys.executable, "-m", "streamlit", "run", str(APP)]
    for key, value in flags.items():
        command += [f"--{key}", str(value)]
    return command


def child_env(settings: UiSettings) -> dict[str, str]:
    """The app imports the same segpipe code as this command, and reports nothing home."""
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    env["STREAMLIT_BROWSER_GATHER_USAGE_STATS"] = "false"
    env["MLFLOW_TRACKING_URI"] = settings.tracking_uri
    env.update(settings.to_env())
    return env


def ui(
    tracking_uri: str | None = typer.Option(
        None, "--tracking-uri", help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI, "
                                     "else the workdir's own store, created by the first "
                                     "training)"),
    host: str = typer.Option(_default("host"), "--host", help=_help("host")),
    port: int = typer.Option(_default("port"), "--port"),
    endpoint: str | None = typer.Option(None, "--endpoint", help=_help("endpoint")),
    data_dir: Path | None = typer.Option(None, "--data-dir", exists=True, file_okay=False,
                                         help=_help("data_dir")),
    mlflow_ui: str | None = typer.Option(None, "--mlflow-ui", help=_help("mlflow_ui_url")),
    max_upload_mb: int = typer.Option(_default("max_upload_mb"), "--max-upload-mb",
                                      help=_help("max_upload_mb")),
    max_pixels: int = typer.Option(_default("max_pixels"), "--max-pixels",
                                   help=_help("max_pixels")),
    workdir: Path | None = typer.Option(None, "--workdir", file_okay=False,
                                        help=_help("workdir")),
    kfp_host: str | None = typer.Option(None, "--kfp-host", help=_help("kfp_host")),
) -> None:
    """Web app: browse registered models, predict a scene, train a model."""
    from pipelines.tracking_store import StoreError, count_registered_models, resolve_tracking_uri

    # A store named by the option or the environment must exist; without either, the app
    # uses its workdir's own store, which the first training creates.
    named = tracking_uri or os.environ.get("MLFLOW_TRACKING_URI")
    try:
        settings = UiSettings(
            tracking_uri=resolve_tracking_uri(named) if named else None, host=host, port=port,
            endpoint=endpoint, data_dir=data_dir.resolve() if data_dir else None,
            mlflow_ui_url=mlflow_ui, max_upload_mb=max_upload_mb, max_pixels=max_pixels,
            kfp_host=kfp_host, **({"workdir": workdir} if workdir else {}))
        own_store_missing = (settings.tracking_uri == settings.own_store
                             and not (settings.workdir / "mlflow.db").exists())
        count = 0 if own_store_missing else count_registered_models(settings.tracking_uri)
        settings.workdir.mkdir(parents=True, exist_ok=True)
    except ValidationError as exc:
        error = exc.errors()[0]
        name = str(error["loc"][0]) if error["loc"] else ""
        field = _FLAGS.get(name, "--" + name.replace("_", "-")) if name else "option"
        # pydantic words a validator's own message "Value error, ..."; the message is the news
        message = error["msg"].removeprefix("Value error, ")
        typer.echo(f"segpipe ui: {field}: {message}", err=True)
        raise typer.Exit(2) from None
    except (UiError, StoreError) as exc:
        typer.echo(f"segpipe ui: {exc}", err=True)
        raise typer.Exit(1) from None
    except OSError as exc:
        typer.echo(f"segpipe ui: --workdir: cannot create {exc.filename}: {exc.strerror}",
                   err=True)
        raise typer.Exit(2) from None
    scratch_dir = Path(tempfile.mkdtemp(prefix="segpipe-ui-"))
    settings = settings.model_copy(update={"scratch_dir": scratch_dir})
    models = (f"{count} registered model(s)" if count
              else "no registered model yet (train one on the Train page)")
    typer.echo(f"segpipe ui on http://{settings.host}:{settings.port} ({models} in "
               f"{settings.shown_tracking_uri}; runs in {settings.workdir}); Ctrl-C stops it",
               err=True)
    process = subprocess.Popen(streamlit_command(settings), env=child_env(settings))
    # A supervisor's SIGTERM stops the app too, and the scratch folder still goes. Training
    # runs started from the app go on (each in its own session); the Train page finds them
    # again in the workdir.
    previous = signal.signal(signal.SIGTERM, lambda *_: process.terminate())
    try:
        code = process.wait()
    except KeyboardInterrupt:
        process.terminate()  # Streamlit got the Ctrl-C as well; make sure it ends
        code = process.wait()
    finally:
        signal.signal(signal.SIGTERM, previous)
        shutil.rmtree(scratch_dir, ignore_errors=True)
    raise typer.Exit(0 if code in (0, -signal.SIGTERM, -signal.SIGINT) else code)
