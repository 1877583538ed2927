"""`segpipe run` under faults, with real processes and real signals: a runner killed with
SIGKILL mid-trial leaves no task running, and the same config run again resumes the same
MLflow parent run and Optuna study, the interrupted trial from its last epoch checkpoint;
SIGTERM stops the tasks before the runner exits; a failing step says where and why."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from components.sample_data import generate_sample_dataset
from tests.tiny_run import LEARNING_RATE, tiny_run_config

REPO_ROOT = Path(__file__).resolve().parents[2]

def _config(epochs: int = 6) -> str:
    return tiny_run_config(
        source="data", workdir="work",
        # One trial: the resumed run must still train a complete trial after the failed one
        # (a failed trial does not count), and a second trial would only add epochs.
        tuning={"n_trials": 1, "epochs": epochs, "pruner": "none",
                "search_space": {"training": {"learning_rate": LEARNING_RATE,
                                              "batch_size": {"type": "categorical",
                                                             "choices": [4]}}},
                "train": {"early_stopping_patience": 0}},
        registry={"model_name": "faults-seg"}, tracking={"mlflow_experiment": "faults"})


CONFIG = _config()


def _start(folder: Path, tmpdir: Path | None = None) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "TF_CPP_MIN_LOG_LEVEL": "2"}
    env.pop("MLFLOW_TRACKING_URI", None)
    if tmpdir is not None:
        env["TMPDIR"] = str(tmpdir)
    return subprocess.Popen([sys.executable, "-m", "pipelines.cli", "run", "--config", "run.yaml"],
                            cwd=folder, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def _started_by(runner_pid: int) -> list[int]:
    """Processes the runner started, wherever they are in the tree now (the local runner
    puts its pid in their environment)."""
    found = []
    marker = f"SEGPIPE_RUNNER_PID={runner_pid}".encode()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != runner_pid:
            try:
                if marker in (entry / "environ").read_bytes().split(b"\0"):
                    state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
                    if state != "Z":
                        found.append(int(entry.name))
            except OSError:
                continue
    return found


def _wait_for(predicate, timeout: float, what: str, runner: subprocess.Popen | None = None,
              poll: float = 0.5):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        if runner is not None and runner.poll() is not None:
            pytest.fail(f"the run ended before {what}:\n{runner.stdout.read()[-3000:]}")
        time.sleep(poll)
    pytest.fail(f"timed out waiting for {what}")


def _epochs_done(work: Path) -> int:
    states = list(work.glob("trials/*/trials/*/checkpoints/state.json"))
    done = []
    for path in states:
        try:
            done.append(json.loads(path.read_text())["epochs_done"])
        except (OSError, ValueError, KeyError):
            continue
    return max(done, default=0)


def _run_folder(folder: Path) -> Path:
    generate_sample_dataset(folder / "data", scenes=4, size=64, seed=1)
    (folder / "run.yaml").write_text(CONFIG)
    return folder


@pytest.fixture
def run_folder(tmp_path: Path) -> Path:
    return _run_folder(tmp_path)


def _stop_files(runner_pid: int) -> list[Path]:
    return list(Path(tempfile.gettempdir()).glob(f"segpipe-stop-{runner_pid}-*"))


@dataclass
class KilledAndResumed:
    """A run killed with SIGKILL in its first trial, then run again to its end."""
    folder: Path
    killed_at: int  # epochs of the first trial checkpointed when it was killed
    output: str  # the second run's console


@pytest.fixture(scope="module")
def killed_and_resumed(tmp_path_factory) -> KilledAndResumed:
    """Shared by the tests that need a run killed mid-trial or a finished run: one run of
    the pipeline to its end costs as much as the rest of such a test."""
    folder = _run_folder(tmp_path_factory.mktemp("killed"))
    work = folder / "work"
    # Epochs of the tiny model take a fraction of a second on a quiet machine: 10 epochs of
    # margin and a fast poll make sure the kill lands inside the first trial (with 6 epochs
    # and a 0.5 s poll it once landed after the trial had finished).
    epochs = 12
    (folder / "run.yaml").write_text(_config(epochs=epochs))
    runner = _start(folder)
    _wait_for(lambda: _epochs_done(work) >= 2, 420, "two epochs of the first trial", runner,
              poll=0.05)
    tasks = _started_by(runner.pid)
    assert tasks, "no task process found while a trial was training"
    runner.kill()  # SIGKILL: no handler of ours runs
    runner.wait()
    killed_at = _epochs_done(work)
    assert killed_at < epochs, "the first trial finished before the kill: nothing to resume"
    _wait_for(lambda: not _started_by(runner.pid), 20, "the task processes to exit")
    assert not _stop_files(runner.pid)  # named for a stop, never created: nothing left in /tmp

    again = _start(folder)
    output, _ = again.communicate(timeout=600)
    assert again.returncode == 0, output[-4000:]
    return KilledAndResumed(folder, killed_at, output)


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_a_run_killed_mid_trial_leaves_no_task_and_resumes_where_it_stopped(
        killed_and_resumed):
    work, killed_at = killed_and_resumed.folder / "work", killed_and_resumed.killed_at
    output = killed_and_resumed.output
    assert "resumed" in output and "cache hit" in output

    import optuna
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{work / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("faults")
    parents = client.search_runs([experiment.experiment_id],
                                 "tags.`segpipe.pipeline_state` = 'finished'")
    assert len(parents) == 1  # the resumed run is the same parent run, now finished
    parent = parents[0]
    assert parent.info.status == "FINISHED"
    study = optuna.load_study(study_name=parent.data.tags["optuna.study_name"],
                              storage=f"sqlite:///{work / 'optuna.db'}")
    states = {t.number: t.state.name for t in study.trials}
    assert states == {0: "FAIL", 1: "COMPLETE"}, states
    resumed = next(t for t in study.trials if t.user_attrs.get("resumes_trial") == 0)
    trial_runs = client.search_runs([experiment.experiment_id],
                                    f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'")
    by_trial = {r.data.tags["optuna.trial"]: r for r in trial_runs}
    assert by_trial["0"].info.status == "KILLED"  # never left RUNNING
    resumed_run = by_trial[str(resumed.number)]
    resumed_from = int(resumed_run.data.tags["segpipe.resumed_from_epoch"])
    assert killed_at - resumed_from <= 1, (killed_at, resumed_from)  # at most one epoch lost
    assert all(r.info.status != "RUNNING" for r in trial_runs)


@pytest.mark.slow
@pytest.mark.timeout(400)
def test_sigterm_during_tuning_stops_the_tasks_at_once_and_closes_the_run(run_folder):
    work = run_folder / "work"
    # Long trials: the tune worker's retry policy must not start a worker that trains on.
    (run_folder / "run.yaml").write_text(_config(epochs=300))
    runner = _start(run_folder)
    _wait_for(lambda: _epochs_done(work) >= 1, 300, "the first epoch of a trial", runner)
    runner.send_signal(signal.SIGTERM)
    sent = time.monotonic()
    output, _ = runner.communicate(timeout=120)
    # Not after the tuning ends: the tune worker is stopped, not waited for or retried.
    assert time.monotonic() - sent < 45
    assert runner.returncode == 143  # 128 + SIGTERM, as every segpipe command
    assert "interrupted by SIGTERM" in output.strip().splitlines()[-1]
    # Nothing the runner reports about the stopped (and retried) tasks buries that line.
    plain = re.sub(r"\x1b\[[0-9;]*m", "", output)  # kfp colours task names and states
    assert plain.count("Executing task 'tune-worker'") == 1, plain[-3000:]
    assert "status FAILURE" not in plain, plain[-3000:]
    assert not _started_by(runner.pid)
    assert not _stop_files(runner.pid)  # created to stop the tasks, removed on the way out

    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{work / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("faults")
    runs = client.search_runs([experiment.experiment_id])
    assert runs and all(r.info.status != "RUNNING" for r in runs)
    (parent,) = [r for r in runs if "segpipe.run_name" in r.data.tags]
    assert parent.info.status == "KILLED"
    assert parent.data.tags["segpipe.pipeline_state"] == "interrupted"


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_a_failing_step_is_named_with_its_error_on_the_console_and_in_mlflow(run_folder):
    """...and, while it runs, a second run of the same workdir is refused at once; the run
    leaves nothing in the system's temporary folder (kfp's task programs, TensorFlow's
    autograph modules), however it ends."""
    (run_folder / "data" / "scene00_image.tif").write_bytes(b"II*\0 truncated")
    system_tmp = run_folder / "system-tmp"
    system_tmp.mkdir()
    runner = _start(run_folder, tmpdir=system_tmp)
    lock = run_folder / "work" / "run.lock"
    _wait_for(lambda: lock.is_file() and lock.read_text().strip(), 120,
              "the first run to lock its workdir", runner, poll=0.1)
    second = _start(run_folder)
    refused, _ = second.communicate(timeout=60)
    assert runner.poll() is None, "the first run ended before the second was refused"
    assert second.returncode == 1
    assert refused.strip().splitlines() == [
        f"error: another `segpipe run` is using the workdir {run_folder / 'work'} (pid "
        f"{runner.pid}); wait for it to end or stop it, or give this config another "
        "workdir"], refused

    output, _ = runner.communicate(timeout=240)
    assert runner.returncode == 1
    last = output.strip().splitlines()[-1]
    assert "step 'ingest' failed" in last and "scene00_image.tif" in last, last
    assert "Traceback" not in output  # the frames stay in the log the last line names
    log = Path(last.rsplit("(full log: ", 1)[1].rstrip(")"))
    assert "Traceback" in log.read_text()
    assert sorted(system_tmp.rglob("*")) == []
    assert not (run_folder / "work" / "tmp").exists()

    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{run_folder / 'work' / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("faults")
    (parent,) = client.search_runs([experiment.experiment_id])
    assert parent.info.status == "FAILED"
    assert parent.data.tags["segpipe.pipeline_state"] == "failed"
    assert parent.data.tags["segpipe.failed_step"] == "ingest"
    assert "scene00_image.tif" in parent.data.tags["segpipe.error"]


def _tuning_started(work: Path, logs_before: set[Path]):
    """The log of the run started after ``logs_before`` once it reached its trials (its data
    steps done and cached)."""
    for log in set(work.glob("logs/run-*.log")) - logs_before:
        if "Executing task 'tune-worker'" in log.read_text(errors="replace"):
            return log
    return None


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_after_a_sigkill_the_cache_line_and_the_ingest_agree(killed_and_resumed):
    """A finished run; a scene removed; a run killed with SIGKILL in its trials (its data
    steps done): the next run says nothing of the ingest running again, and does not run it.
    (The last test of the module to use ``killed_and_resumed``: it changes the source.)"""
    run_folder = killed_and_resumed.folder
    work = run_folder / "work"
    for path in (run_folder / "data").glob("scene03_*.tif"):
        path.unlink()
    for kill in (signal.SIGKILL, signal.SIGTERM):
        logs = set(work.glob("logs/run-*.log"))
        runner = _start(run_folder)
        _wait_for(lambda logs=logs: _tuning_started(work, logs), 300, "the trials", runner,
                  poll=0.2)
        runner.send_signal(kill)
        output, _ = runner.communicate(timeout=120)
        _wait_for(lambda pid=runner.pid: not _started_by(pid), 20, "the task processes to exit")
    plain = re.sub(r"\x1b\[[0-9;]*m", "", output)
    assert "ingest runs again" not in plain, plain[:2000]
    assert "Task ingest cache hit" in plain, plain[:3000]
