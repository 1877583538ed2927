"""Runs started from the Train page are real processes in their own session: found by the
marker in their environment, followed to their end, and stopped without leaving any
process behind, whether or not the command ends its own children."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pipelines.ui import progress, train_processes, train_runs
from pipelines.ui.settings import UiError

REPO_ROOT = Path(__file__).resolve().parents[2]
SLEEPER = "import time; time.sleep(120)"
#: Leaves its child behind when killed (Python's default SIGTERM action).
CARELESS = (f"import subprocess, sys, time; subprocess.Popen([sys.executable, '-c', "
            f"{SLEEPER!r}]); print('ready', flush=True); time.sleep(120)")
#: Ends its child on SIGTERM, as `segpipe run` does with its tasks.
TIDY = f"""
import signal, subprocess, sys, time
child = subprocess.Popen([sys.executable, '-c', {SLEEPER!r}])
def end(*_):
    child.terminate()
    child.wait()
    sys.exit(143)
signal.signal(signal.SIGTERM, end)
print('ready', flush=True)
time.sleep(120)
"""
#: Ignores SIGTERM, and so does its child.
STUBBORN = ("import signal, subprocess, sys, time; signal.signal(signal.SIGTERM, "
            "signal.SIG_IGN); subprocess.Popen([sys.executable, '-c', 'import signal, time; "
            "signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(120)']); "
            "print('ready', flush=True); time.sleep(120)")

pytestmark = pytest.mark.skipif(not Path("/proc/self/environ").exists(),
                                reason="finding a run's processes needs /proc")


def _launch(workdir: Path, code: str) -> train_runs.TrainRun:
    run = train_runs.new_run(workdir)
    train_processes.launch(run, "source: x\n", model_name="m", experiment="e",
                           tracking_uri="sqlite:///unused.db",
                           command=[sys.executable, "-c", code])
    return run


def _wait(condition, timeout: float = 30.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    raise TimeoutError(f"{what} not met in {timeout} s")


def _ready(run: train_runs.TrainRun, processes: int) -> list[int]:
    _wait(lambda: "ready" in run.console_path.read_text(), what="ready")
    return _wait(lambda: len(train_processes.run_processes(run)) == processes
                 and train_processes.run_processes(run), what=f"{processes} processes")


def _stopped(run: train_runs.TrainRun) -> dict:
    return _wait(lambda: (train_processes.stop_report(run) or {}).get("done_at")
                 and train_processes.stop_report(run), timeout=60, what="stop done")


def test_a_command_that_ends_its_children_is_stopped_with_nothing_killed(tmp_path):
    run = _launch(tmp_path, TIDY)
    pids = _ready(run, 2)
    assert run.info().pid in pids
    assert train_processes.process_state(run).state == "running"
    train_processes.stop(run, grace_s=30)
    report = _stopped(run)
    assert report["killed"] == []
    assert train_processes.run_processes(run) == []
    state = train_processes.process_state(run)
    assert (state.state, state.exit_code) == ("stopped", 143)


def test_children_a_killed_command_leaves_behind_are_killed_and_named(tmp_path):
    run = _launch(tmp_path, CARELESS)
    pids = _ready(run, 2)
    leader = run.info().pid
    train_processes.stop(run, grace_s=30)
    assert train_processes.process_state(run).state == "stopping"  # until the leftovers are gone
    report = _stopped(run)
    assert report["killed"] == [pid for pid in pids if pid != leader]
    assert train_processes.run_processes(run) == []
    assert train_processes.process_state(run).state == "stopped"


def test_a_command_that_ignores_sigterm_is_killed_after_the_grace(tmp_path):
    run = _launch(tmp_path, STUBBORN)
    pids = _ready(run, 2)
    started = time.monotonic()
    train_processes.stop(run, grace_s=1)
    report = _stopped(run)
    assert sorted(report["killed"]) == sorted(pids)
    assert time.monotonic() - started < 30
    assert train_processes.run_processes(run) == []


def test_exit_status_output_and_duration_are_kept(tmp_path):
    done = _launch(tmp_path, "print('all good')")
    failed = _launch(tmp_path, "import sys; print('error: no scenes'); sys.exit(3)")
    _wait(lambda: done.exit_path.exists() and failed.exit_path.exists(), what="exit")
    state = train_processes.process_state(done)
    assert (state.state, state.exit_code) == ("finished", 0) and state.seconds >= 0
    assert done.console_path.read_text() == "all good\n"
    assert train_processes.process_state(failed) == train_processes.ProcessState(
        "failed", 3, train_processes.process_state(failed).seconds)
    assert done.config_path.read_text() == "source: x\n"
    assert done.config_path.name == f"{done.id}.yaml"
    assert [r.id for r in train_runs.list_runs(tmp_path)] == sorted([done.id, failed.id],
                                                                    reverse=True)


def test_run_json_keeps_no_store_password_and_the_app_reads_it_from_its_environment(
        tmp_path, monkeypatch):
    """A store URL with a password (the app's $MLFLOW_TRACKING_URI) is written to run.json
    without it; the app reading the run gets it back from its environment, and only there."""
    store = "http://segpipe:s3cret@mlflow.example:5000"
    run = train_runs.new_run(tmp_path)
    train_processes.launch(run, "source: x\n", model_name="m", experiment="e",
                           tracking_uri=store, command=[sys.executable, "-c", "pass"])
    assert "s3cret" not in run.info_path.read_text()
    assert run.info().tracking_uri == "http://segpipe@mlflow.example:5000"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store)
    assert run.info().store_uri() == store
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://segpipe:other@elsewhere:5000")
    assert run.info().store_uri() == "http://segpipe@mlflow.example:5000"
    _wait(run.exit_path.exists, what="exit")


def test_a_run_started_by_an_earlier_app_process_is_found_and_stopped(tmp_path):
    """The app restarted: its runs go on in their own sessions and are found again by
    their marker (no exit status is known for them)."""
    launcher = f"""
import sys
from pathlib import Path
from pipelines.ui import train_processes, train_runs
run = train_runs.new_run(Path({str(tmp_path)!r}))
train_processes.launch(run, "source: x\\n", model_name="m", experiment="e",
                       tracking_uri="sqlite:///unused.db",
                       command=[sys.executable, "-c", {TIDY!r}])
print(run.folder)
"""
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    out = subprocess.run([sys.executable, "-c", launcher], env=env, check=True,
                         capture_output=True, text=True, timeout=60).stdout
    run = train_runs.TrainRun(Path(out.strip()))
    _ready(run, 2)
    assert train_processes.process_state(run).state == "running"
    train_processes.stop(run, grace_s=30)
    assert _stopped(run)["killed"] == []
    assert train_processes.process_state(run) == train_processes.ProcessState("stopped")


def test_kubeflow_runs_are_submitted_under_the_runs_name(tmp_path):
    run = train_runs.new_run(tmp_path)
    command = train_processes.run_command(run, "http://kfp.example")
    assert command[1:] == ["-m", "pipelines.cli", "submit", "--host", "http://kfp.example",
                           "--config", str(run.config_path), "--run-name", run.id]
    assert train_processes.run_command(run, None)[3:] == ["run", "--config", str(run.config_path)]
    json.dumps(train_processes.run_env(run))  # plain strings only
    assert train_processes.run_env(run)[train_runs.RUN_ENV] == str(run.folder)


@pytest.mark.slow
def test_a_kubeflow_host_that_is_not_there_fails_the_run_with_its_message(tmp_path):
    """The real `segpipe submit`, against a closed port: the run fails, and the console's
    last lines are the command's one-line error naming the host."""
    from tests.ui.harness import free_port

    host = f"http://127.0.0.1:{free_port()}"
    run = train_runs.new_run(tmp_path)
    train_processes.launch(run, "source: s3://bucket/scenes\n", model_name="m",
                           experiment="e", tracking_uri="http://127.0.0.1:1", kfp_host=host)
    assert run.info().mode == "kubeflow"
    _wait(lambda: run.exit_path.exists(), timeout=120, what="segpipe submit to end")
    assert train_processes.process_state(run).state == "failed"
    errors = progress.error_lines(progress.console_tail(run.console_path))
    assert errors and errors[0].startswith(f"error: Kubeflow Pipelines API at {host} is "
                                           "unreachable")
    with pytest.raises(UiError, match="stop it in the Kubeflow UI"):
        train_processes.stop(run)


def test_live_runs_are_the_running_ones(tmp_path):
    """What the Train page points to after a reload: runs still at work, not ended ones."""
    ended = _launch(tmp_path, "print('done')")
    _wait(lambda: train_processes.process_state(ended).state == "finished", what="finished")
    running = _launch(tmp_path, f"print('ready', flush=True); {SLEEPER}")
    _ready(running, 1)
    try:
        assert train_processes.live_runs(train_runs.list_runs(tmp_path)) == [running]
    finally:
        train_processes.stop(running, grace_s=5)
        _stopped(running)
    assert train_processes.live_runs(train_runs.list_runs(tmp_path)) == []
