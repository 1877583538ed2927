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
data: a source's label classes are read onto the model's by name, after the ingest's
``class_aliases`` (an alias naming no class of the model is refused before the source is
read); a prepared dataset must have the model's class names in its order and its tiling;
both, its band count. A mismatch or an empty split is an ``EvaluationInputError``.

Whatever the data, the scored tiles are compared with the ground the model was trained and
selected on (its train and validation splits, recorded at registration:
components/training_ground.py): any overlap is warned about and recorded (metrics.json
``seen_ground``, the run's ``seen_ground_share``), since the figure is then not held out."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import rasterio

from components.artifacts import (
    SPLIT_NAMES,
    ClassInfo,
    ClassMap,
    SplitManifest,
    SplitName,
    TileManifest,
)
from components.atomic import atomic_dir, scratch_beside
from components.class_aliases import check_targets, same_classes
from components.dataset_paths import PreparedDataset
from components.evaluate_options import (
    EvaluateOptions,
    EvaluationInputError,
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
    that model and its experiment, no version; other URIs name neither."""
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


def check_fits(config: ServingConfig, model_uri: str, data: str, class_names: list[str],
               bands: int) -> None:
    """The data's classes (names, in order; ``class_0`` of older segpipe is
    ``background``) and band count are the model's."""
    fits = same_classes(class_names, config.class_names)
    if fits and bands == config.in_channels:
        return
    advice = "" if fits else (
        "; evaluate the source it was prepared from instead: a source's label classes map "
        "onto the model's by name, with --class-alias for names that differ")
    raise EvaluationInputError(
        f"{data} does not fit the model {model_uri}: the model predicts "
        f"{config.num_classes} classes ({', '.join(config.class_names)}) from "
        f"{config.in_channels} bands, the data has {len(class_names)} classes "
        f"({', '.join(class_names)}) and {bands} bands{advice}")


def _model_tiling(config: ServingConfig) -> str:
    where = f"{config.gsd:g} m per pixel" if config.gsd else f"scale {config.scale}"
    return f"{config.patch_size} px at {where}"


def _same_resolution(config: ServingConfig, manifest: TileManifest) -> bool:
    """The tiles are at the model's resolution: its metres per pixel when it has one (a
    model of older segpipe has none unless trained with target_gsd), else its scale, of
    tiles resampled by scale alone."""
    if config.gsd is not None:
        return manifest.gsd is not None and math.isclose(manifest.gsd, config.gsd,
                                                         rel_tol=1e-9)
    return manifest.target_gsd is None and manifest.scale == config.scale


def check_tiling(config: ServingConfig, dataset: PreparedDataset, data: str) -> None:
    """A prepared dataset's tiles are the model's windows at its resolution: tile-level
    scores feed them to the network as they are."""
    manifest = dataset.tile_manifest
    if manifest.patch_size == config.patch_size and _same_resolution(config, manifest):
        return
    where = f"{manifest.gsd:g} m per pixel" if manifest.gsd else f"scale {manifest.scale}"
    theirs = f"{manifest.patch_size} px at {where}"
    raise EvaluationInputError(
        f"{data} is tiled {theirs}, the model takes windows of {_model_tiling(config)}: "
        f"evaluate the source it was prepared from (tiled the model's way), or prepare it "
        f"again with the model's --patch-size and --scale/--target-gsd")


def check_split_tiles(dataset: PreparedDataset, split: SplitName, data: str) -> None:
    if dataset.tile_ids(split):
        return
    sizes = ", ".join(f"{name} {len(dataset.tile_ids(name))}" for name in SPLIT_NAMES)
    raise EvaluationInputError(f"{data}: the {split} split has no tiles to score (tiles per "
                               f"split: {sizes}); choose another with --split")


def _model_classes(config: ServingConfig) -> ClassMap:
    return ClassMap(classes=[ClassInfo(id=i, name=name, color=color) for i, (name, color)
                             in enumerate(zip(config.class_names, config.class_colors,
                                              strict=True))],
                    ignore_index=config.ignore_index)


def _alias_problem(err: SettingError, source: str, model_uri: str) -> Exception:
    """A problem of the class aliases is the user's input (exit 2), told with its flag."""
    if err.field != "class_aliases":
        return err
    return EvaluationInputError(f"{source} does not fit the model {model_uri}: "
                                f"{err.named('--class-alias')}")


def check_alias_targets(config: ServingConfig, model_uri: str, data: str,
                        ingest: IngestOptions) -> None:
    """Every alias names a class of the model: told from its serving config alone, before
    the source is read."""
    try:
        check_targets(ingest.class_aliases, config.class_names, "the model's classes")
    except SettingError as err:
        raise _alias_problem(err, data, model_uri) from None


def prepare_source(source: str, out_dir: Path, config: ServingConfig, model_uri: str,
                   ingest: IngestOptions) -> PreparedDataset:
    """Ingest ``source`` into ``out_dir`` onto the model's classes (by name, after
    ``ingest.class_aliases``), check its bands, tile it the model's way and put every tile
    in the test split. No statistics are fitted."""
    try:
        class_map = ingest_source(source, out_dir, ingest,
                                  model_classes=_model_classes(config))
    except SettingError as err:
        raise _alias_problem(err, source, model_uri) from None
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
        dataset = prepare_source(data, scratch / "dataset", config, model.uri, ingest)
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
