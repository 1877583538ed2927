"""The pipeline-level glue the Kubeflow wrappers call where a step is more than one component
call: resuming the MLflow parent run, splitting the Optuna budget across workers, picking the
study's best trial among the workers' models, and turning evaluation files into Kubeflow
metrics. Plain functions over local paths, so they run and are tested without Kubeflow."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from components.artifacts import ArtifactError, load_json
from components.atomic import atomic_dir
from pipelines.tracking import RunContext, resume_parent_run


class TuneWorkerSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    worker: int = Field(ge=0)
    n_workers: int = Field(gt=0)
    n_trials: int = Field(gt=0, description="trials of the whole study")
    timeout_s: float | None = None
    epochs: int = Field(gt=0)
    seed: int = 0
    pruner: str = "median"
    search_space: dict[str, Any] = {}
    train_settings: dict[str, Any] = {}


def trials_for_worker(n_trials: int, n_workers: int, worker: int) -> int:
    """This worker's share of the study's trials; shares differ by at most one."""
    return n_trials // n_workers + (1 if worker < n_trials % n_workers else 0)


def run_tune_worker(dataset_dir: Path, split_path: Path, stats_path: Path, context_path: Path,
                    spec: TuneWorkerSpec, out_dir: Path) -> dict[str, Any]:
    """Run this worker's trials in the shared study; its best trial's model goes to
    ``out_dir``. Returns the metadata ``select_best_model`` compares."""
    from components.tune import TuneOptions, tune_model

    context = RunContext.load(context_path)
    n_trials = trials_for_worker(spec.n_trials, spec.n_workers, spec.worker)
    if n_trials == 0:
        out_dir.mkdir(parents=True, exist_ok=True)
        return {"worker": spec.worker, "trials": 0}
    fields = {"n_trials": n_trials, "timeout": spec.timeout_s, "n_workers": 1,
              "storage": context.optuna_storage, "study_name": context.study_name,
              "seed": spec.seed + spec.worker, "pruner": spec.pruner, "epochs": spec.epochs}
    if spec.search_space:
        fields["search_space"] = spec.search_space
    options = TuneOptions(**fields)
    with resume_parent_run(context):
        result = tune_model(dataset_dir, split_path, stats_path, options, out_dir)
    return {"worker": spec.worker, "trials": n_trials, "best_value": result.best_value,
            "trial_number": result.best_trial_number}


def select_best_model(candidates: list[tuple[Path, dict[str, Any]]], context_path: Path,
                      out_dir: Path) -> dict[str, Any]:
    """Copy the model of the study's best trial (each worker kept its own best) to
    ``out_dir``; ties with the study broken by the workers' reported values."""
    import optuna

    context = RunContext.load(context_path)
    study = optuna.load_study(study_name=context.study_name, storage=context.optuna_storage)
    ran = [(path, meta) for path, meta in candidates if meta.get("best_value") is not None]
    if not ran:
        raise ValueError(f"study {context.study_name}: no worker finished a trial")
    best_number = study.best_trial.number
    by_trial = [c for c in ran if c[1].get("trial_number") == best_number]
    maximize = study.direction == optuna.study.StudyDirection.MAXIMIZE
    path, meta = by_trial[0] if by_trial else (max if maximize else min)(
        ran, key=lambda c: c[1]["best_value"])
    with atomic_dir(out_dir) as tmp:
        shutil.copytree(path, tmp, dirs_exist_ok=True)
    finished = [t for t in study.trials if t.state.is_finished()]
    return {**meta, "n_trials": len(finished), "study_name": context.study_name}


class EvaluationSummary(BaseModel):
    scalars: dict[str, float]
    class_names: list[str]
    confusion_matrix: list[list[int]]


def run_evaluation(model_dir: Path, dataset_dir: Path, split_path: Path, stats_path: Path,
                   context_path: Path, out_dir: Path, report_path: Path) -> EvaluationSummary:
    """Evaluate on the test split under the parent run; summarise for Kubeflow's UI."""
    from components.evaluate import evaluate_model

    context = RunContext.load(context_path)
    with resume_parent_run(context):
        evaluate_model(model_dir, dataset_dir, split_path, stats_path, out_dir)
    report = out_dir / "report.html"
    if report.exists():
        shutil.copyfile(report, report_path)
    else:
        report_path.write_text("<html><body>no report</body></html>")
    return summarize_metrics(out_dir / "metrics.json")


def summarize_metrics(metrics_path: Path) -> EvaluationSummary:
    metrics = load_json(metrics_path)
    try:
        names = list(metrics["class_names"])
        scalars = {"test_miou": float(metrics["miou"]),
                   "test_pixel_accuracy": float(metrics["pixel_accuracy"])}
        for name, iou in zip(names, metrics["per_class"]["iou"], strict=True):
            if iou is not None:
                scalars[f"test_iou_{name}"] = float(iou)
        matrix = [[int(v) for v in row] for row in metrics["confusion_matrix"]]
    except (KeyError, TypeError, ValueError) as err:
        raise ArtifactError(f"{metrics_path}: unexpected metrics layout: {err!r}") from err
    return EvaluationSummary(scalars=scalars, class_names=names, confusion_matrix=matrix)


def run_registration(model_dir: Path, dataset_dir: Path, stats_path: Path, evaluation_dir: Path,
                     context_path: Path, model_name: str) -> tuple[str, str]:
    """Register under the parent run; returns (new version, champion version)."""
    from components.register import RegisterOptions, register_model

    context = RunContext.load(context_path)
    with resume_parent_run(context):
        result = register_model(model_dir, dataset_dir, stats_path,
                                evaluation_dir / "metrics.json",
                                RegisterOptions(model_name=model_name))
    return str(result.version), str(result.champion_version)
