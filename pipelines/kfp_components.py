"""Kubeflow components: one thin wrapper per pipeline step.

Each wrapper is a lightweight Python component whose body validates its step's options (a
config section, passed as one dict parameter) and calls the step's plain function in
components/: the logic lives, and is tested, outside Kubeflow. Lightweight (not
containerized) so that Kubeflow's local SubprocessRunner runs the same definition with the
current interpreter; the base image already holds segpipe, so no ``packages_to_install`` and
no kfp install at start-up (``install_kfp_package=False``). Imports sit inside the bodies
because Kubeflow ships only the function's source; they never import this module, whose
kfp SDK imports a task's runtime does not have.
"""

from kfp import dsl
from kfp.dsl import (
    HTML,
    Artifact,
    ClassificationMetrics,
    Dataset,
    Input,
    Markdown,
    Metrics,
    Model,
    Output,
)

from pipelines.images import IMAGE_REGISTRY, ComponentImages, package_version

#: The images the components are decorated with; pipelines.runner retargets them to the
#: registry and tag asked for when it writes the compiled spec (pipelines/images.py).
DECORATED_IMAGES = ComponentImages(IMAGE_REGISTRY, package_version())
_cpu_component = dsl.component(base_image=DECORATED_IMAGES.cpu, install_kfp_package=False)
_gpu_component = dsl.component(base_image=DECORATED_IMAGES.gpu, install_kfp_package=False)


@_cpu_component
def ingest(source: str, options: dict, output_format: int, source_fingerprint: str,
           scenes: Output[Dataset]):
    """Read the source's image/mask scenes into class-id GeoTIFFs plus classes.json
    (``output_format``: components/output_formats.py, and ``source_fingerprint``: what the
    source held when the run was submitted, components/source_fingerprint.py; both parts of
    the cache key)."""
    from pathlib import Path

    from components.ingest import ingest_source
    from components.ingest_options import IngestOptions
    from pipelines.step_options import step_options

    class_map = ingest_source(source, Path(scenes.path), step_options(IngestOptions, options))
    scenes.metadata["classes"] = class_map.names
    scenes.metadata["output_format"] = output_format
    scenes.metadata["source_fingerprint"] = source_fingerprint


@_cpu_component
def tile(scenes: Input[Dataset], options: dict, output_format: int, tiles: Output[Dataset]):
    """Cut scenes into georeferenced patches with a manifest."""
    from pathlib import Path

    from components.tile import TileOptions, tile_scenes
    from pipelines.step_options import step_options

    manifest = tile_scenes(Path(scenes.path), Path(tiles.path), step_options(TileOptions, options))
    tiles.metadata["tiles"] = len(manifest.tiles)
    tiles.metadata["output_format"] = output_format


@_cpu_component
def split(tiles: Input[Dataset], options: dict, output_format: int, split: Output[Dataset]):
    """Assign tiles to train/val/test without leakage across scenes or blocks."""
    from pathlib import Path

    from components.split import SplitOptions, split_for_training
    from pipelines.step_options import step_options

    manifest = split_for_training(Path(tiles.path), Path(split.path),
                                  step_options(SplitOptions, options))
    for name, ids in manifest.splits.items():
        split.metadata[name] = len(ids)
    split.metadata["output_format"] = output_format


@_cpu_component
def normalize(tiles: Input[Dataset], split: Input[Dataset], output_format: int,
              stats: Output[Artifact]):
    """Fit per-band statistics on the training tiles only."""
    from pathlib import Path

    from components.normalize import fit_normalization

    norm = fit_normalization(Path(tiles.path), Path(split.path), Path(stats.path))
    stats.metadata["mean"] = norm.mean
    stats.metadata["std"] = norm.std
    stats.metadata["output_format"] = output_format


@_cpu_component
def start_run(source: str, ingest: dict, tile: dict, split: dict, tuning: dict, registry: dict,
              tracking: dict, kfp_run_id: str, kfp_run_name: str,
              run_context: Output[Artifact]) -> list:
    """Open (or resume) the MLflow parent run, record the run's config on it, and open the
    Optuna study; the output lists the tune workers to fan out to."""
    from components.ingest_options import IngestOptions
    from components.pipeline_run import open_pipeline_run
    from components.register import RegisterOptions
    from components.split import SplitOptions
    from components.tile import TileOptions
    from components.tracking import TrackingOptions
    from components.tune_options import TuneOptions
    from pipelines.step_options import step_options

    options = step_options(TuneOptions, tuning)
    context = open_pipeline_run(
        source, step_options(IngestOptions, ingest), step_options(TileOptions, tile),
        step_options(SplitOptions, split), options, step_options(RegisterOptions, registry),
        step_options(TrackingOptions, tracking), kfp_run_id=kfp_run_id,
        kfp_run_name=kfp_run_name)
    context.save(run_context.path)
    shown = context.shareable()
    shown.pop("optuna_storage")
    run_context.metadata.update(shown)
    return list(range(options.n_workers))


@_cpu_component
def finish_run(tracking: dict, kfp_run_id: str, status: dsl.PipelineTaskFinalStatus):
    """After every other task, whatever happened: close the parent run as FINISHED, or as
    FAILED with the error, ending the trial runs a failure left open."""
    from components.parent_run import finish_pipeline_run
    from components.tracking import TrackingOptions
    from pipelines.step_options import step_options

    succeeded = status.state == "SUCCEEDED"
    finish_pipeline_run(step_options(TrackingOptions, tracking), kfp_run_id=kfp_run_id,
                        succeeded=succeeded, error="" if succeeded else status.error_message)


@_gpu_component
def tune_worker(worker: int, tiles: Input[Dataset], split: Input[Dataset],
                stats: Input[Artifact], run_context: Input[Artifact], tuning: dict,
                model: Output[Model]):
    """One Optuna worker: runs its share of the shared study, keeps its best trial's model."""
    from pathlib import Path

    from components.dataset_paths import PreparedDataset
    from components.parent_run import RunContext, resume_parent_run
    from components.tune import run_tune_worker
    from components.tune_options import TuneOptions
    from pipelines.step_options import step_options

    context = RunContext.load(run_context.path)
    dataset = PreparedDataset(tiles.path, split=split.path, stats=stats.path)
    with resume_parent_run(context):
        summary = run_tune_worker(dataset, step_options(TuneOptions, tuning),
                                  context.optuna_storage, context.study_name, worker,
                                  Path(model.path))
    model.metadata.update(summary)


@_cpu_component
def select_best(models: Input[list[Model]], run_context: Input[Artifact],
                best_model: Output[Model], tuning: Output[Metrics]):
    """Pick the study's best trial among the workers' models."""
    from pathlib import Path

    from components.parent_run import RunContext, resume_parent_run
    from components.tune import select_best_trial

    context = RunContext.load(run_context.path)
    candidates = [(Path(m.path), dict(m.metadata)) for m in models]
    with resume_parent_run(context):
        best = select_best_trial(context.optuna_storage, context.study_name, candidates,
                                 Path(best_model.path))
    best_model.metadata.update(best)
    for key in ("best_value", "trial_number", "n_trials"):
        tuning.log_metric(key, best[key])


@_cpu_component
def evaluate(model: Input[Model], scenes: Input[Dataset], tiles: Input[Dataset],
             split: Input[Dataset], stats: Input[Artifact], run_context: Input[Artifact],
             registry: dict, evaluation: Output[Artifact], metrics: Output[Metrics],
             confusion: Output[ClassificationMetrics], report: Output[HTML],
             summary: Output[Markdown]) -> float:
    """Score the selected model on the untouched test split: whole scenes as served (the
    registry section's serving options), and tiles for comparison."""
    import shutil
    from pathlib import Path

    from components.dataset_paths import DatasetPaths, PreparedDataset
    from components.evaluate import evaluate_model
    from components.evaluate_options import EvaluateOptions
    from components.evaluation_report import markdown_report
    from components.parent_run import RunContext, resume_parent_run
    from components.register import RegisterOptions
    from pipelines.step_options import step_options

    dataset = PreparedDataset(tiles.path, split=split.path, stats=stats.path,
                              scenes=DatasetPaths(scenes.path).scenes_dir)
    options = step_options(RegisterOptions, registry)
    scoring = EvaluateOptions()  # the sizes segpipe evaluate uses by default
    with resume_parent_run(RunContext.load(run_context.path)):
        result = evaluate_model(Path(model.path), dataset, Path(evaluation.path),
                                registry=options, batch_size=scoring.batch_size,
                                overlay_tiles=scoring.overlay_tiles)
    shutil.copyfile(result.report_html, report.path)
    Path(summary.path).write_text(markdown_report(result, images_inline=True))
    for key, value in result.metrics.items():
        metrics.log_metric(f"{result.split}_{key}", value)
    confusion.log_confusion_matrix(result.class_names, result.confusion_matrix)
    return result.metrics["miou"]


@_cpu_component
def register(model: Input[Model], scenes: Input[Dataset], tiles: Input[Dataset],
             split: Input[Dataset], stats: Input[Artifact], evaluation: Input[Artifact],
             run_context: Input[Artifact], registry: dict):
    """Log the pyfunc model, register it as challenger, promote to champion if it wins."""
    from pathlib import Path

    from components.dataset_paths import DatasetPaths, PreparedDataset
    from components.evaluation_scores import EvaluationResult
    from components.parent_run import RunContext, resume_parent_run
    from components.register import RegisterOptions, register_model
    from pipelines.step_options import step_options

    context = RunContext.load(run_context.path)
    # The scenes: a champion scored on another split is re-scored on this one's scenes.
    dataset = PreparedDataset(tiles.path, split=split.path, stats=stats.path,
                              scenes=DatasetPaths(scenes.path).scenes_dir)
    scored = EvaluationResult.model_validate_json((Path(evaluation.path) / "metrics.json")
                                                  .read_bytes())
    with resume_parent_run(context):
        register_model(Path(model.path), dataset, scored, step_options(RegisterOptions, registry))
