"""Register the evaluated model in the MLflow Model Registry behind a champion gate.

The model is logged as serving's pyfunc (normalization and tiling inside, our code
packaged), registered under the configured name and given the alias ``challenger``;
``components.champion_gate`` decides whether ``champion`` moves to it."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

import mlflow
from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion
from pydantic import BaseModel, ConfigDict, Field

from components import tracking
from components.artifacts import SplitName, TrainedModelInfo
from components.champion_gate import TAG_DECISION, apply_champion_gate, champion_version
from components.dataset_paths import ModelPaths, PreparedDataset
from components.lineage import SOURCE_TAG
from components.training_ground import log_training_ground
from components.trivial_baseline import trivial_key
from components.wording import counted
from serving.config import ServingOptions

if TYPE_CHECKING:
    from components.evaluation_scores import EvaluationResult

log = logging.getLogger(__name__)

TAG_DATASET = "segpipe.dataset_digest"
TAG_ARCHITECTURE = "segpipe.architecture"
TAG_TRAIN_RUN = "segpipe.train_run_id"
TAG_TEST_PREFIX = "segpipe.test_"  # + metric name: the version's test scores
TAG_REGISTERED_VERSION = "segpipe.registered_version"  # on the run that registered it


class RegisterOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model_name: str = Field("segpipe", min_length=1, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$",
                            description="MLflow registered model name")
    challenger_alias: str = Field("challenger", description="alias of the newest version")
    champion_alias: str = Field("champion", description="alias of the version that serves; "
                                "moved only when the challenger beats it on the same test split")
    metric: str = Field(default="miou", description="test metric the gate compares: scene "
                        "level (test scenes predicted whole, as served); tile_miou etc. for "
                        "the tile-level figures")
    min_improvement: float = Field(default=0.0, ge=0,
                                   description="challenger must beat the champion by more")
    promote_below_trivial: bool = Field(
        default=False, description="let a version that does not beat the trivial baseline "
        "(the train split's majority class everywhere, scored on the same test pixels by the "
        "gate's metric: the evaluation's trivial_<metric>) become champion; off, it is "
        "registered as challenger only and the gate's decision says why")
    reevaluate_champion: bool = Field(default=True, description="re-score a champion scored "
                                      "on another split instead of refusing to compare")
    serving: ServingOptions = Field(default_factory=ServingOptions,
                                    description="the served model's blending and limits")


class RegistrationResult(BaseModel):
    model_name: str
    version: str
    model_uri: str
    run_id: str
    challenger_score: float
    champion_score: float | None
    champion_version: str = Field(description="the version serving now; \"none\" when the "
                                  "gate left the model without a champion")
    previous_champion_version: str | None
    promoted: bool
    decision: str
    test_split_digest: str


def serving_config(info: TrainedModelInfo, dataset: PreparedDataset,
                   options: RegisterOptions):
    """What the served model needs besides its weights, from the dataset it learnt: the
    statistics and classes, and the resolution it was trained at (the tile step's scale,
    and the tiles' metres per pixel when they have one: ``TileManifest.gsd``), so serving
    resamples input to it, and its train split's majority class (the trivial baseline of
    its evaluations on data with no train split)."""
    from components.trivial_baseline import train_majority
    from segmodels import model_stride
    from serving.config import ServingConfig

    classes, stats, manifest = dataset.class_map, dataset.norm_stats, dataset.tile_manifest
    majority = train_majority(dataset)
    return ServingConfig(**options.serving.model_dump(),
                         in_channels=info.in_channels, num_classes=info.num_classes,
                         class_names=classes.names, class_colors=[c.color for c in classes.classes],
                         mean=stats.mean, std=stats.std, nodata=stats.nodata,
                         ignore_index=classes.ignore_index, patch_size=info.patch_size,
                         scale=manifest.scale, gsd=manifest.gsd,
                         input_dtype=manifest.model_dtype,
                         train_majority_class=None if majority is None else classes.names[majority],
                         model_stride=model_stride(info.architecture, **info.params))


def score_registered_model(model_uri: str, dataset: PreparedDataset, split: SplitName,
                           metric: str) -> float:
    """``metric`` of a registered model on ``split``, scored as ``evaluate`` and ``segpipe
    evaluate`` score it, by the same code: whole scenes through the model's own predictor and
    serving config, or for a ``tile_`` metric the tiles on their own through its forward pass
    with its own statistics (tiles the tile step already resampled to the model's
    resolution are not resampled again). The data is checked against the model's serving
    config first (classes, bands and, for tiles, the tiling): ``EvaluationInputError``."""
    from components.evaluate_fit import check_fits, check_tiling
    from components.evaluation_scores import TILE_PREFIX, summary_metrics
    from components.scene_evaluation import scene_confusion
    from components.tile_evaluation import split_confusion, tile_predictor
    from serving.decode import param_defaults
    from serving.pyfunc import load_predictor
    from serving.remote import load_serving_config

    names, by_tiles = dataset.class_map.names, metric.startswith(TILE_PREFIX)
    config = load_serving_config(model_uri)
    check_fits(config, model_uri, str(dataset.root), names, dataset.tile_manifest.bands)
    if by_tiles:
        check_tiling(config, dataset, str(dataset.root))
    predictor = load_predictor(model_uri)
    if by_tiles:
        cm = split_confusion(dataset, split, tile_predictor(predictor), config.batch_size)
    else:
        # The evaluation of the same split said the repeated-ground line already.
        cm = scene_confusion(predictor, dataset, split, tta=param_defaults(config)["tta"],
                             quiet=True).confusion
    scores = summary_metrics(cm, names, TILE_PREFIX if by_tiles else "")
    if metric not in scores:
        raise ValueError(f"{model_uri}: no {metric!r} on the {split} split (absent class?)")
    return float(scores[metric])


MODEL_DESCRIPTION = (
    "Semantic segmentation model registered by segpipe. It takes raw pixels (normalization, "
    "tiling and blending are inside) and answers class masks. Each version's description "
    "names its data, architecture, test scores and champion-gate decision; the alias "
    "'champion' is the version that serves, 'challenger' the newest.")


def version_description(info: TrainedModelInfo, dataset: PreparedDataset,
                        evaluation: EvaluationResult, decision: str,
                        source: str | None) -> str:
    """What a person reading the registry needs about one version, in a few lines."""
    classes = dataset.class_map.names
    manifest = dataset.tile_manifest
    params = ", ".join(f"{k}={v}" for k, v in sorted(info.params.items())) or "defaults"
    scores = ", ".join(f"{name} {evaluation.metrics[name]:.3f}"
                       for name in ("miou", "pixel_accuracy", "tile_miou")
                       if name in evaluation.metrics)
    return "\n".join([
        f"Data: {source or dataset.root} (dataset digest {evaluation.dataset_digest[:12]}); "
        f"{len(classes)} classes ({', '.join(classes)}); {counted(info.in_channels, 'band')}; "
        f"{manifest.patch_size} px tiles at scale {manifest.scale}"
        + (f" ({manifest.gsd:g} m per pixel)." if manifest.gsd else "."),
        f"Architecture: {info.architecture} ({params}); best val mIoU "
        f"{info.best_val_miou if info.best_val_miou is None else round(info.best_val_miou, 4)}.",
        f"Test ({evaluation.split} split: {evaluation.scene_count} scenes predicted whole as "
        f"served, scene-level scores; {evaluation.tile_count} tiles for tile_miou): {scores}.",
        f"Gate: {decision}.",
    ])


def _describe(client: MlflowClient, name: str, version: str, description: str) -> None:
    client.update_model_version(name, version, description=description)
    if not client.get_registered_model(name).description:
        client.update_registered_model(name, description=MODEL_DESCRIPTION)


def register_model(model_dir: Path, dataset: PreparedDataset, evaluation: EvaluationResult,
                   options: RegisterOptions) -> RegistrationResult:
    """Log the model as a pyfunc, register it as ``challenger`` and apply the champion gate.

    Logs into the caller's active MLflow run (a new run "register" when there is none)."""
    from serving.pyfunc import log_segmentation_model

    model_dir = Path(model_dir)
    info = TrainedModelInfo.load(ModelPaths(model_dir).info)
    if options.metric not in evaluation.metrics:
        raise ValueError(f"{evaluation.metrics_path}: no test metric {options.metric!r}; has "
                         f"{sorted(evaluation.metrics)}")
    if dataset.split_digest(evaluation.split) != evaluation.split_digest:
        raise ValueError(f"{dataset.split}: the {evaluation.split} split differs from the one "
                         f"{evaluation.metrics_path} was scored on")
    score = float(evaluation.metrics[options.metric])
    trivial = evaluation.metrics.get(trivial_key(options.metric))
    config = serving_config(info, dataset, options)

    client = MlflowClient()
    with tracking.ensure_run("register") as run:
        model_info = log_segmentation_model(ModelPaths(model_dir).keras_model, config,
                                            name="model")
        version = mlflow.register_model(
            model_info.model_uri, options.model_name,
            tags={TAG_DATASET: evaluation.dataset_digest, TAG_ARCHITECTURE: info.architecture,
                  TAG_TRAIN_RUN: info.mlflow_run_id or "",
                  **{f"{TAG_TEST_PREFIX}{k}": f"{v:.6f}" for k, v in evaluation.metrics.items()}})
        client.set_registered_model_alias(options.model_name, options.challenger_alias,
                                          version.version)
        # What the version was trained and selected on, for `segpipe evaluate` to tell a
        # held-out score from one on seen ground.
        log_training_ground(dataset, mlflow.get_run(run.info.run_id).data.tags.get(
            SOURCE_TAG) or str(dataset.root))

        def rescore(champion: ModelVersion) -> float:
            if not options.reevaluate_champion:
                raise ValueError("re-scoring disabled")
            uri = f"models:/{options.model_name}/{champion.version}"
            return score_registered_model(uri, dataset, evaluation.split, options.metric)

        gate = apply_champion_gate(client, options.model_name, version.version, score,
                                   evaluation.split_digest, options, rescore,
                                   trivial_score=trivial)
        mlflow.set_tags({TAG_REGISTERED_VERSION: version.version,
                         TAG_DECISION: gate.decision})
        run_id = run.info.run_id
        source = mlflow.get_run(run_id).data.tags.get(SOURCE_TAG)
    _describe(client, options.model_name, version.version,
              version_description(info, dataset, evaluation, gate.decision, source))
    champion = champion_version(client, options.model_name, options.champion_alias)
    return RegistrationResult(
        model_name=options.model_name, version=str(version.version),
        model_uri=f"models:/{options.model_name}/{version.version}", run_id=run_id,
        challenger_score=score, champion_score=gate.champion_score,
        champion_version=str(champion.version) if champion else "none",
        previous_champion_version=gate.previous_champion_version, promoted=gate.promoted,
        decision=gate.decision, test_split_digest=evaluation.split_digest)
