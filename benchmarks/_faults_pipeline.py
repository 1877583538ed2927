"""Fault cases of `segpipe run` (Kubeflow's local runner) on tiny generated data: patch 32, a
two-level U-Net with 4 filters, a few epochs (tests/pipelines/test_local_run_faults.py's
config and process helpers)."""

from __future__ import annotations

import signal
import time
from pathlib import Path

from _faults_common import Context, case, segpipe

from tests.pipelines.test_local_run_faults import CONFIG, _epochs_done, _start, _started_by


def _run_folder(ctx: Context, name: str) -> Path:
    from components.sample_data import generate_sample_dataset

    folder = ctx.folder(name)
    generate_sample_dataset(folder / "data", scenes=4, size=64, seed=1)
    (folder / "run.yaml").write_text(CONFIG)
    return folder


def _wait(predicate, timeout: float, runner=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value or (runner is not None and runner.poll() is not None):
            return value
        time.sleep(0.5)
    return None


def _client(folder: Path):
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{folder / 'work' / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("faults")
    return client, experiment


def _parent_runs(folder: Path) -> list:
    client, experiment = _client(folder)
    if experiment is None:
        return []
    runs = client.search_runs([experiment.experiment_id])
    return [r for r in runs if "mlflow.parentRunId" not in r.data.tags]


def _resumed_from_epoch(folder: Path, parent) -> int | None:
    """The epoch the trial that took over the killed trial 0 started from (Optuna knows which
    trial that is; its MLflow run carries the epoch)."""
    import optuna

    study = optuna.load_study(study_name=parent.data.tags["optuna.study_name"],
                              storage=f"sqlite:///{folder / 'work' / 'optuna.db'}")
    again = [t.number for t in study.trials if t.user_attrs.get("resumes_trial") == 0]
    client, experiment = _client(folder)
    trials = client.search_runs([experiment.experiment_id],
                                f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'")
    for run in trials:
        if again and run.data.tags.get("optuna.trial") == str(again[0]):
            return int(run.data.tags.get("segpipe.resumed_from_epoch", 0))
    return None


@case("pipeline", "rc 2, one line naming the field source: and the missing folder")
def run_config_source_missing(ctx: Context) -> tuple[str, bool]:
    folder = ctx.folder("run_no_source")
    (folder / "run.yaml").write_text(CONFIG.replace("source: data", "source: no-such-folder"))
    ran = segpipe("run", "--config", "run.yaml", cwd=folder)
    message = ran.last_line()
    got = f"rc {ran.returncode} in {ran.seconds} s: {ctx.short(message)}"
    return got, (ran.returncode == 2 and "source:" in message and "no-such-folder" in message
                 and not ran.traceback() and not (folder / "work").exists())


@case("pipeline", "a truncated scene: rc 1, the last line names step 'ingest' and the file; "
                  "the MLflow parent run FAILED with segpipe.failed_step/segpipe.error",
      slow=True)
def run_failing_step(ctx: Context) -> tuple[str, bool]:
    folder = _run_folder(ctx, "run_failing_step")
    (folder / "data" / "scene00_image.tif").write_bytes(b"II*\0 truncated")
    ran = segpipe("run", "--config", "run.yaml", cwd=folder, timeout=600)
    last = ran.last_line()
    parents = _parent_runs(folder)
    tags = parents[0].data.tags if len(parents) == 1 else {}
    status = parents[0].info.status if len(parents) == 1 else f"{len(parents)} parent runs"
    got = (f"rc {ran.returncode} in {ran.seconds} s: {ctx.short(last, 200)}; parent run "
           f"{status}, failed_step={tags.get('segpipe.failed_step')}")
    return got, (ran.returncode == 1 and "step 'ingest' failed" in last
                 and "scene00_image.tif" in last and "Traceback" not in last
                 and status == "FAILED" and tags.get("segpipe.failed_step") == "ingest"
                 and "scene00_image.tif" in tags.get("segpipe.error", ""))


@case("pipeline", "SIGTERM to the runner during tuning (after a trial's first epoch): rc 1, "
                  "'interrupted by SIGTERM', no task process left", slow=True)
def run_sigterm(ctx: Context) -> tuple[str, bool]:
    folder = _run_folder(ctx, "run_sigterm")
    runner = _start(folder)
    if not _wait(lambda: _epochs_done(folder / "work") >= 1, 600, runner):
        runner.kill()
        return f"no trial reached its first epoch (runner rc {runner.wait()})", False
    tasks = _started_by(runner.pid)
    runner.send_signal(signal.SIGTERM)
    sent = time.monotonic()
    output, _ = runner.communicate(timeout=600)
    took = time.monotonic() - sent
    left = _started_by(runner.pid)
    last = output.strip().splitlines()[-1] if output.strip() else ""
    parents = _parent_runs(folder)
    client, experiment = _client(folder)
    running = [r for r in client.search_runs([experiment.experiment_id])
               if r.info.status == "RUNNING"]
    got = (f"{len(tasks)} task process(es) at SIGTERM; rc {runner.returncode} after "
           f"{took:.1f} s: {ctx.short(last, 150)}; task processes left: {len(left)}; parent "
           f"run {parents[0].info.status if parents else '-'}, MLflow runs left RUNNING: "
           f"{len(running)}")
    return got, runner.returncode == 1 and "interrupted by SIGTERM" in last and not left


@case("pipeline", "SIGKILL to the runner mid-trial: no task left; the same command again "
                  "resumes (cache hits, the same parent run, FINISHED) and the interrupted "
                  "trial loses at most one epoch", slow=True)
def run_sigkill_then_resume(ctx: Context) -> tuple[str, bool]:
    folder = _run_folder(ctx, "run_sigkill")
    work = folder / "work"
    runner = _start(folder)
    if not _wait(lambda: _epochs_done(work) >= 2, 600, runner):
        runner.kill()
        return f"the first trial never reached 2 epochs (runner rc {runner.wait()})", False
    tasks = _started_by(runner.pid)
    runner.kill()
    runner.wait()
    at_kill, killed = _epochs_done(work), time.monotonic()
    left = _wait(lambda: not _started_by(runner.pid), 120)
    exited_after = time.monotonic() - killed
    # A task notices its runner's death between epochs: count what it checkpointed in all.
    killed_at = _epochs_done(work)
    before = [r.info.run_id for r in _parent_runs(folder)]
    again = segpipe("run", "--config", "run.yaml", cwd=folder, timeout=900)
    parents = _parent_runs(folder)
    resumed = _resumed_from_epoch(folder, parents[0]) if len(parents) == 1 else None
    lost = killed_at - resumed if resumed is not None else None
    same = len(parents) == 1 and before == [parents[0].info.run_id]
    status = parents[0].info.status if len(parents) == 1 else f"{len(parents)} parent runs"
    got = (f"SIGKILL with {at_kill} epochs of the first trial done and {len(tasks)} task "
           f"process(es); they exited {exited_after:.1f} s later with {killed_at} epochs "
           f"checkpointed (task processes left: {'none' if left else 'some'}); rerun rc "
           f"{again.returncode} in {again.seconds} s, same parent run: {same} ({status}), "
           f"resumed from epoch {resumed}: epochs lost {lost}")
    return got, (bool(left) and again.returncode == 0 and "resumed" in again.output
                 and "cache hit" in again.output and same and status == "FINISHED"
                 and lost is not None and 0 <= lost <= 1)
