"""The segmentation pipeline: one Kubeflow Pipelines (v2) definition for laptop and cluster.

ingest -> tile -> split -> normalize -> [tune workers in a ParallelFor] -> select best
-> evaluate (test split) -> register, with an MLflow parent run opened first.

The same definition runs through ``kfp.local`` (resource requests, GPU and Kubernetes
secrets are ignored there) and compiles to IR YAML for a cluster, where:
- data steps are cached (a re-run with the same inputs reuses them); steps with side
  effects (MLflow runs, Optuna trials, registry) never are;
- tune workers request one ``nvidia.com/gpu`` each and share one Optuna study, whose
  storage is PostgreSQL on a cluster;
- S3 and database credentials come from Kubernetes secrets (``optional``, so a cluster
  without S3 or a password still runs), endpoints from a ConfigMap; never parameters.
"""

from typing import NamedTuple

from kfp import dsl, kubernetes

from pipelines import components as steps

PIPELINE_NAME = "segpipe-segmentation"

# Kubernetes objects the cluster deployment (infra/) provides.
S3_SECRET = "segpipe-s3"
S3_SECRET_KEYS = {"AWS_ACCESS_KEY_ID": "AWS_ACCESS_KEY_ID",
                  "AWS_SECRET_ACCESS_KEY": "AWS_SECRET_ACCESS_KEY"}
DB_SECRET = "segpipe-db"
DB_SECRET_KEYS = {"PGPASSWORD": "PGPASSWORD"}  # libpq (Optuna's PostgreSQL storage) reads it
ENDPOINTS_CONFIG_MAP = "segpipe-endpoints"
ENDPOINTS_KEYS = {"MLFLOW_TRACKING_URI": "MLFLOW_TRACKING_URI",
                  "MLFLOW_S3_ENDPOINT_URL": "MLFLOW_S3_ENDPOINT_URL",
                  "AWS_ENDPOINT_URL": "AWS_ENDPOINT_URL",
                  "OPTUNA_STORAGE": "OPTUNA_STORAGE"}

# Requests sized for the tiny demo up to a few thousand tiles; limits are left to the cluster.
DATA_RESOURCES = ("1", "2Gi")
TUNE_RESOURCES = ("4", "16Gi")
EVAL_RESOURCES = ("2", "8Gi")
LIGHT_RESOURCES = ("500m", "1Gi")
GPU = "nvidia.com/gpu"
TUNE_PARALLELISM = 8  # at most this many workers at once, whatever tune_workers holds

DEFAULT_SPLIT_RATIOS = [0.7, 0.15, 0.15]


class PipelineOutputs(NamedTuple):
    test_miou: float
    model_version: str
    champion_version: str
    mlflow_run_id: str
    kfp_run_name: str


def _configure(task: dsl.PipelineTask, resources: tuple[str, str], *, cache: bool,
               s3: bool = False, db: bool = False) -> dsl.PipelineTask:
    cpu, memory = resources
    task.set_cpu_request(cpu).set_memory_request(memory).set_caching_options(cache)
    kubernetes.use_config_map_as_env(task, ENDPOINTS_CONFIG_MAP, ENDPOINTS_KEYS, optional=True)
    if s3:
        kubernetes.use_secret_as_env(task, S3_SECRET, S3_SECRET_KEYS, optional=True)
    if db:
        kubernetes.use_secret_as_env(task, DB_SECRET, DB_SECRET_KEYS, optional=True)
    return task


@dsl.pipeline(name=PIPELINE_NAME,
              description="Semantic segmentation of aerial/satellite imagery: ingest, tile, "
                          "split, normalize, tune (parallel Optuna workers), evaluate on the "
                          "test split, register in MLflow.")
def segmentation_pipeline(
    source: str,
    classes: str = "auto",
    ingest_options: dict = {},  # noqa: B006 - kfp reads defaults from the signature
    patch_size: int = 256,
    tile_overlap: float = 0.0,
    tile_scale: float = 1.0,
    min_valid_fraction: float = 0.5,
    split_strategy: str = "scene",
    split_ratios: list = DEFAULT_SPLIT_RATIOS,
    split_seed: int = 0,
    split_block_size: int = 0,
    split_drop_overlaps: bool = True,
    search_space: dict = {},  # noqa: B006
    train_settings: dict = {},  # noqa: B006
    n_trials: int = 20,
    tune_workers: list = [0],  # noqa: B006
    timeout_s: float = 0.0,
    epochs: int = 20,
    tuning_seed: int = 0,
    pruner: str = "median",
    model_name: str = "segpipe",
    mlflow_tracking_uri: str = "",
    mlflow_experiment: str = "segpipe",
    mlflow_artifact_location: str = "",
    optuna_storage: str = "",
) -> PipelineOutputs:
    """Tune, evaluate and register a segmentation model for a set of image/mask scenes.

    Args:
        source: Scenes to learn from: a folder, an s3://bucket/prefix, or a .zip/.tar archive of
            image + mask pairs.
        classes: Class palette: "auto" (a classes.json in the source, else the mask colours), "ids"
            (single-band class-id masks), a path to a classes.json, or a JSON list of {"name",
            "color"}.
        ingest_options: Further ingest options: mask_dir_names, class_values (mask value -> class
            id), ignore_values, ignore_colors, color_tolerance, ignore_index.
        patch_size: Tile size in pixels (square).
        tile_overlap: Fraction of a tile shared with its neighbour, 0 <= overlap < 1 (0.25: the
            stride is 3/4 of patch_size); 0 = adjacent tiles.
        tile_scale: Resampling factor applied to scenes before tiling (0.5 halves the resolution).
        min_valid_fraction: Drop tiles with less than this fraction of labelled, valid pixels.
        split_strategy: "scene" (whole scenes per split), "block" (spatial blocks) or "random"
            (tiles; leaks neighbours, for tests only).
        split_ratios: Train, validation and test fractions; they sum to 1.
        split_seed: Seed of the split assignment.
        split_block_size: Block edge in pixels for the "block" strategy; 0 = the split step's
            default.
        split_drop_overlaps: Drop validation/test tiles that share ground with a tile of
            another split (overlapping tiles or scenes), so no pixel is seen in two splits.
        search_space: Optuna search space (architecture, learning rate, filters, ...); empty = the
            built-in space.
        train_settings: Fixed training settings for every trial (batch_size, loss, augment,
            early_stopping_patience, ...).
        n_trials: Optuna trials in the study, across all workers.
        tune_workers: One entry per parallel Optuna worker (e.g. [0, 1, 2, 3] for four); all share
            one study.
        timeout_s: Stop starting new trials after this many seconds; 0 = no limit.
        epochs: Maximum epochs per trial (early stopping and pruning may end a trial sooner).
        tuning_seed: Sampler seed; worker i uses tuning_seed + i.
        pruner: Optuna pruner: "median", "hyperband" or "none".
        model_name: Registered model name in the MLflow model registry.
        mlflow_tracking_uri: MLflow tracking URI; empty = $MLFLOW_TRACKING_URI of the cluster
            (segpipe-endpoints ConfigMap).
        mlflow_experiment: MLflow experiment of the parent run.
        mlflow_artifact_location: Artifact location for a newly created experiment; empty = the
            server's default.
        optuna_storage: Optuna storage URL shared by the tune workers (PostgreSQL on a cluster, the
            password from the segpipe-db secret); empty = $OPTUNA_STORAGE.
    """
    ingested = _configure(steps.ingest(source=source, classes=classes,
                                       ingest_options=ingest_options),
                          DATA_RESOURCES, cache=True, s3=True)
    tiled = _configure(steps.tile(scenes=ingested.outputs["scenes"], patch_size=patch_size,
                                  overlap=tile_overlap, scale=tile_scale,
                                  min_valid_fraction=min_valid_fraction),
                       DATA_RESOURCES, cache=True)
    tiles = tiled.outputs["tiles"]
    splitted = _configure(steps.split(tiles=tiles, strategy=split_strategy, ratios=split_ratios,
                                      seed=split_seed, block_size=split_block_size,
                                      drop_overlaps=split_drop_overlaps),
                          DATA_RESOURCES, cache=True)
    split = splitted.outputs["split"]
    normalized = _configure(steps.normalize(tiles=tiles, split=split),
                            DATA_RESOURCES, cache=True)
    stats = normalized.outputs["stats"]

    started = _configure(steps.start_run(
        model_name=model_name, mlflow_tracking_uri=mlflow_tracking_uri,
        mlflow_experiment=mlflow_experiment, mlflow_artifact_location=mlflow_artifact_location,
        optuna_storage=optuna_storage, kfp_run_id=dsl.PIPELINE_JOB_ID_PLACEHOLDER,
        kfp_run_name=dsl.PIPELINE_JOB_NAME_PLACEHOLDER), LIGHT_RESOURCES, cache=False, s3=True)
    context = started.outputs["run_context"]

    # Inside the loop only pipeline parameters, the loop item and artifacts are passed: the
    # local runner replaces upstream *parameter* outputs with the loop item there.
    with dsl.ParallelFor(items=tune_workers, parallelism=TUNE_PARALLELISM) as worker:
        tuned = steps.tune_worker(
            worker=worker, workers=tune_workers, tiles=tiles, split=split, stats=stats,
            run_context=context, search_space=search_space, train_settings=train_settings,
            n_trials=n_trials, timeout_s=timeout_s, epochs=epochs, seed=tuning_seed,
            pruner=pruner)
        _configure(tuned, TUNE_RESOURCES, cache=False, s3=True, db=True)
        tuned.set_accelerator_type(GPU).set_accelerator_limit(1).set_retry(2)

    selected = _configure(steps.select_best(models=dsl.Collected(tuned.outputs["model"]),
                                            run_context=context),
                          LIGHT_RESOURCES, cache=False, s3=True, db=True)
    best = selected.outputs["best_model"]
    evaluated = _configure(steps.evaluate(model=best, tiles=tiles, split=split, stats=stats,
                                          run_context=context),
                           EVAL_RESOURCES, cache=False, s3=True)
    registered = _configure(steps.register(model=best, tiles=tiles, split=split, stats=stats,
                                           evaluation=evaluated.outputs["evaluation"],
                                           run_context=context, model_name=model_name),
                            LIGHT_RESOURCES, cache=False, s3=True)
    return PipelineOutputs(
        test_miou=evaluated.outputs["Output"],
        model_version=registered.outputs["model_version"],
        champion_version=registered.outputs["champion_version"],
        mlflow_run_id=started.outputs["mlflow_run_id"],
        kfp_run_name=started.outputs["kfp_run_name"],
    )
