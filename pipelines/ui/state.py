"""Streamlit glue shared by the pages: the settings, cached registry reads and models, the
model picked in the sidebar, this session's scratch folder, and error display."""

from __future__ import annotations

import contextlib
import logging
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import streamlit as st

from pipelines.ui import registry
from pipelines.ui.settings import UiError, UiSettings

log = logging.getLogger("segpipe.ui")
#: Registry listings are re-read after this long, so a newly registered version shows up.
REGISTRY_TTL_S = 30
_VERSION_KEY = "segpipe.version"
_SESSION_KEY = "segpipe.session"


@st.cache_resource
def settings() -> UiSettings:
    import mlflow

    loaded = UiSettings.from_env()
    mlflow.set_tracking_uri(loaded.tracking_uri)
    return loaded


def client():
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=settings().tracking_uri)


@st.cache_data(ttl=REGISTRY_TTL_S, show_spinner=False)
def model_names() -> list[str]:
    return registry.registered_model_names(client())


@st.cache_data(ttl=REGISTRY_TTL_S, show_spinner=False)
def model_versions(name: str) -> list[registry.VersionSummary]:
    return registry.model_versions(client(), name)


@st.cache_data(show_spinner=False)
def serving_config(model_uri: str):
    """A version's ServingConfig (versions are immutable: cached for good)."""
    return registry.serving_config(model_uri)


@st.cache_data(ttl=REGISTRY_TTL_S, show_spinner=False)
def experiment_of(run_id: str | None) -> str | None:
    return registry.experiment_of(client(), run_id)


@st.cache_data(ttl=REGISTRY_TTL_S, show_spinner=False)
def data_scenes(data_dir: Path) -> list[str]:
    """The data folder's scenes, listed at most every REGISTRY_TTL_S (not on every rerun)."""
    from pipelines.ui.scenes import list_scenes

    return list_scenes(data_dir)


@st.cache_resource(max_entries=2, show_spinner="Loading the model…")
def local_predictor(model_uri: str):
    """One loaded, warmed-up model per URI, shared by every session and rerun."""
    from pipelines.ui.prediction import local_predictor as load

    quiet_tensorflow()
    return load(model_uri)


def quiet_tensorflow() -> None:
    """Import TensorFlow (once per process) without its start-up chatter on the console
    (serving/quiet.py). Call it where a page first needs TensorFlow. Whatever another
    thread writes to stderr during that import is lost too."""
    from serving.quiet import import_tensorflow_quietly

    import_tensorflow_quietly()


def pick_model() -> registry.VersionSummary | None:
    """Sidebar picker of a registered model and version (the champion preselected)."""
    names = model_names()
    if not names:
        st.sidebar.info(f"No registered model yet in {settings().shown_tracking_uri}: train one on "
                        "the Train page.")
        return None
    default = names.index("segpipe") if "segpipe" in names else 0
    name = st.sidebar.selectbox("Registered model", names, index=default, key="segpipe.model")
    versions = model_versions(name)
    if not versions:
        st.sidebar.error(f"{name} has no versions.")
        return None
    by_version = {v.version: v for v in versions}
    preselected = registry.default_version(versions)
    chosen = st.sidebar.selectbox(
        "Version", list(by_version), index=list(by_version).index(preselected.version),
        format_func=lambda v: by_version[v].label(), key=f"segpipe.version.{name}")
    st.session_state[_VERSION_KEY] = by_version[chosen]
    return by_version[chosen]


def picked_version() -> registry.VersionSummary | None:
    return st.session_state.get(_VERSION_KEY)


def session_dir() -> Path:
    """This browser session's scratch folder under the app's work folder."""
    if _SESSION_KEY not in st.session_state:
        st.session_state[_SESSION_KEY] = uuid.uuid4().hex
    root = settings().scratch_dir or Path(tempfile.gettempdir()) / "segpipe-ui"
    folder = root / st.session_state[_SESSION_KEY]
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@contextlib.contextmanager
def shown_errors() -> Iterator[None]:
    """Errors become one message on the page; only unexpected ones go to the log with
    their traceback (the server's console, never the page)."""
    from mlflow.exceptions import MlflowException

    try:
        yield
    except UiError as exc:
        st.error(str(exc))
    except MlflowException as exc:
        st.error(f"MLflow: {str(exc).splitlines()[0]}")
    except Exception as exc:
        log.exception("page failed")
        st.error(f"Something went wrong: {type(exc).__name__}: {exc}"[:500])
