"""The processes of the app's training runs (``train_runs``): the pipeline command
started in its own session, where it stands, and a clean stop.

A run's processes are found by the marker in their environment (``TrainRun.marker``), so
they are found exactly, even after the app restarted; a process this app process started
is also kept (``_CHILDREN``) so its exit status is read from it rather than guessed."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pipelines.ui.settings import CODE_ROOT, SETTINGS_ENV, UiError
from pipelines.ui.train_runs import RUN_ENV, RunInfo, TrainRun
from serving.atomic import write_text

#: How long a stopped run gets to end its tasks and close its MLflow run before whatever is
#: left of it is killed.
STOP_GRACE_S = 30.0
KILL_GRACE_S = 5.0

#: States of a run whose command is still at work here.
LIVE = ("running", "stopping")
State = Literal["running", "stopping", "finished", "submitted", "failed", "stopped", "ended"]

#: Processes this app process started, by run id: their exit status is read from them
#: (and their zombies reaped) rather than guessed from /proc.
_CHILDREN: dict[str, subprocess.Popen] = {}
#: Runs whose stop this app process is carrying out (their leftovers being reaped).
_REAPING: set[str] = set()
_LOCK = threading.Lock()


def run_command(run: TrainRun, kfp_host: str | None) -> list[str]:
    """``segpipe run`` here, or ``segpipe submit`` to the Kubeflow host (run named after
    the app's run, so its MLflow parent run is found by it)."""
    base = [sys.executable, "-m", "pipelines.cli"]
    if kfp_host:
        return [*base, "submit", "--host", kfp_host, "--config", str(run.config_path),
                "--run-name", run.id]
    return [*base, "run", "--config", str(run.config_path)]


def run_env(run: TrainRun) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != SETTINGS_ENV}
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(CODE_ROOT), env.get("PYTHONPATH")) if p)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    env["PYTHONUNBUFFERED"] = "1"
    env[RUN_ENV] = str(run.folder)
    return env


def launch(run: TrainRun, config_yaml: str, *, model_name: str, experiment: str,
           tracking_uri: str, kfp_host: str | None = None,
           command: list[str] | None = None) -> RunInfo:
    """Write the config and start the run's command in its own session (so the app's
    Ctrl-C does not reach it and its process group is its own), output to console.log."""
    write_text(run.config_path, config_yaml)
    command = command or run_command(run, kfp_host)
    with open(run.console_path, "ab") as console:
        process = subprocess.Popen(command, cwd=run.folder, env=run_env(run),
                                   stdin=subprocess.DEVNULL, stdout=console,
                                   stderr=subprocess.STDOUT, start_new_session=True)
    info = RunInfo(id=run.id, mode="kubeflow" if kfp_host else "local", pid=process.pid,
                   command=command, started_at=time.time(), model_name=model_name,
                   experiment=experiment, tracking_uri=tracking_uri, kfp_host=kfp_host)
    write_text(run.info_path, info.model_dump_json(indent=2))
    with _LOCK:
        _CHILDREN[run.id] = process
    threading.Thread(target=_record_exit, args=(run, process), daemon=True,
                     name=f"wait-{run.id}").start()
    return info


def _record_exit(run: TrainRun, process: subprocess.Popen) -> None:
    code = process.wait()
    write_text(run.exit_path, json.dumps({"code": code, "ended_at": time.time()}))


def _environ(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:  # gone, a zombie's empty file, or another user's process
        return b""


def _carries(pid: int, marker: bytes) -> bool:
    return marker in _environ(pid).split(b"\0")


def _has_proc() -> bool:
    return Path("/proc/self/environ").exists()


def run_processes(run: TrainRun) -> list[int]:
    """Live processes of the run: every process whose environment carries the run's marker
    (Linux; elsewhere an empty list)."""
    marker = run.marker()
    if not _has_proc():
        return []
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and _carries(int(entry.name), marker):
            pids.append(int(entry.name))
    return pids


def _leader_alive(run: TrainRun, info: RunInfo) -> bool:
    with _LOCK:
        process = _CHILDREN.get(run.id)
    if process is not None:
        return process.poll() is None
    if _has_proc():
        return _carries(info.pid, run.marker())
    try:
        os.kill(info.pid, 0)
    except OSError:
        return False
    return True


@dataclass(frozen=True)
class ProcessState:
    state: State
    exit_code: int | None = None
    seconds: float | None = None  # from start to end, once ended (and seen ending)


def process_state(run: TrainRun) -> ProcessState:
    """Where the run's command stands: running, stopping, or how it ended ("ended" when
    this app did not see it end: the app was restarted meanwhile)."""
    info = run.info()
    stopping = run.stop_path.exists()
    with _LOCK:
        reaping = run.id in _REAPING
    if _leader_alive(run, info) or reaping:
        return ProcessState("stopping" if stopping else "running")
    with _LOCK:
        process = _CHILDREN.get(run.id)
    code = process.returncode if process is not None else None
    ended_at = None
    if run.exit_path.exists():
        ended = json.loads(run.exit_path.read_text())
        code, ended_at = ended["code"], ended["ended_at"]
    seconds = ended_at - info.started_at if ended_at else None
    if stopping:
        return ProcessState("stopped", code, seconds)
    if code is None:
        return ProcessState("ended")
    if code == 0:
        return ProcessState("submitted" if info.mode == "kubeflow" else "finished", 0, seconds)
    return ProcessState("failed", code, seconds)


def live_runs(runs: list[TrainRun]) -> list[TrainRun]:
    """The runs whose command is still running (or stopping) on this machine: what a page
    opened after a reload or in a new tab points to. A submitted Kubeflow run is not
    counted: it lives on the cluster."""
    return [run for run in runs if process_state(run).state in LIVE]


def stop(run: TrainRun, grace_s: float = STOP_GRACE_S) -> None:
    """SIGTERM to the run's command: `segpipe run` ends its tasks and closes its MLflow
    run. In the background, whatever of the run outlives it (or is still alive after
    ``grace_s``) gets SIGTERM, then SIGKILL, and is listed in stop.json."""
    info = run.info()
    if info.mode != "local":
        raise UiError(f"run {run.id} runs on Kubeflow: stop it in the Kubeflow UI")
    write_text(run.stop_path, json.dumps({"requested_at": time.time()}))
    if _leader_alive(run, info):
        with contextlib.suppress(ProcessLookupError):
            os.kill(info.pid, signal.SIGTERM)
    with _LOCK:
        _REAPING.add(run.id)
    threading.Thread(target=_reap, args=(run, info, grace_s), daemon=True,
                     name=f"stop-{run.id}").start()


def stop_report(run: TrainRun) -> dict | None:
    """stop.json: when the stop was asked for and, once over, which processes had to be
    killed (none when `segpipe run` ended its tasks itself)."""
    return json.loads(run.stop_path.read_text()) if run.stop_path.exists() else None


def _wait(condition, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while condition() and time.monotonic() < deadline:
        time.sleep(0.25)


def _reap(run: TrainRun, info: RunInfo, grace_s: float) -> None:
    try:
        _reap_leftovers(run, info, grace_s)
    finally:
        with _LOCK:
            _REAPING.discard(run.id)


def _reap_leftovers(run: TrainRun, info: RunInfo, grace_s: float) -> None:
    _wait(lambda: _leader_alive(run, info), grace_s)
    killed: list[int] = []
    if _has_proc():
        # Tasks exit when the runner is gone; give them a moment to.
        _wait(lambda: bool(run_processes(run)), KILL_GRACE_S)
        killed = run_processes(run)
        for sig in (signal.SIGTERM, signal.SIGKILL):
            for pid in run_processes(run):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, sig)
            _wait(lambda: bool(run_processes(run)), KILL_GRACE_S)
    else:  # no /proc to find the run's processes by: its process group
        for sig in (signal.SIGTERM, signal.SIGKILL):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(info.pid, sig)
            time.sleep(KILL_GRACE_S)
    report = {**(stop_report(run) or {}), "killed": killed, "done_at": time.time()}
    write_text(run.stop_path, json.dumps(report))
