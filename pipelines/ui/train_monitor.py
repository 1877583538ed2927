"""One training run on the Train page: its steps, its trials' curves read live from MLflow,
the best trial so far, and at the end the test mIoU and the gate's decision. Refreshes
itself while the run is alive."""

from __future__ import annotations

from datetime import datetime

import altair as alt
import streamlit as st
from mlflow import MlflowClient

from pipelines.ui import pipeline_runs, progress, registry, state, train_processes, train_runs
from pipelines.ui.pipeline_runs import CURVES, ParentRun, Trial

REFRESH_S = 4
_CURVES_KEY = "segpipe.train.curves"
_LOGS_KEY = "segpipe.train.logs"
_STATE_LABELS = {
    "running": ":material/progress_activity: running", "stopping": ":material/pending: stopping",
    "finished": ":material/check_circle: finished", "failed": ":material/error: failed",
    "stopped": ":material/stop_circle: stopped", "ended": ":material/help: ended",
    "submitted": ":material/cloud_upload: submitted to Kubeflow",
}
_TASK_ICONS = {"done": ":material/check_circle:", "running": ":material/progress_activity:",
               "failed": ":material/error:", "interrupted": ":material/cancel:"}
_TITLES = {"val_miou": "val mIoU", "train_loss": "train loss", "val_loss": "val loss"}


def _alive(process: train_processes.ProcessState, parent: ParentRun | None) -> bool:
    if process.state in train_processes.LIVE:
        return True
    # A submitted run lives on the cluster: alive until its parent run says otherwise.
    if process.state == "submitted":
        return parent is None or (parent.state or parent.status.lower()) == "running"
    return False


def _parent(client: MlflowClient, run: train_runs.TrainRun,
            info: train_runs.RunInfo) -> ParentRun | None:
    if info.mode == "kubeflow":
        submitted = progress.submission(run.console_path)
        return pipeline_runs.find_parent(client, info.experiment,
                                         kfp_run_id=submitted.run_id if submitted else None)
    name = progress.kfp_run_name(run.folder)
    return pipeline_runs.find_parent(client, info.experiment, kfp_run_name=name)


def _task_log(run: train_runs.TrainRun) -> progress.TaskLog | None:
    path = progress.newest_task_log(run.folder)
    if path is None:
        return None
    logs = st.session_state.setdefault(_LOGS_KEY, {})
    if run.id not in logs or logs[run.id].path != path:
        logs[run.id] = progress.TaskLog(path)
    return logs[run.id].update()


def _steps(log: progress.TaskLog | None, run_over: bool) -> None:
    if log is None or not log.tasks:
        if not run_over:
            st.caption("Starting the pipeline…")
        return
    labels = []
    for task in log.tasks.values():
        label = task.label(run_over)
        labels.append(f"{_TASK_ICONS[label.rsplit(': ', 1)[1]]} {label}")
    st.markdown(" &nbsp; ".join(labels))


def _header(run: train_runs.TrainRun, info: train_runs.RunInfo, parent: ParentRun | None,
            process: train_processes.ProcessState) -> None:
    started = datetime.fromtimestamp(info.started_at).strftime("%Y-%m-%d %H:%M:%S")
    where = f"Kubeflow at {info.kfp_host}" if info.mode == "kubeflow" else "this machine"
    label = _STATE_LABELS[process.state]
    if process.seconds is not None:
        label += f" after {_duration(process.seconds)}"
    if info.mode == "kubeflow" and parent is not None and parent.state:
        label += f" · pipeline {parent.state}"
    st.markdown(f"**{run.id}** · {label} · model `{info.model_name}` · started {started} on "
                f"{where}")
    links = []
    base = state.settings().run_base_url()
    if parent is not None and base:
        links.append(f"[MLflow run]({registry.run_url(base, parent.experiment_id, parent.run_id)})")
    submitted = progress.submission(run.console_path) if info.mode == "kubeflow" else None
    if submitted and submitted.url:
        links.append(f"[Kubeflow run]({submitted.url})")
    if links:
        st.markdown(" · ".join(links))
    elif parent is not None:
        st.caption(f"MLflow parent run `{parent.run_id}` (start `segpipe ui --mlflow-ui URL` "
                   "for links)")


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes} min {secs} s" if minutes else f"{secs} s"


def _outcome(parent: ParentRun | None, info: train_runs.RunInfo) -> None:
    if parent is None or (parent.test_miou is None and parent.registered_version is None):
        return
    columns = st.columns(3)
    columns[0].metric("test mIoU", "–" if parent.test_miou is None
                      else f"{parent.test_miou:.3f}")
    version = parent.registered_version
    columns[1].metric("registered", f"{info.model_name} v{version}" if version else "–")
    columns[2].metric("gate decision", (parent.decision or "–").split(":")[0])
    if parent.decision:
        st.caption(f"Gate: {parent.decision}")
    base = state.settings().run_base_url()
    if version and base:
        st.markdown(f"[Version page]({registry.version_url(base, info.model_name, version)})")


def _failure(run: train_runs.TrainRun, parent: ParentRun | None,
             log: progress.TaskLog | None, process: train_processes.ProcessState) -> None:
    if process.state == "stopped":
        killed = (train_processes.stop_report(run) or {}).get("killed")
        st.warning("Stopped from this page." + (
            f" {len(killed)} of its processes outlived `segpipe run` and were killed."
            if killed else ""))
        return
    if process.state != "failed" and not (parent and parent.state == "failed"):
        return
    failed_task = log.failed_task if log else None
    step = (parent.failed_step if parent else None) or (failed_task.name if failed_task
                                                        else None)
    message = ((parent.error if parent else None) or (failed_task.error if failed_task
                                                      else None)
               or "\n".join(progress.error_lines(progress.console_tail(run.console_path))))
    st.error(f"Failed{f' in step {step}' if step else ''}"
             f"{f' (exit status {process.exit_code})' if process.exit_code else ''}.")
    if message:
        st.code(message, language=None, wrap_lines=True)


def _chart(rows: list[dict], metric: str) -> alt.Chart:
    return alt.Chart(alt.Data(values=rows)).mark_line(point=True).encode(
        x=alt.X("epoch:Q", title="epoch", axis=alt.Axis(tickMinStep=1)),
        y=alt.Y("value:Q", title=_TITLES[metric], scale=alt.Scale(zero=False)),
        color=alt.Color("trial:N", title="trial"),
        tooltip=["trial:N", "epoch:Q", alt.Tooltip("value:Q", format=".4f")],
    ).properties(height=220, title=_TITLES[metric])


def _trials(client: MlflowClient, parent: ParentRun | None, run_over: bool) -> None:
    trials: list[Trial] = pipeline_runs.trials(client, parent) if parent else []
    if not trials:
        st.caption("No trial has started yet.")
        return
    cache = st.session_state.setdefault(_CURVES_KEY, {})
    points = [p for trial in trials for p in pipeline_runs.trial_curves(client, trial, cache)]
    losers = {t.number for t in trials if t.state in ("FAIL", "PRUNED")}
    best = pipeline_runs.best_trial(points, excluded=losers)
    done = sum(t.finished for t in trials)
    st.markdown(f"**Trials** · {done} of {len(trials)} finished"
                + (f" · best so far: trial {best.number}, val mIoU {best.val_miou:.3f} "
                   f"(epoch {best.epoch + 1})" if best else ""))
    columns = st.columns(len(CURVES))
    for column, metric in zip(columns, CURVES, strict=True):
        rows = [{"trial": f"trial {p.trial}", "epoch": p.epoch + 1, "value": p.value}
                for p in points if p.metric == metric]
        if rows:
            column.altair_chart(_chart(rows, metric), width="stretch")
    base = state.settings().run_base_url()
    table = []
    for trial in trials:
        scores = [p.value for p in points if p.trial == trial.number and p.metric == "val_miou"]
        # A trial the pipeline never got to close (a killed run) is not running any more.
        shown_state = "INTERRUPTED" if run_over and not trial.finished else trial.state
        row = {"trial": trial.number, "state": shown_state, "epochs": len(scores),
               "best val mIoU": max(scores) if scores else None,
               **{k: _short(v) for k, v in sorted(trial.params.items()) if k in _PARAMS
                  or k.startswith("model.")}}
        if base:
            row["MLflow"] = registry.run_url(base, parent.experiment_id, trial.run_id)
        table.append(row)
    config = {"best val mIoU": st.column_config.NumberColumn(format="%.3f")}
    if base:
        config["MLflow"] = st.column_config.LinkColumn(display_text="open")
    st.dataframe(table, hide_index=True, column_config=config)
    for trial in trials:
        if trial.error:
            st.caption(f"trial {trial.number} failed: {trial.error[:300]}")


_PARAMS = ("architecture", "learning_rate", "batch_size", "loss", "augment")


def _short(value: str) -> str:
    """A parameter as MLflow keeps it (text), floats to 4 significant digits."""
    try:
        number = float(value)
    except ValueError:
        return value
    return value if number.is_integer() else f"{number:.4g}"


def _console(run: train_runs.TrainRun) -> None:
    with st.expander("Console"):
        lines = progress.console_tail(run.console_path)
        st.code("\n".join(lines) or "(no output yet)", language=None)


def _stop_button(run: train_runs.TrainRun, info: train_runs.RunInfo,
                 process: train_processes.ProcessState) -> None:
    if info.mode != "local" or process.state != "running":
        return
    if st.button("Stop", key=f"segpipe.train.stop.{run.id}",
                 help="SIGTERM to `segpipe run`: it ends its tasks and marks its MLflow run"):
        train_processes.stop(run)
        st.rerun()


def _body(run: train_runs.TrainRun, was_alive: bool) -> None:
    info = run.info()
    client = MlflowClient(tracking_uri=info.store_uri())
    parent = _parent(client, run, info)
    process = train_processes.process_state(run)
    alive = _alive(process, parent)
    if was_alive and not alive:
        # The run just ended: a full rerun stops the refresh, and the Models page lists the
        # new version at once.
        state.model_names.clear()
        state.model_versions.clear()
        st.rerun()
    _header(run, info, parent, process)
    log = _task_log(run) if info.mode == "local" else None
    if info.mode == "local":
        _steps(log, run_over=not alive)
    _failure(run, parent, log, process)
    _outcome(parent, info)
    _trials(client, parent, run_over=not alive)
    _console(run)


def show(run: train_runs.TrainRun) -> None:
    """The run, refreshed every REFRESH_S seconds while it is alive. Stop sits outside the
    refreshed part: a click there reruns the page and is never lost to a refresh."""
    info = run.info()
    parent = _parent(MlflowClient(tracking_uri=info.store_uri()), run, info)
    process = train_processes.process_state(run)
    alive = _alive(process, parent)
    _stop_button(run, info, process)

    @st.fragment(run_every=REFRESH_S if alive else None)
    def live() -> None:
        with state.shown_errors():
            _body(run, alive)

    live()
