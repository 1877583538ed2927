"""Score a logged (registered) model on another labelled dataset: `segpipe evaluate`.

The data is a prepared dataset folder (``segpipe prepare``), scored on one of its splits, or
a source of scenes and labels (folder, archive, ``s3://`` prefix), ingested and tiled the
model's way (its window size, each scene resampled as its serving code resamples it) into
a hidden scratch folder beside the output (on its disk, not /tmp; removed afterwards) and
scored whole: every scene goes to one split, ``test``. Either way the model normalizes with
its own statistics from its serving config; the dataset's own (stats.json) are never used,
and a source gets none fitted. Scoring, reports and MLflow logging are the pipeline's
evaluation (components/evaluate.py: ``score_predictor``, ``save_evaluation``).

Before the model is loaded, its serving config (two small files) is checked against the
data (components/evaluate_fit.py): classes, bands, tiling, a split with tiles. A mismatch is
an ``EvaluationInputError``.

Whatever the data, the scored tiles are compared with the ground the model was trained and
selected on (its train and validation splits, recorded at registration:
components/training_ground.py): any overlap is warned about and recorded (metrics.json
``seen_ground``, the run's ``seen_ground_share``), since the figure is then not held out."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import rasterio

from components.artifacts import (
    ClassInfo,
    ClassMap,
    SplitManifest,
    SplitName,
)
from components.atomic import atomic_dir, scratch_beside
from components.dataset_paths import PreparedDataset
from components.evaluate_fit import (
    alias_problem,
    check_alias_targets,
    check_fits,
    check_split_tiles,
    check_tiling,
)
from components.evaluate_options import (
    EvaluateOptions,
    check_options_apply,
    check_out_folder,
    is_prepared_dataset,
)
from components.ingest import ingest_source
from components.ingest_options import IngestOptions
from components.raster import SettingError
from components.split_regions import check_scene_files
from components.tile import TileOptions, tile_scenes
from components.training_ground import check_seen_ground
from serving.config import ServingConfig
from serving.resolution import resample_factor

if TYPE_CHECKING:  # scoring imports TensorFlow: not before the data is checked
    from components.evaluation_scores import EvaluationResult

#: MLflow tags of an evaluation run: which model version it scored, on what.
TAG_MODEL = "segpipe.evaluated_model"
TAG_VERSION = "segpipe.evaluated_model_version"
TAG_MODEL_URI = "segpipe.evaluated_model_uri"
TAG_DATA = "segpipe.evaluation_data"
TAG_SPLIT = "segpipe.evaluation_split"
#: The pipeline run's param (its config's data.ingest.ignore_values) that a model's
#: registered version's run carries.
TRAINING_IGNORE_PARAM = "data.ingest.ignore_values"


@dataclass(frozen=True)
class ModelVersionRef:
    """The registry version a ``models:/`` URI names (None fields for other URIs)."""

    uri: str
    name: str | None = None
    version: str | None = None
    model_id: str | None = None
    architecture: str | None = None
    experiment_id: str | None = None
    run_id: str | None = None  # the run that logged it: its training ground's record


def resolve_model_version(model_uri: str) -> ModelVersionRef:
    """The version behind ``models:/name@alias`` or ``models:/name/version``, with the
    experiment of the run that logged it; a logged model's id (``models:/m-<id>``) names
    that model and its experiment, no version; ``runs:/<run_id>/...`` names the run that
    logged it (a pipeline's parent run, with its training's record); other URIs none."""
    if model_uri.startswith("runs:/"):
        return ModelVersionRef(uri=model_uri,
                               run_id=model_uri[len("runs:/"):].split("/", 1)[0] or None)
    if not model_uri.startswith("models:/"):
        return ModelVersionRef(uri=model_uri)
    from mlflow import MlflowClient

    from serving.remote import logged_model_id

    client = MlflowClient()
    if model_id := logged_model_id(model_uri):
        logged = client.get_logged_model(model_id)
        return ModelVersionRef(uri=model_uri, model_id=model_id,
                               architecture=logged.tags.get("segpipe.architecture"),
                               experiment_id=logged.experiment_id,
                               run_id=logged.source_run_id)
    reference = model_uri[len("models:/"):].rstrip("/")
    if "@" in reference:
        name, alias = reference.split("@", 1)
        found = client.get_model_version_by_alias(name, alias)
    else:
        name, _, version = reference.partition("/")
        found = client.get_model_version(name, version)
    experiment = client.get_run(found.run_id).info.experiment_id if found.run_id else None
    # The logged model behind the version (MLflow 3): its id, else the source that names it.
    model_id = found.model_id or (found.source[len("models:/"):]
                                  if (found.source or "").startswith("models:/m-") else None)
    return ModelVersionRef(uri=f"models:/{name}/{found.version}", name=name,
                           version=str(found.version), model_id=model_id,
                           architecture=found.tags.get("segpipe.architecture"),
                           experiment_id=experiment, run_id=found.run_id)


def _model_classes(config: ServingConfig) -> ClassMap:
    return ClassMap(classes=[ClassInfo(id=i, name=name, color=color) for i, (name, color)
                             in enumerate(zip(config.class_names, config.class_colors,
                                              strict=True))],
                    ignore_index=config.ignore_index)


def training_ignore_values(run_id: str | None) -> frozenset[int]:
    """The label values the model's training ignored: its pipeline run's
    ``data.ingest.ignore_values`` param (none for a model logged otherwise). Only advice is
    drawn from them, never applied: they are how the training's source marked no data, and
    another source may mark it otherwise, or hold a class there."""
    if not run_id:
        return frozenset()
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    try:
        values = json.loads(MlflowClient().get_run(run_id).data.params.get(
            TRAINING_IGNORE_PARAM, "[]"))
    except (MlflowException, ValueError):  # a run deleted since, a param of another form
        return frozenset()
    if not isinstance(values, list):
        return frozenset()
    return frozenset(v for v in values if isinstance(v, int) and not isinstance(v, bool))


def prepare_source(source: str, out_dir: Path, config: ServingConfig, model_uri: str,
                   ingest: IngestOptions, training_run: str | None = None) -> PreparedDataset:
    """Ingest ``source`` into ``out_dir`` onto the model's classes (by name, after
    ``ingest.class_aliases``), check its bands, tile it the model's way and put every tile
    in the test split. No statistics are fitted. ``training_run``: the run that logged the
    model, whose ignored values advise on label classes the model lacks."""
    try:
        class_map = ingest_source(source, out_dir, ingest, model_classes=_model_classes(config),
                                  trained_ignored=training_ignore_values(training_run))
    except SettingError as err:
        raise alias_problem(err, source, model_uri) from None
    first = next(iter(sorted((out_dir / "scenes").glob("*_image.tif"))), None)
    bands = 0
    if first is not None:
        with rasterio.open(first) as image:
            bands = image.count
    check_fits(config, model_uri, source, class_map.names, bands)
    # Each scene at the resolution the model's serving code reads it at: its gsd for a
    # scene in a projected CRS, else its scale.
    tile_scenes(out_dir, out_dir, TileOptions(patch_size=config.patch_size, scale=config.scale),
                factor=lambda scene: resample_factor(config, scene))
    dataset = PreparedDataset(out_dir)
    ids = [tile.id for tile in dataset.tile_manifest.tiles]
    SplitManifest(strategy="scene", seed=0, ratios=(0.0, 0.0, 1.0),
                  splits={"train": [], "val": [], "test": ids}).save(dataset.split)
    return dataset


def _log_and_save(result: EvaluationResult, dataset: PreparedDataset, data: str,
                  model: ModelVersionRef, options: EvaluateOptions, out_dir: Path) -> None:
    from components.evaluate import save_evaluation

    if not options.log_to_mlflow:
        save_evaluation(result, dataset, log_to_mlflow=False, final_dir=out_dir)
        return
    import mlflow

    from components.tracking import DATASET_DIGEST_TAG

    experiment = mlflow.get_experiment_by_name(options.mlflow_experiment)
    if experiment is None:
        # Beside the model's own runs' artifacts, not in the working folder (MLflow's
        # default for a local store).
        home = model.experiment_id and mlflow.get_experiment(model.experiment_id)
        experiment_id = mlflow.create_experiment(
            options.mlflow_experiment,
            artifact_location=home.artifact_location if home else None)
    else:
        experiment_id = experiment.experiment_id
    label = f"{model.name} v{model.version}" if model.version else model.uri
    tags = {TAG_MODEL_URI: model.uri, TAG_DATA: data, TAG_SPLIT: result.split,
            DATASET_DIGEST_TAG: result.dataset_digest}
    if model.version:
        tags |= {TAG_MODEL: model.name, TAG_VERSION: model.version}
    source = None if is_prepared_dataset(data) else data
    with mlflow.start_run(experiment_id=experiment_id, tags=tags,
                          run_name=f"evaluate {label} on {Path(data.rstrip('/')).name}"):
        save_evaluation(result, dataset, dataset_source=source, model_id=model.model_id,
                        final_dir=out_dir)


def evaluate_logged_model(model_uri: str, data: str, out_dir: Path,
                          options: EvaluateOptions | None = None,
                          ingest: IngestOptions | None = None) -> EvaluationResult:
    """Score the logged model ``model_uri`` (in the active tracking store) on ``data``;
    write metrics.json, the reports and figures into ``out_dir``; with
    ``options.log_to_mlflow``, log it as a run of ``options.mlflow_experiment``.

    The files are written into a staging folder beside ``out_dir`` that then replaces it
    whole (components/atomic.py ``atomic_dir``): an interrupted evaluation leaves the
    previous results as they were, never two models' files mixed. ``out_dir`` must be new,
    empty or a previous evaluation's (``check_out_folder``)."""
    from serving.remote import load_serving_config

    options = options or EvaluateOptions()
    check_options_apply(data, options, ingest)
    check_out_folder(out_dir, data)
    model = resolve_model_version(model_uri)
    config = load_serving_config(model.uri)
    prepared = is_prepared_dataset(data)
    split: SplitName = options.split or "test"
    if prepared:
        dataset = PreparedDataset(data)
        check_fits(config, model.uri, data, dataset.class_map.names,
                   dataset.tile_manifest.bands)
        check_tiling(config, dataset, data)
        return _score(dataset, split, data, model, out_dir, options)
    ingest = ingest or IngestOptions()
    check_alias_targets(config, model.uri, data, ingest)
    # A source may download or extract to tens of GiB: on the output's disk, not in /tmp.
    with scratch_beside(out_dir) as scratch:
        dataset = prepare_source(data, scratch / "dataset", config, model.uri, ingest,
                                 model.run_id)
        return _score(dataset, split, data, model, out_dir, options)


def _score(dataset: PreparedDataset, split: SplitName, data: str, model: ModelVersionRef,
           out_dir: Path, options: EvaluateOptions) -> EvaluationResult:
    check_split_tiles(dataset, split, data)
    check_scene_files(dataset, split)
    seen = check_seen_ground(model.run_id, dataset, split)
    # TensorFlow (seconds to import) only now: a mismatch above is told at once.
    from serving.quiet import import_tensorflow_quietly

    import_tensorflow_quietly()  # before anything imports it: no CUDA probe noise
    from components.evaluate import score_predictor
    from serving.pyfunc import load_predictor

    predictor = load_predictor(model.uri)
    with atomic_dir(out_dir) as staging:
        result = score_predictor(predictor, dataset, staging, split=split,
                                 architecture=model.architecture or "segmentation model",
                                 batch_size=options.batch_size,
                                 overlay_tiles=options.overlay_tiles, model_uri=model.uri,
                                 seen_ground=seen)
        _log_and_save(result, dataset, data, model, options, out_dir)
    return result
