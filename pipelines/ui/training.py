"""Training runs started from the app: one folder per run under ``<workdir>/runs/``, the
pipeline as a subprocess in its own session, its state, and a clean stop.

A run folder holds the validated config (``<run id>.yaml``; its name is the run's, so a
`segpipe run` that names runs after their config never mistakes two app runs for one),
``run.json`` (what was started, and how), ``console.log`` (the command's output) and, for
a local run, everything the pipeline writes (the folder is its ``workdir``). Every process
of a run carries ``SEGPIPE_UI_RUN=<folder>`` in its environment, inherited down to the
pipeline's task subprocesses, so the run's processes are found exactly, even after the app
restarted."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field

from pipelines.ui.settings import CODE_ROOT, SETTINGS_ENV, UiError
from serving.atomic import write_text

RUNS_DIR = "runs"
RUN_ENV = "SEGPIPE_UI_RUN"
#: How long a stopped run gets to end its tasks and close its MLflow run before whatever is
#: left of it is killed.
STOP_GRACE_S = 30.0
KILL_GRACE_S = 5.0
MAX_LISTED_RUNS = 50

Mode = Literal["local", "kubeflow"]
#: States of a run whose command is still at work here.
LIVE = ("running", "stopping")
State = Literal["running", "stopping", "finished", "submitted", "failed", "stopped", "ended"]

#: Processes this app process started, by run id: their exit status is read from them
#: (and their zombies reaped) rather than guessed from /proc.
_CHILDREN: dict[str, subprocess.Popen] = {}
#: Runs whose stop this app process is carrying out (their leftovers being reaped).
_REAPING: set[str] = set()
_LOCK = threading.Lock()


class RunInfo(BaseModel):
    """``run.json``: what was started for this run."""

    id: str
    mode: Mode
    pid: int
    command: list[str]
    started_at: float
    model_name: str
    experiment: str = Field(description="MLflow experiment of the pipeline's parent run")
    tracking_uri: str = Field(description="where the app reads the run's progress")
    kfp_host: str | None = None


@dataclass(frozen=True)
class TrainRun:
    folder: Path

    @property
    def id(self) -> str:
        return self.folder.name

    @property
    def config_path(self) -> Path:
        return self.folder / f"{self.id}.yaml"

    @property
    def console_path(self) -> Path:
        return self.folder / "console.log"

    @property
    def info_path(self) -> Path:
        return self.folder / "run.json"

    @property
    def exit_path(self) -> Path:
        return self.folder / "exit.json"

    @property
    def stop_path(self) -> Path:
        return self.folder / "stop.json"

    def info(self) -> RunInfo:
        return RunInfo.model_validate_json(self.info_path.read_text())

    def marker(self) -> bytes:
        return f"{RUN_ENV}={self.folder}".encode()


def new_run(workdir: Path) -> TrainRun:
    """A new, empty run folder named after the time (sortable) and a random suffix."""
    run_id = f"train-{datetime.now():%Y%m%d-%H%M%S}-{secrets.token_hex(2)}"
    folder = workdir / RUNS_DIR / run_id
    folder.mkdir(parents=True)
    return TrainRun(folder)


def list_runs(workdir: Path, limit: int = MAX_LISTED_RUNS) -> list[TrainRun]:
    """Started runs, newest first."""
    root = workdir / RUNS_DIR
    if not root.is_dir():
        return []
    runs = [TrainRun(p) for p in root.iterdir() if (p / "run.json").is_file()]
    return sorted(runs, key=lambda r: r.id, reverse=True)[:limit]


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
