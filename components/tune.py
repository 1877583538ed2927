"""Hyper-parameter tuning: the Optuna study whose trials each train a model, its storage and
workers (one trial, its training, pruning and MLflow run, is components/tune_trial.py).

The pipeline prepares one study per run (``prepare_study``), then runs ``n_workers`` tune
workers side by side (``run_tune_worker``: Kubeflow ParallelFor tasks, on a cluster pods), all
sharing the study through its storage (SQLite on a laptop, PostgreSQL on a cluster), and
finally ``select_best_trial`` copies the study's best model out of the worker that trained it.
A search space with no more points than ``n_trials`` is searched point by point, each once
(``study_trials``, components/tune_grid.py), since Optuna's sampler may draw a point twice.
A trial that raises is recorded as failed and the study goes on; a diverging or unpromising
trial is pruned per epoch. Every trial is an MLflow run nested under the run the caller made
active (the pipeline's parent run), and keeps its model, so the best one is copied out
without retraining."""

from __future__ import annotations

import logging
import shutil
import time
import warnings
from datetime import datetime
from pathlib import Path
from typing import Any

import mlflow
import optuna
from optuna.trial import TrialState

from components import tracking
from components.atomic import atomic_dir
from components.dataset_paths import ModelPaths, PreparedDataset
from components.train_options import run_param_name
from components.tune_budget import set_deadline, study_deadline
from components.tune_grid import describe_point, space_points
from components.tune_options import TRIALS_DIR, TuneOptions
from components.tune_outcome import failure_causes, state_counts
from components.tune_space import SearchSpace, resolve_search_space

log = logging.getLogger(__name__)
# Heartbeats, stale-trial cleanup and the matplotlib plots are marked experimental.
warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
SEARCH_SPACE_FILE = "search_space.json"  # on the parent run: the space the trials searched
SPACE_ATTR = "segpipe.search_space"  # in the study: the same, for every worker
GRID_ATTR = "segpipe.grid_points"  # in the study: its space's points, each enqueued once


class TuneError(RuntimeError):
    """The study could not produce a model (e.g. every trial failed)."""


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


def open_study(options: TuneOptions, storage: str, study_name: str,
               worker: int = 0) -> optuna.Study:
    """The shared study, created on first use. Each worker seeds its sampler differently,
    else they would propose the same points."""
    return optuna.create_study(storage=_storage(storage), study_name=study_name,
                               sampler=optuna.samplers.TPESampler(seed=options.seed + worker),
                               pruner=_pruner(options), direction="maximize",
                               load_if_exists=True)


def study_search_space(study: optuna.Study, options: TuneOptions) -> SearchSpace:
    """The space every worker of ``study`` searches: resolved by the first worker, on its
    machine, and kept in the study, so later workers, a retried pod and a resumed run search
    the same one (Optuna refuses a categorical whose choices change within a study)."""
    if SPACE_ATTR not in study.user_attrs:
        space = resolve_search_space(options.search_space, options.train)
        study.set_user_attr(SPACE_ATTR, space.model_dump(mode="json"))
    return SearchSpace.model_validate(study.user_attrs[SPACE_ATTR])


def study_trials(study: optuna.Study, space: SearchSpace, options: TuneOptions) -> int:
    """How many trials the study runs: ``n_trials``, or the number of points of a space that
    has no more (components/tune_grid.py). Those points are enqueued once, by the first
    worker (a resumed study has them), each but those already tried or queued (a config's
    ``enqueue``), and one line says so when there are fewer than ``n_trials``."""
    points = space_points(space, options.n_trials)
    if points is None:
        return options.n_trials
    if GRID_ATTR not in study.user_attrs:
        queued = [t.system_attrs.get("fixed_params", t.params)
                  for t in study.get_trials(deepcopy=False)]
        for params in points:
            if params not in queued:
                study.enqueue_trial(params)
        study.set_user_attr(GRID_ATTR, len(points))
        if len(points) == 1 < options.n_trials:  # one trial asked for: nothing to say
            log.warning("the search space has one point (%s): one trial, not "
                        "tuning.n_trials=%d, which would train the same model again",
                        describe_point(points[0]), options.n_trials)
        elif len(points) < options.n_trials:
            log.warning("the search space has %d points, fewer than tuning.n_trials=%d: "
                        "each is tried once (%d trials), since more would train some model "
                        "again", len(points), options.n_trials, len(points))
    return len(points)


def prepare_study(options: TuneOptions, storage: str, study_name: str) -> optuna.Study:
    """Once per pipeline run, before the workers start: create the study, enqueue the
    known-good configs (once, not per worker), and re-queue the trials an earlier attempt
    of this run left RUNNING (its workers are dead: no worker of this attempt runs yet).
    A re-queued trial keeps its params and its folder, so it resumes from its last epoch
    checkpoint; the interrupted one is marked FAIL and its MLflow run KILLED."""
    study = open_study(options, storage, study_name)
    for params in options.enqueue:
        study.enqueue_trial(params, skip_if_exists=True)
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        study._storage.set_trial_state_values(trial._trial_id, TrialState.FAIL)
        run_id = trial.user_attrs.get("mlflow_run_id")
        if run_id:
            mlflow.MlflowClient().set_terminated(run_id, "KILLED")
        study.enqueue_trial(trial.params, user_attrs={
            "resumes_trial": trial.number, "trial_dir": trial.user_attrs.get("trial_dir", "")})
        log.warning("trial %d was interrupted; re-queued to resume from its last checkpoint",
                    trial.number)
    return study


def trial_shares(total: int, workers: int) -> list[int]:
    """Each worker's share of ``total`` trials; shares differ by at most 1."""
    return [total // workers + (1 if i < total % workers else 0) for i in range(workers)]


def run_tune_worker(dataset: PreparedDataset, options: TuneOptions, storage: str,
                    study_name: str, worker: int, out_dir: Path) -> dict[str, Any]:
    """Run worker ``worker``'s share of the study's trials (trials nest under the caller's
    active MLflow run), then keep only its best completed trial's model in
    ``out_dir/trials/<number>/`` (the select step reaches it there, from another pod when on a
    cluster). Returns what the worker did, for the artifact's metadata."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    # Decided here, on the machine that trains (a cluster's GPU node, not the laptop that
    # submitted the run), before any trial: a request for weights this machine cannot get
    # is one error, not a failed trial each.
    study = open_study(options, storage, study_name, worker)
    space = study_search_space(study, options)
    if mlflow.active_run() is not None:
        mlflow.log_dict(space.model_dump(mode="json"), SEARCH_SPACE_FILE)
    total = study_trials(study, space, options)
    # A resumed study (a re-run after a kill) only runs the trials it still lacks.
    share = trial_shares(max(total - _counted(study), 0), options.n_workers)[worker]
    # The clock starts when the first worker starts, not when the run opened the study: the
    # data steps (and, on a cluster, scheduling the workers' pods) are not tuning time.
    deadline = set_deadline(study, options.budget_minutes) if options.budget_minutes else None
    if share and not _budget_spent(deadline, worker):
        # Imported here: it trains (TensorFlow), and the steps that only open the study or
        # pick its best trial import this module too.
        from components.tune_trial import Objective

        objective = Objective(dataset, options, study_name, out_dir, deadline, space)
        # Optuna checks its timeout before each trial, counted from when optimize starts, so
        # it is taken from the study's wall-clock deadline here, after the seconds the
        # TensorFlow import and the objective took: no trial starts after the deadline.
        timeout = None if deadline is None else deadline - time.time()
        if not _budget_spent(deadline, worker):
            study.optimize(objective, n_trials=share, timeout=timeout, catch=(Exception,),
                           callbacks=[_stop_at(total)], gc_after_trial=True)
    trials_dir = out_dir / TRIALS_DIR
    mine = [t for t in study.get_trials(deepcopy=False)
            if t.state == TrialState.COMPLETE
            and ModelPaths(trials_dir / str(t.number)).keras_model.exists()]
    best = max(mine, key=lambda t: t.value, default=None)
    for path in trials_dir.glob("*") if trials_dir.exists() else []:
        if best is None or path.name != str(best.number):
            shutil.rmtree(path, ignore_errors=True)
    summary: dict[str, Any] = {"worker": worker, "completed_trials": len(mine)}
    if best is not None:
        summary.update(best_value=float(best.value), trial_number=best.number)
    return summary


def _counted(study: optuna.Study) -> int:
    """Finished trials towards the study's total; an interrupted trial that was re-queued
    does not count: the trial that resumes it does."""
    trials = study.get_trials(deepcopy=False)
    resumed = {t.user_attrs.get("resumes_trial") for t in trials}
    return sum(t.state in FINISHED and not (t.state == TrialState.FAIL and t.number in resumed)
               for t in trials)


def _budget_spent(deadline: float | None, worker: int) -> bool:
    if deadline is None or time.time() < deadline:
        return False
    log.info("worker %d: the tuning budget is spent; no trial starts", worker)
    return True


def _stop_at(total: int):
    """Stops the worker once the study holds ``total`` counted trials: guards the total when
    other workers (or a retried pod) share the study."""

    def callback(study: optuna.Study, _trial: optuna.trial.FrozenTrial) -> None:
        if _counted(study) >= total:
            study.stop()

    return callback


def select_best_trial(storage: str, study_name: str,
                      candidates: list[tuple[Path, dict[str, Any]]],
                      out_dir: Path) -> dict[str, Any]:
    """Copy the study's best trial's model, kept by the worker that ran it (``candidates``:
    each worker's folder and summary), into ``out_dir`` (ModelPaths layout), and log the
    study's outcome on the caller's active MLflow run."""
    study = optuna.load_study(study_name=study_name, storage=_storage(storage))
    ran = [(path, meta) for path, meta in candidates if meta.get("best_value") is not None]
    if not ran:
        states = state_counts(study)
        deadline = study_deadline(study)
        if deadline is not None and time.time() >= deadline and not states.get("complete"):
            spent = datetime.fromtimestamp(deadline).astimezone().isoformat(timespec="seconds")
            raise TuneError(f"study {study_name}: the tuning budget (tuning.budget_minutes) "
                            f"ran out at {spent} before any trial completed ({states}); a "
                            "resumed run keeps its first deadline: raise the budget, or "
                            "start over with --fresh")
        raise TuneError(f"study {study_name}: no worker completed a trial ({states}); "
                        f"{failure_causes(study)}")
    number = study.best_trial.number
    holders = [path for path, _ in ran if (path / TRIALS_DIR / str(number)).is_dir()]
    if holders:
        source, value = holders[0], float(study.best_value)
    else:
        # The study's best was finished by an attempt whose artifact is gone (a retried
        # worker pod): take the best trial the workers do hold.
        source, meta = max(ran, key=lambda c: c[1]["best_value"])
        number, value = int(meta["trial_number"]), float(meta["best_value"])
    with atomic_dir(out_dir) as tmp:
        for item in (source / TRIALS_DIR / str(number)).iterdir():
            if item.is_file():
                shutil.copy2(item, tmp / item.name)
    trials = study.get_trials(deepcopy=False)
    best = next(t for t in trials if t.number == number)
    log_study_summary(study, best, value)
    return {"best_value": value, "trial_number": number,
            "n_trials": sum(t.state.is_finished() for t in trials), "study_name": study_name}


def log_study_summary(study: optuna.Study, best: optuna.trial.FrozenTrial,
                      best_value: float) -> None:
    """The study's outcome on the active MLflow run (the parent): best params and value,
    trials per state, the best trial's run id, optimisation-history and importance plots."""
    with tracking.ensure_run("tune"):
        # Named as the trial runs name them (model.depth), so one column compares both.
        mlflow.log_params({f"best.{run_param_name(k)}": v for k, v in best.params.items()})
        mlflow.log_metrics({"best_val_miou": best_value, "best_trial": best.number,
                            **{f"trials_{k}": v for k, v in state_counts(study).items()}})
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
