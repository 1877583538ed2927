"""A pipeline run as MLflow records it: the parent run (found by the Kubeflow run's name or
id), its trials (runs nested under it) and their per-epoch curves.

Tag names are the ones components.parent_run, components.tune_trial, components.register and
components.champion_gate set; the pipeline-state tags are written by the runner's failure
reporting (issue #14) and are read only when present."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mlflow import MlflowClient

from components.champion_gate import TAG_DECISION
from components.parent_run import (
    ERROR_TAG,
    FAILED_STEP_TAG,
    KFP_RUN_ID_TAG,
    KFP_RUN_NAME_TAG,
    STATE_TAG,
)
from components.register import TAG_REGISTERED_VERSION as REGISTERED_VERSION_TAG

PARENT_TAG = "mlflow.parentRunId"
TRIAL_TAG = "optuna.trial"
TRIAL_STATE_TAG = "segpipe.trial_state"
TEST_MIOU = "test_miou"
VAL_MIOU = "val_miou"
CURVES = (VAL_MIOU, "train_loss", "val_loss")
#: Trials read per refresh; a study is a few hundred at most.
MAX_TRIALS = 1000


@dataclass(frozen=True)
class ParentRun:
    run_id: str
    experiment_id: str
    status: str  # MLflow's: RUNNING, FINISHED, FAILED, KILLED
    state: str | None  # the pipeline's own, when the runner sets it
    error: str | None
    failed_step: str | None
    test_miou: float | None
    decision: str | None
    registered_version: str | None


@dataclass(frozen=True)
class Trial:
    run_id: str
    number: int
    state: str  # COMPLETE, PRUNED, FAIL from the tune step; else MLflow's run status
    finished: bool
    params: dict[str, str] = field(default_factory=dict)
    error: str | None = None


def _escaped(value: str) -> str:
    return value.replace("'", "\\'")


def find_parent(client: MlflowClient, experiment: str, *, kfp_run_name: str | None = None,
                kfp_run_id: str | None = None) -> ParentRun | None:
    """The parent run of a pipeline run (by the Kubeflow run's name, else its id), None
    while the pipeline has not created it yet."""
    found = client.get_experiment_by_name(experiment)
    if found is None:
        return None
    tag, value = ((KFP_RUN_NAME_TAG, kfp_run_name) if kfp_run_name
                  else (KFP_RUN_ID_TAG, kfp_run_id))
    if not value:
        return None
    runs = client.search_runs([found.experiment_id], f"tags.`{tag}` = '{_escaped(value)}'",
                              max_results=1, order_by=["attributes.start_time DESC"])
    return parent_run(runs[0]) if runs else None


def parent_run(run: Any) -> ParentRun:
    tags, metrics = run.data.tags, run.data.metrics
    return ParentRun(run_id=run.info.run_id, experiment_id=run.info.experiment_id,
                     status=run.info.status, state=tags.get(STATE_TAG),
                     error=tags.get(ERROR_TAG), failed_step=tags.get(FAILED_STEP_TAG),
                     test_miou=metrics.get(TEST_MIOU), decision=tags.get(TAG_DECISION),
                     registered_version=tags.get(REGISTERED_VERSION_TAG))


def trials(client: MlflowClient, parent: ParentRun) -> list[Trial]:
    """The study's trials, by number."""
    runs = client.search_runs([parent.experiment_id],
                              f"tags.`{PARENT_TAG}` = '{_escaped(parent.run_id)}'",
                              max_results=MAX_TRIALS)
    found = []
    for run in runs:
        tags = run.data.tags
        if TRIAL_TAG not in tags:
            continue  # another child (none today), not a trial
        state = tags.get(TRIAL_STATE_TAG) or run.info.status
        found.append(Trial(run_id=run.info.run_id, number=int(tags[TRIAL_TAG]), state=state,
                           finished=run.info.status != "RUNNING", params=dict(run.data.params),
                           error=tags.get(ERROR_TAG)))
    return sorted(found, key=lambda t: t.number)


@dataclass(frozen=True)
class CurvePoint:
    trial: int
    metric: str
    epoch: int
    value: float


def trial_curves(client: MlflowClient, trial: Trial,
                 cache: dict[str, list[CurvePoint]]) -> list[CurvePoint]:
    """A trial's per-epoch metrics; a finished trial's are read once and kept in
    ``cache`` (by run id), a running one's re-read on every call."""
    if trial.run_id in cache:
        return cache[trial.run_id]
    points = [CurvePoint(trial.number, key, int(m.step), float(m.value))
              for key in CURVES for m in client.get_metric_history(trial.run_id, key)]
    points.sort(key=lambda p: (p.metric, p.epoch))
    if trial.finished:
        cache[trial.run_id] = points
    return points


@dataclass(frozen=True)
class BestTrial:
    number: int
    val_miou: float
    epoch: int


def best_trial(points: list[CurvePoint], excluded: set[int] = frozenset()) -> BestTrial | None:
    """The highest validation mIoU any epoch of any trial reached so far (trials in
    ``excluded``, e.g. failed ones, left out)."""
    scores = [p for p in points if p.metric == VAL_MIOU and p.trial not in excluded]
    if not scores:
        return None
    best = max(scores, key=lambda p: p.value)
    return BestTrial(best.trial, best.value, best.epoch)
