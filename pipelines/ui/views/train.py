"""Train page: a new run from a form generated from the pipeline config's models (or from a
YAML config), started as `segpipe run` here or `segpipe submit` to Kubeflow; and the runs
started so far, followed live."""

from __future__ import annotations

import shutil
from pathlib import Path

import streamlit as st

from pipelines.ui import state, train_processes, train_runs
from pipelines.ui.settings import UiError

NEW_RUN, RUNS = "New run", "Runs"
FORM, YAML = "Form", "YAML"
_VIEW_KEY = "segpipe.train.view"
_RUN_KEY = "segpipe.train.run"
#: Set before a rerun: a widget's value cannot change once the widget is drawn.
_NEXT_KEY = "segpipe.train.next"
_YAML_KEY = "segpipe.train.yaml"
MAX_CONFIG_BYTES = 1024 * 1024


def _base() -> Path:
    """Relative paths in the form resolve against the data folder, else the app's folder."""
    return state.settings().data_dir or Path.cwd()


def _from_form():
    from pipelines.config import parse_config
    from pipelines.ui import train_form

    mapping = train_form.render()
    if not mapping.get("source"):
        # Check the rest first (with a folder that exists as a stand-in), so the only thing
        # left to say is that a source is missing.
        parse_config({**mapping, "source": str(_base())}, origin="form", base=_base())
        st.info("Give the source of the scenes to start a run.")
        return None
    return parse_config(mapping, origin="form", base=_base())


def _from_yaml():
    from pipelines.ui.train_config import parse_yaml_text

    uploaded = st.file_uploader("Upload a config", type=["yaml", "yml"],
                                key="segpipe.train.upload")
    origin = "pasted YAML"
    if uploaded is not None:
        if uploaded.size > MAX_CONFIG_BYTES:
            raise UiError(f"{uploaded.name}: {uploaded.size} bytes; a config is at most "
                          f"{MAX_CONFIG_BYTES} bytes")
        text = uploaded.getvalue().decode("utf-8", errors="replace")
        origin = uploaded.name
        st.code(text, language="yaml")
    else:
        text = st.text_area("Config (YAML)", key=_YAML_KEY, height=320,
                            help="the same file as for `segpipe run --config`",
                            placeholder="source: /data/scenes\ntuning: {n_trials: 4}")
    if not text.strip():
        return None
    return parse_yaml_text(text, origin=origin, base=_base())


def _start(config) -> None:
    from pipelines.ui.train_config import check_inputs, for_run

    settings = state.settings()
    check_inputs(config, kubeflow=settings.kfp_host is not None)
    run = train_runs.new_run(settings.workdir)
    try:
        config = for_run(config, settings, run.folder)
        train_processes.launch(run, config.to_yaml(), model_name=config.registry.model_name,
                               experiment=config.tracking.mlflow_experiment,
                               tracking_uri=config.tracking.mlflow_tracking_uri
                               or settings.tracking_uri, kfp_host=settings.kfp_host)
    except BaseException:
        shutil.rmtree(run.folder, ignore_errors=True)
        raise
    st.session_state[_NEXT_KEY] = {_VIEW_KEY: RUNS, _RUN_KEY: run.id}
    st.toast(f"Started {run.id}")
    st.rerun()


def _new_run() -> None:
    from pipelines.config import ConfigError
    from pipelines.ui.config_form import FormError

    settings = state.settings()
    where = (f"Runs are submitted to Kubeflow Pipelines at {settings.kfp_host}."
             if settings.kfp_host else
             f"Runs go to `{settings.workdir / train_runs.RUNS_DIR}` and log to "
             f"`{settings.shown_tracking_uri}`.")
    st.caption(f"{where} Relative paths are read from `{_base()}`.")
    source = st.radio("Config from", [FORM, YAML], horizontal=True, key="segpipe.train.mode")
    try:
        with st.spinner("Loading the pipeline's options…"):
            config = _from_form() if source == FORM else _from_yaml()
    except (ConfigError, FormError) as err:
        st.error("The config does not validate:")
        st.code(str(err), language=None)
        config = None
    if config is None:
        st.button("Start", type="primary", disabled=True, key="segpipe.train.start")
        return
    with st.expander("The config as YAML"):
        st.code(config.model_copy(update={"workdir": Path("<run folder>")}).to_yaml(),
                language="yaml")
    if st.button("Start", type="primary", key="segpipe.train.start"):
        try:
            _start(config)
        except UiError as err:
            st.error(str(err))


def _runs() -> None:
    from pipelines.ui import train_monitor

    runs = train_runs.list_runs(state.settings().workdir)
    if not runs:
        st.info("No run yet: start one under “New run”.")
        return
    ids = [run.id for run in runs]
    if st.session_state.get(_RUN_KEY) not in ids:
        st.session_state[_RUN_KEY] = ids[0]
    states = {run.id: train_processes.process_state(run).state for run in runs}
    chosen = st.selectbox("Run", ids, key=_RUN_KEY,
                          format_func=lambda run_id: f"{run_id} · {states[run_id]}")
    train_monitor.show(next(run for run in runs if run.id == chosen))


def _live_notice() -> None:
    """A page opened after a reload or in a new tab starts on "New run": say which runs
    started from this app are still running, with a way to them."""
    live = train_processes.live_runs(train_runs.list_runs(state.settings().workdir))
    if not live:
        return
    text, button = st.columns([5, 1], vertical_alignment="center")
    others = f" (and {len(live) - 1} more, under Runs)" if len(live) > 1 else ""
    text.info(f"Run {live[0].id} is running{others}.")
    if button.button("View it", key="segpipe.train.view_live"):
        st.session_state[_NEXT_KEY] = {_VIEW_KEY: RUNS, _RUN_KEY: live[0].id}
        st.rerun()


def page() -> None:
    st.title("Train")
    state.quiet_tensorflow()  # the form's architectures and search space import it
    st.session_state.update(st.session_state.pop(_NEXT_KEY, {}))
    view = st.radio("View", [NEW_RUN, RUNS], horizontal=True, key=_VIEW_KEY,
                    label_visibility="collapsed")
    if view == NEW_RUN:
        _live_notice()
        _new_run()
    else:
        _runs()
