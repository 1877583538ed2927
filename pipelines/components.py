"""Kubeflow components: one thin wrapper per pipeline step.

Each wrapper is a lightweight Python component whose body imports and calls the step's plain
function (components/ or pipelines/steps.py): the logic lives, and is tested, outside
Kubeflow. Lightweight (not containerized) so that Kubeflow's local SubprocessRunner runs the
same definition with the current interpreter; the base image already holds segpipe, so no
``packages_to_install`` and no kfp install at start-up (``install_kfp_package=False``).
Imports sit inside the bodies because Kubeflow ships only the function's source.
"""

from typing import NamedTuple

from kfp import dsl
from kfp.dsl import HTML, Artifact, ClassificationMetrics, Dataset, Input, Metrics, Model, Output

from pipelines.images import COMPONENT_GPU_IMAGE, COMPONENT_IMAGE

_cpu_component = dsl.component(base_image=COMPONENT_IMAGE, install_kfp_package=False)
_gpu_component = dsl.component(base_image=COMPONENT_GPU_IMAGE, install_kfp_package=False)


@_cpu_component
def ingest(source: str, classes: str, ingest_options: dict, scenes: Output[Dataset]):
    """Read the source's image/mask scenes into class-id GeoTIFFs plus classes.json."""
    from pathlib import Path

    from components.ingest import ingest_source
    from pipelines.params import ingest_options_from_params

    options = ingest_options_from_params(classes, ingest_options)
    class_map = ingest_source(source, Path(scenes.path), options)
    scenes.metadata["classes"] = class_map.names


@_cpu_component
def tile(scenes: Input[Dataset], patch_size: int, overlap: float, scale: float,
         min_valid_fraction: float, tiles: Output[Dataset]):
    """Cut scenes into georeferenced patches with a manifest."""
    from pathlib import Path

    from components.tile import tile_scenes
    from pipelines.params import tile_options_from_params

    options = tile_options_from_params(patch_size, overlap, scale, min_valid_fraction)
    manifest = tile_scenes(Path(scenes.path), Path(tiles.path), options)
    tiles.metadata["tiles"] = len(manifest.tiles)


@_cpu_component
def split(tiles: Input[Dataset], strategy: str, ratios: list, seed: int, block_size: int,
          drop_overlaps: bool, split: Output[Dataset]):
    """Assign tiles to train/val/test without leakage across scenes or blocks."""
    from pathlib import Path

    from components.split import split_tiles
    from pipelines.params import split_options_from_params

    options = split_options_from_params(strategy, ratios, seed, block_size, drop_overlaps)
    manifest = split_tiles(Path(tiles.path), Path(split.path), options)
    for name, ids in manifest.splits.items():
        split.metadata[name] = len(ids)


@_cpu_component
def normalize(tiles: Input[Dataset], split: Input[Dataset], stats: Output[Artifact]):
    """Fit per-band statistics on the training tiles only."""
    from pathlib import Path

    from components.normalize import fit_normalization

    norm = fit_normalization(Path(tiles.path), Path(split.path), Path(stats.path))
    stats.metadata["mean"] = norm.mean
    stats.metadata["std"] = norm.std


@_cpu_component
def start_run(model_name: str, mlflow_tracking_uri: str, mlflow_experiment: str,
              mlflow_artifact_location: str, optuna_storage: str, kfp_run_id: str,
              kfp_run_name: str, run_context: Output[Artifact]
              ) -> NamedTuple("StartedRun", [("mlflow_run_id", str), ("kfp_run_name", str)]):
    """Open the MLflow parent run for this pipeline run and name its Optuna study."""
    from collections import namedtuple

    from pipelines.tracking import start_pipeline_run, study_name_for

    context = start_pipeline_run(
        tracking_uri=mlflow_tracking_uri, experiment=mlflow_experiment,
        artifact_location=mlflow_artifact_location, optuna_storage=optuna_storage,
        study_name=study_name_for(model_name, kfp_run_name), kfp_run_id=kfp_run_id,
        kfp_run_name=kfp_run_name)
    context.save(run_context.path)
    run_context.metadata.update(context.model_dump(exclude={"optuna_storage"}))
    started = namedtuple("StartedRun", ["mlflow_run_id", "kfp_run_name"])
    return started(context.parent_run_id, kfp_run_name)


@_gpu_component
def tune_worker(worker: int, workers: list, tiles: Input[Dataset], split: Input[Dataset],
                stats: Input[Artifact], run_context: Input[Artifact], search_space: dict,
                train_settings: dict, n_trials: int, timeout_s: float, epochs: int, seed: int,
                pruner: str, model: Output[Model]):
    """One Optuna worker: runs trials of the shared study, keeps its best trial's model."""
    from pathlib import Path

    from pipelines.steps import TuneWorkerSpec, run_tune_worker

    spec = TuneWorkerSpec(worker=worker, n_workers=len(workers), n_trials=n_trials,
                          timeout_s=timeout_s or None, epochs=epochs, seed=seed, pruner=pruner,
                          search_space=search_space, train_settings=train_settings)
    best = run_tune_worker(Path(tiles.path), Path(split.path), Path(stats.path),
                           Path(run_context.path), spec, Path(model.path))
    model.metadata.update(best)


@_cpu_component
def select_best(models: Input[list[Model]], run_context: Input[Artifact],
                best_model: Output[Model], tuning: Output[Metrics]):
    """Pick the study's best trial among the workers' models."""
    from pathlib import Path

    from pipelines.steps import select_best_model

    candidates = [(Path(m.path), dict(m.metadata)) for m in models]
    best = select_best_model(candidates, Path(run_context.path), Path(best_model.path))
    best_model.metadata.update(best)
    for key in ("best_value", "trial_number", "n_trials"):
        if isinstance(best.get(key), int | float):
            tuning.log_metric(key, best[key])


@_cpu_component
def evaluate(model: Input[Model], tiles: Input[Dataset], split: Input[Dataset],
             stats: Input[Artifact], run_context: Input[Artifact], evaluation: Output[Artifact],
             metrics: Output[Metrics], confusion: Output[ClassificationMetrics],
             report: Output[HTML]) -> float:
    """Score the selected model on the untouched test split."""
    from pathlib import Path

    from pipelines.steps import run_evaluation

    summary = run_evaluation(Path(model.path), Path(tiles.path), Path(split.path),
                             Path(stats.path), Path(run_context.path), Path(evaluation.path),
                             Path(report.path))
    for key, value in summary.scalars.items():
        metrics.log_metric(key, value)
    confusion.log_confusion_matrix(summary.class_names, summary.confusion_matrix)
    return summary.scalars["test_miou"]


@_cpu_component
def register(model: Input[Model], tiles: Input[Dataset], split: Input[Dataset],
             stats: Input[Artifact], evaluation: Input[Artifact], run_context: Input[Artifact],
             model_name: str
             ) -> NamedTuple("Registration", [("model_version", str), ("champion_version", str)]):
    """Log the pyfunc model, register it as challenger, promote to champion if it wins."""
    from collections import namedtuple
    from pathlib import Path

    from pipelines.steps import run_registration

    version, champion = run_registration(
        Path(model.path), Path(tiles.path), Path(split.path), Path(stats.path),
        Path(evaluation.path), Path(run_context.path), model_name)
    registration = namedtuple("Registration", ["model_version", "champion_version"])
    return registration(version, champion)
