"""One trial of the tune study: sample its params from the study's search space, train
under an MLflow run nested in the caller's active run, feed val mIoU to the pruner each epoch,
and keep the trained model (components/tune.py opens the study and runs the workers).

A trial trains in its own folder (``<checkpoint_dir>/<study>/trials/<number>`` when set, so
an interrupted trial resumes from its last epoch; else in the worker's output). Its MLflow
run records the outcome in ``segpipe.trial_state`` (COMPLETE, PRUNED or FAIL, with
``segpipe.error``); a finished trial's optimizer checkpoints are deleted."""

from __future__ import annotations

import logging
import math
import re
import shutil
from pathlib import Path

import keras
import mlflow
import optuna

from components import tracking
from components.atomic import atomic_dir
from components.dataset_paths import ModelPaths, PreparedDataset
from components.train import train_model
from components.train_callbacks import EpochProgress, StopAtDeadline
from components.tune_options import TRIAL_ERROR_ATTR, TRIALS_DIR, TuneOptions
from components.tune_space import SearchSpace, resolve_search_space, sample_params

log = logging.getLogger(__name__)
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_FRAME = re.compile(r'\s*File ".*", line \d+')
# TF's tail after the cause: the failing node and the function it ran in.
_GRAPH_NODE = re.compile(r"\[\[\{\{node [^}]*\}\}\]\]|\[Op:[^\]]*\]")


def error_line(err: BaseException, limit: int = 500) -> str:
    """``err`` on one plain line: Keras wraps a layer's error over several lines, in bold,
    followed by the arguments the layer received (left out); TensorFlow's runtime errors
    (OOM, a label out of range) list the graph's Python frames first and their cause after
    the last one: the cause alone, without the node it names."""
    text = _ANSI.sub("", str(err)).split("Arguments received by", 1)[0]
    lines = text.splitlines()
    frames = [i for i, line in enumerate(lines) if _FRAME.match(line)]
    if frames:
        lines = lines[frames[-1] + 1:]
    cause = _GRAPH_NODE.sub("", " ".join(lines))
    return f"{type(err).__name__}: {' '.join(cause.split())}"[:limit]


class ReportToTrial(keras.callbacks.Callback):
    """Feeds val mIoU to the pruner each epoch; a diverged epoch (non-finite loss) reports
    NaN, which the pruners treat as a reason to prune."""

    def __init__(self, trial: optuna.Trial) -> None:
        super().__init__()
        self.trial = trial

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        logs = logs or {}
        losses = [float(logs.get(k, "nan")) for k in ("loss", "val_loss")]
        value = float(logs.get("val_miou", "nan"))
        self.trial.report(value if all(map(math.isfinite, losses)) else float("nan"), epoch)
        if self.trial.should_prune():
            raise optuna.TrialPruned(f"pruned after epoch {epoch} (val mIoU {value:.4f})")


class Objective:
    """One trial: sample params, train under a nested MLflow run, report and return val mIoU.
    A trial trains in its own folder (under ``checkpoint_dir`` when set, so it outlives the
    worker); its finished model is copied into the worker's output."""

    def __init__(self, dataset: PreparedDataset, options: TuneOptions, study_name: str,
                 out_dir: Path, deadline: float | None = None,
                 space: SearchSpace | None = None) -> None:
        self.dataset, self.options, self.deadline = dataset, options, deadline
        self.space = space or resolve_search_space(options.search_space, options.train)
        self.study_name, self.out_dir = study_name, out_dir
        root = Path(options.checkpoint_dir) / study_name if options.checkpoint_dir else out_dir
        self.trials_root = root / TRIALS_DIR

    def __call__(self, trial: optuna.Trial) -> float:
        # A re-queued trial goes on in the folder of the one it resumes.
        trial_dir = Path(trial.user_attrs.get("trial_dir") or
                         self.trials_root / str(trial.number))
        trial.set_user_attr("trial_dir", str(trial_dir))
        tags = {"optuna.study": self.study_name, "optuna.trial": str(trial.number)}
        if "resumes_trial" in trial.user_attrs:
            tags["segpipe.resumes_trial"] = str(trial.user_attrs["resumes_trial"])
        outcome: BaseException | None = None
        with tracking.child_run(f"trial-{trial.number}", tags=tags) as run:
            trial.set_user_attr("mlflow_run_id", run.info.run_id)
            try:
                params = sample_params(trial, self.space, self.options.train,
                                       self.options.epochs)
                progress = EpochProgress(f"trial {trial.number}", params.epochs)
                callbacks = [progress, ReportToTrial(trial)]
                if self.deadline is not None:
                    callbacks.append(budget := StopAtDeadline(self.deadline, trial))
                result = train_model(self.dataset, params, trial_dir, callbacks=callbacks)
                if self.deadline is not None and budget.stopped_after is not None:
                    mlflow.set_tag("segpipe.stopped_by_budget", str(budget.stopped_after))
                # Any trial's model can then be fetched (and registered by hand) from MLflow.
                for path in model_files(trial_dir):
                    mlflow.log_artifact(str(path), artifact_path="trained_model")
                keep_model(trial_dir, self.out_dir / TRIALS_DIR / str(trial.number))
                mlflow.set_tag("segpipe.trial_state", "COMPLETE")
            except optuna.TrialPruned as err:
                mlflow.set_tag("segpipe.trial_state", "PRUNED")
                outcome = err
            except Exception as err:
                mlflow.set_tag("segpipe.trial_state", "FAIL")
                mlflow.set_tag("segpipe.error", f"{type(err).__name__}: {err}"[:4000])
                # in the study too: the select step words a study that only failed by it
                trial.set_user_attr(TRIAL_ERROR_ATTR, error_line(err))
                log.warning("trial %d failed: %s: %s", trial.number, type(err).__name__, err)
                outcome = err
            finally:
                keras.backend.clear_session()
            # A finished trial (complete, pruned or failed) is never resumed, so its
            # optimizer checkpoints are dead weight; large models x many trials fill disks.
            # A killed worker never gets here: its checkpoints stay for the resume.
            shutil.rmtree(trial_dir / "checkpoints", ignore_errors=True)
        if outcome is not None:
            # A pruned trial ended as planned: its run stays FINISHED, curves up to the
            # pruning epoch comparable with the others (MLflow's KILLED would read as a
            # crash); segpipe.trial_state says PRUNED.
            if not isinstance(outcome, optuna.TrialPruned):
                mlflow.MlflowClient().set_terminated(run.info.run_id, "FAILED")
            raise outcome
        return result.best_val_miou


def model_files(trial_dir: Path) -> list[Path]:
    """What a trained trial keeps: the Keras model, its info and the params it trained with."""
    paths = ModelPaths(trial_dir)
    return [paths.keras_model, paths.info, trial_dir / "train_params.json"]


def keep_model(trial_dir: Path, kept: Path) -> None:
    """The trial's model files into the worker's output (nothing to copy when it trained
    there)."""
    if trial_dir.resolve() == kept.resolve():
        return
    with atomic_dir(kept) as tmp:
        for path in model_files(trial_dir):
            shutil.copy2(path, tmp / path.name)
