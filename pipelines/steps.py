"""The pipeline-level glue the Kubeflow wrappers call where a step is more than one component
call: resuming the MLflow parent run, splitting the Optuna budget across workers, picking the
study's best trial among the workers' models, and turning evaluation files into Kubeflow
metrics. Plain functions over local paths, so they run and are tested without Kubeflow."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

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

    @field_validator("search_space", "train_settings")
    @classmethod
    def _integers_back(cls, value: dict[str, Any]) -> dict[str, Any]:
        # Kubeflow carries dict parameters as protobuf Structs, whose numbers are all
        # doubles: depth 3 arrives as 3.0, which a categorical choice would keep.
        return restore_integers(value)


def restore_integers(value: Any) -> Any:
    """Integral floats inside dicts and lists back to ints (bools and strings untouched)."""
    if isinstance(value, dict):
        return {k: restore_integers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [restore_integers(v) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def run_tune_worker(dataset_dir: Path, split_path: Path, stats_path: Path, context_path: Path,
                    spec: TuneWorkerSpec, out_dir: Path) -> dict[str, Any]:
    """Run this worker's share of the shared study's trials, then keep only its best
    completed trial's model in ``out_dir/trials/<number>/`` (the worker's Kubeflow artifact,
    so the select step can reach it from another pod). Returns the artifact's metadata."""
    import optuna

    from components.tune import TuneOptions, run_worker, trial_shares

    context = RunContext.load(context_path)
    share = trial_shares(spec.n_trials, spec.n_workers)[spec.worker]
    fields: dict[str, Any] = {"n_trials": spec.n_trials, "timeout": spec.timeout_s,
                              "n_workers": spec.n_workers, "study_name": context.study_name,
                              "seed": spec.seed, "pruner": spec.pruner, "epochs": spec.epochs}
    if spec.search_space:
        fields["search_space"] = spec.search_space
    if spec.train_settings:
        fields["base_params"] = spec.train_settings
    options = TuneOptions(**fields)
    out_dir.mkdir(parents=True, exist_ok=True)
    if share:
        with resume_parent_run(context):
            run_worker(dataset_dir, split_path, stats_path, options, out_dir,
                       context.optuna_storage, share, spec.worker, context.parent_run_id)
    study = optuna.load_study(study_name=context.study_name, storage=context.optuna_storage)
    trials_dir = out_dir / "trials"
    mine = [t for t in study.get_trials(deepcopy=False)
            if t.state == optuna.trial.TrialState.COMPLETE
            and (trials_dir / str(t.number) / "model.keras").exists()]
    best = max(mine, key=lambda t: t.value, default=None)
    for path in trials_dir.glob("*") if trials_dir.exists() else []:
        if best is None or path.name != str(best.number):
            shutil.rmtree(path, ignore_errors=True)
    meta: dict[str, Any] = {"worker": spec.worker, "completed_trials": len(mine)}
    if best is not None:
        meta.update(best_value=float(best.value), trial_number=best.number)
    return meta


def select_best_model(candidates: list[tuple[Path, dict[str, Any]]], context_path: Path,
                      out_dir: Path) -> dict[str, Any]:
    """Copy the study's best trial's model (kept by the worker that ran it) into ``out_dir``
    in the ModelPaths layout."""
    import optuna

    from components.tune import log_study_summary

    context = RunContext.load(context_path)
    study = optuna.load_study(study_name=context.study_name, storage=context.optuna_storage)
    ran = [(path, meta) for path, meta in candidates if meta.get("best_value") is not None]
    if not ran:
        raise ValueError(f"study {context.study_name}: no worker completed a trial")
    number = study.best_trial.number
    holders = [path for path, _ in ran if (path / "trials" / str(number)).is_dir()]
    if holders:
        source, value = holders[0], float(study.best_value)
    else:
        # The study's best was finished by an attempt whose artifact is gone (a retried
        # worker pod): take the best trial the workers do hold.
        source, meta = max(ran, key=lambda c: c[1]["best_value"])
        number, value = int(meta["trial_number"]), float(meta["best_value"])
    with atomic_dir(out_dir) as tmp:
        for item in (source / "trials" / str(number)).iterdir():
            if item.is_file():
                shutil.copy2(item, tmp / item.name)
    trials = study.get_trials(deepcopy=False)
    best = next(t for t in trials if t.number == number)
    with resume_parent_run(context):
        log_study_summary(study, best, value)
    return {"best_value": value, "trial_number": number,
            "n_trials": sum(t.state.is_finished() for t in trials),
            "study_name": context.study_name}


class EvaluationSummary(BaseModel):
    scalars: dict[str, float]
    class_names: list[str]
    confusion_matrix: list[list[int]]


def run_evaluation(model_dir: Path, dataset_dir: Path, split_path: Path, stats_path: Path,
                   context_path: Path, out_dir: Path, report_path: Path) -> EvaluationSummary:
    """Evaluate on the test split, logging into the parent run; summarise for Kubeflow."""
    from components.evaluate import evaluate_model

    context = RunContext.load(context_path)
    with resume_parent_run(context):
        result = evaluate_model(model_dir, dataset_dir, split_path, stats_path, out_dir)
    shutil.copyfile(result.report_html, report_path)
    return summarize_evaluation(result)


def summarize_evaluation(result) -> EvaluationSummary:
    """Scalars prefixed with the split (``test_miou``...), class names, confusion matrix."""
    scalars = {f"{result.split}_{name}": float(value) for name, value in result.metrics.items()}
    return EvaluationSummary(scalars=scalars, class_names=list(result.class_names),
                             confusion_matrix=result.confusion_matrix)


def dataset_view(tiles_dir: Path, split_path: Path, stats_path: Path, out: Path) -> Path:
    """One DatasetPaths folder over the separate step artifacts (symlinks, nothing copied),
    for steps that expect split.json and stats.json beside the tiles."""
    out.mkdir(parents=True, exist_ok=True)
    links = {name: tiles_dir / name for name in ("classes.json", "tiles", "tiles.json")}
    links.update({"split.json": split_path, "stats.json": stats_path})
    for name, target in links.items():
        link = out / name
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(target.resolve())
    return out


def run_registration(model_dir: Path, tiles_dir: Path, split_path: Path, stats_path: Path,
                     evaluation_dir: Path, context_path: Path,
                     model_name: str) -> tuple[str, str]:
    """Log and register the model under the parent run, then apply the champion gate.
    Returns (new version, champion version)."""
    from components.register import RegisterOptions, register_model

    context = RunContext.load(context_path)
    with tempfile.TemporaryDirectory() as scratch, resume_parent_run(context):
        dataset_dir = dataset_view(tiles_dir, split_path, stats_path, Path(scratch) / "dataset")
        result = register_model(model_dir, dataset_dir, stats_path,
                                evaluation_dir / "metrics.json",
                                RegisterOptions(model_name=model_name))
    return str(result.version), str(result.champion_version)
