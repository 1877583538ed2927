"""Hyper-parameter tuning: an Optuna study whose trials each train a model.

The study lives in any SQLAlchemy storage (SQLite by default, PostgreSQL for many
workers), so a re-run resumes it and ``n_workers`` processes share it. A trial that raises
is recorded as failed and the study goes on; a diverging or unpromising trial is pruned
per epoch. Every trial is a nested MLflow run under one parent run, and keeps its model, so
the best one is copied out without retraining."""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any, Literal

import keras
import mlflow
import optuna
from optuna.trial import TrialState
from pydantic import BaseModel, ConfigDict, Field, model_validator

from components import tracking
from components.artifacts import ModelPaths
from components.atomic import atomic_path, write_json
from components.train import TrainParams, train_model
from components.tune_space import SearchSpace, sample_params

log = logging.getLogger(__name__)
# Heartbeats, stale-trial cleanup and the matplotlib plots are marked experimental.
warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)

STORAGE_ENV = "SEGPIPE_OPTUNA_STORAGE"  # how workers get a URL that may hold a password
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)


class TuneError(RuntimeError):
    """The study could not produce a model (e.g. every trial failed)."""


class TuneOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    n_trials: int | None = Field(default=20, ge=1, description="total over all workers and "
                                 "re-runs; None: until timeout")
    timeout: float | None = Field(default=None, gt=0, description="seconds, per invocation")
    n_workers: int = Field(default=1, ge=1)
    storage: str | None = Field(default=None, description="SQLAlchemy URL; default "
                                "sqlite:///<out_dir>/optuna.db; may come from "
                                "SEGPIPE_OPTUNA_STORAGE")
    study_name: str = "segpipe"
    seed: int = 0
    pruner: Literal["median", "hyperband", "none"] = "median"
    pruner_startup_trials: int = Field(default=5, ge=0)
    pruner_warmup_epochs: int = Field(default=2, ge=0)
    epochs: int = Field(default=20, ge=1)
    search_space: SearchSpace = Field(default_factory=SearchSpace)
    base_params: TrainParams = Field(default_factory=TrainParams,
                                     description="everything the study does not search")
    enqueue: list[dict[str, Any]] = Field(default_factory=list, description="known-good (or "
                                          "to-be-checked) configs tried first, by Optuna name")


    @model_validator(mode="after")
    def _bounded(self) -> TuneOptions:
        if self.n_trials is None and self.timeout is None:
            raise ValueError("set n_trials or timeout (or both); neither would run forever")
        return self


class TuneResult(BaseModel):
    study_name: str
    storage: str
    best_trial_number: int
    best_value: float
    best_params: dict[str, Any]
    best_train_params: dict[str, Any]
    model_dir: str
    trial_states: dict[str, int]
    mlflow_run_id: str | None


def resolve_storage(options: TuneOptions, out_dir: Path) -> str:
    url = options.storage or os.environ.get(STORAGE_ENV)
    return url or f"sqlite:///{(Path(out_dir) / 'optuna.db').resolve()}"


def _storage(url: str) -> optuna.storages.RDBStorage:
    kwargs = {"connect_args": {"timeout": 60}} if url.startswith("sqlite") else {}
    # Heartbeats let a re-run mark trials of a killed worker as failed instead of waiting
    # forever on them.
    return optuna.storages.RDBStorage(url, engine_kwargs=kwargs, heartbeat_interval=30,
                                      grace_period=120)


def _pruner(options: TuneOptions) -> optuna.pruners.BasePruner:
    if options.pruner == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=options.pruner_startup_trials,
                                           n_warmup_steps=options.pruner_warmup_epochs)
    if options.pruner == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=max(options.pruner_warmup_epochs, 1),
                                              max_resource=options.epochs)
    return optuna.pruners.NopPruner()


def load_study(options: TuneOptions, storage_url: str, worker: int = 0) -> optuna.Study:
    # Each worker seeds its sampler differently, else they would propose the same points.
    return optuna.create_study(storage=_storage(storage_url), study_name=options.study_name,
                               sampler=optuna.samplers.TPESampler(seed=options.seed + worker),
                               pruner=_pruner(options), direction="maximize",
                               load_if_exists=True)


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
    def __init__(self, dataset_dir: Path, split_path: Path, stats_path: Path,
                 options: TuneOptions, out_dir: Path, parent_run_id: str | None) -> None:
        self.dataset_dir, self.split_path, self.stats_path = dataset_dir, split_path, stats_path
        self.options, self.out_dir, self.parent_run_id = options, out_dir, parent_run_id

    def __call__(self, trial: optuna.Trial) -> float:
        trial_dir = self.out_dir / "trials" / str(trial.number)
        trial.set_user_attr("model_dir", str(trial_dir))
        tags = {"optuna.study": self.options.study_name, "optuna.trial": str(trial.number)}
        outcome: BaseException | None = None
        with tracking.run_scope(run_name=f"trial-{trial.number}",
                                parent_run_id=self.parent_run_id, tags=tags,
                                reuse_active=False) as run:
            trial.set_user_attr("mlflow_run_id", run.info.run_id)
            try:
                params = sample_params(trial, self.options.search_space,
                                       self.options.base_params, self.options.epochs)
                result = train_model(self.dataset_dir, self.split_path, self.stats_path,
                                     params, trial_dir, experiment_name=None,
                                     callbacks=[ReportToTrial(trial)])
                mlflow.set_tag("segpipe.trial_state", "COMPLETE")
            except optuna.TrialPruned as err:
                mlflow.set_tag("segpipe.trial_state", "PRUNED")
                outcome = err
            except Exception as err:
                mlflow.set_tag("segpipe.trial_state", "FAIL")
                mlflow.set_tag("segpipe.error", f"{type(err).__name__}: {err}"[:4000])
                outcome = err
            finally:
                keras.backend.clear_session()
                # A trial is never resumed (a re-run starts new trials), so its optimizer
                # checkpoints are dead weight; large models x many trials fill disks.
                shutil.rmtree(trial_dir / "checkpoints", ignore_errors=True)
        if outcome is not None:
            status = "KILLED" if isinstance(outcome, optuna.TrialPruned) else "FAILED"
            mlflow.MlflowClient().set_terminated(run.info.run_id, status)
            raise outcome
        return result.best_val_miou


def run_worker(dataset_dir: Path, split_path: Path, stats_path: Path, options: TuneOptions,
               out_dir: Path, storage_url: str, n_trials: int | None, worker: int,
               parent_run_id: str | None) -> None:
    """Optimize a shared study for ``n_trials`` more trials (or until the timeout)."""
    study = load_study(options, storage_url, worker)
    callbacks = []
    if options.n_trials is not None:
        # Guards the total when other invocations (e.g. other pods) share the study.
        callbacks.append(optuna.study.MaxTrialsCallback(options.n_trials, states=FINISHED))
    objective = Objective(Path(dataset_dir), Path(split_path), Path(stats_path), options,
                          Path(out_dir), parent_run_id)
    study.optimize(objective, n_trials=n_trials, timeout=options.timeout, catch=(Exception,),
                   callbacks=callbacks, gc_after_trial=True)


def trial_shares(total: int | None, workers: int) -> list[int | None]:
    """Each worker's share of ``total`` trials (None: unbounded); shares differ by at most 1."""
    if total is None:
        return [None] * workers
    return [total // workers + (1 if i < total % workers else 0) for i in range(workers)]


def _spawn_workers(spec: dict[str, Any], storage_url: str, shares: list[int | None],
                   out_dir: Path, timeout: float | None) -> None:
    repo_root = Path(__file__).resolve().parents[1]
    env = {**os.environ, STORAGE_ENV: storage_url, "MLFLOW_TRACKING_URI":
           mlflow.get_tracking_uri(),
           "PYTHONPATH": os.pathsep.join(filter(None, [str(repo_root),
                                                       os.environ.get("PYTHONPATH")]))}
    spec_path = out_dir / "workers" / "spec.json"
    write_json(spec_path, spec)
    procs = []
    for worker, share in enumerate(shares):
        if share == 0:
            continue
        log_path = out_dir / "workers" / f"worker-{worker}.log"
        with open(log_path, "w") as log_file:
            cmd = [sys.executable, "-m", "components.tune_worker", str(spec_path),
                   "--worker", str(worker)] + (["--n-trials", str(share)] if share else [])
            procs.append((worker, log_path,
                          subprocess.Popen(cmd, env=env, stdout=log_file,
                                           stderr=subprocess.STDOUT)))
    failed = []
    for worker, log_path, proc in procs:
        rc = proc.wait(timeout=None if timeout is None else timeout + 600)
        if rc != 0:
            failed.append(f"worker {worker} exited {rc}: {log_path.read_text()[-800:]}")
    if failed and len(failed) == len(procs):
        raise TuneError("every tuning worker failed:\n" + "\n".join(failed))
    for message in failed:
        log.warning(message)


def tune_model(dataset_dir: Path, split_path: Path, stats_path: Path, options: TuneOptions,
               out_dir: Path, *, mlflow_tracking_uri: str | None = None,
               experiment_name: str | None = "segpipe", run_name: str = "tune",
               parent_run_id: str | None = None) -> TuneResult:
    """Run (or resume) the study to ``options.n_trials`` finished trials, then copy the best
    trial's model into ``out_dir`` (ModelPaths layout) and write ``tune_result.json``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    storage_url = resolve_storage(options, out_dir)
    study = load_study(options, storage_url)
    for params in options.enqueue:
        study.enqueue_trial(params, skip_if_exists=True)
    optuna.storages.fail_stale_trials(study)
    done = len(study.get_trials(deepcopy=False, states=FINISHED))
    remaining = None if options.n_trials is None else max(options.n_trials - done, 0)

    tracking.configure(mlflow_tracking_uri, experiment_name)
    previous_run = study.user_attrs.get("mlflow_run_id")
    with tracking.run_scope(run_id=previous_run, run_name=run_name, parent_run_id=parent_run_id,
                            tags={"optuna.study": options.study_name}) as run:
        study.set_user_attr("mlflow_run_id", run.info.run_id)
        if previous_run != run.info.run_id:  # params are write-once in MLflow
            mlflow.log_params({"n_trials": options.n_trials, "timeout": options.timeout,
                               "n_workers": options.n_workers, "pruner": options.pruner,
                               "seed": options.seed, "epochs": options.epochs,
                               "storage": tracking.redact_url(storage_url)})
            mlflow.log_dict(options.search_space.model_dump(mode="json"), "search_space.json")
        if remaining != 0:
            shares = trial_shares(remaining, options.n_workers)
            if options.n_workers == 1:
                run_worker(dataset_dir, split_path, stats_path, options, out_dir, storage_url,
                           remaining, 0, run.info.run_id)
            else:
                spec = {"dataset_dir": str(dataset_dir), "split_path": str(split_path),
                        "stats_path": str(stats_path), "out_dir": str(out_dir),
                        "options": options.model_dump(mode="json", exclude={"storage"}),
                        "parent_run_id": run.info.run_id}
                _spawn_workers(spec, storage_url, shares, out_dir, options.timeout)
        result = _collect(study, options, storage_url, out_dir, run.info.run_id)
        _log_summary(study, result)
    write_json(out_dir / "tune_result.json", result.model_dump(mode="json"))
    return result


def _collect(study: optuna.Study, options: TuneOptions, storage_url: str, out_dir: Path,
             run_id: str) -> TuneResult:
    trials = study.get_trials(deepcopy=False)
    states = {s.name: sum(t.state == s for t in trials) for s in TrialState
              if any(t.state == s for t in trials)}
    if not any(t.state == TrialState.COMPLETE for t in trials):
        raise TuneError(f"study {options.study_name!r}: no trial completed ({states})")
    best = study.best_trial
    trial_dir = Path(best.user_attrs["model_dir"])
    for name in ("model.keras", "model.json", "train_params.json"):
        with atomic_path(out_dir / name) as tmp:
            shutil.copyfile(trial_dir / name, tmp)
    return TuneResult(study_name=options.study_name, storage=tracking.redact_url(storage_url),
                      best_trial_number=best.number, best_value=float(best.value),
                      best_params=dict(best.params),
                      best_train_params=json.loads((trial_dir / "train_params.json")
                                                   .read_text()),
                      model_dir=str(ModelPaths(out_dir).root), trial_states=states,
                      mlflow_run_id=run_id)


def _log_summary(study: optuna.Study, result: TuneResult) -> None:
    log_study_summary(study, study.best_trial, result.best_value)
    mlflow.log_dict(result.model_dump(mode="json"), "tune_result.json")


def log_study_summary(study: optuna.Study, best: optuna.trial.FrozenTrial,
                      best_value: float) -> None:
    """The study's outcome on the active MLflow run (the parent): best params and value,
    trials per state, the best trial's run id, optimisation-history and importance plots."""
    states: dict[str, int] = {}
    for trial in study.get_trials(deepcopy=False):
        states[trial.state.name.lower()] = states.get(trial.state.name.lower(), 0) + 1
    mlflow.log_params({f"best.{k}": v for k, v in best.params.items()})
    mlflow.log_metrics({"best_val_miou": best_value, "best_trial": best.number,
                        **{f"trials_{k}": v for k, v in states.items()}})
    mlflow.set_tag("segpipe.best_trial_run_id", best.user_attrs.get("mlflow_run_id", ""))
    from optuna.visualization import matplotlib as optuna_plots

    from components.figures import close

    for name, plot in (("optimization_history", optuna_plots.plot_optimization_history),
                       ("param_importances", optuna_plots.plot_param_importances)):
        try:
            ax = plot(study)
            fig = ax.figure if hasattr(ax, "figure") else ax.flat[0].figure
            fig.set_size_inches(8, 5)
            fig.tight_layout()
            mlflow.log_figure(fig, f"{name}.png")
            close(fig)
        except Exception as err:  # importances need >= 2 complete trials with varied params
            log.info("no %s plot: %s", name, err)
