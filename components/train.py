"""Train one segmentation model on a prepared dataset.

``train_model`` resumes a killed run from its last epoch checkpoint, keeps the best epoch
(by validation mIoU), logs params, per-epoch curves, overlays and the dataset to MLflow,
and writes a ``ModelPaths`` folder (model.keras without optimizer state + model.json)."""

from __future__ import annotations

import hashlib
import json
import logging
import math
import shutil
from pathlib import Path
from typing import Any

import keras
import mlflow
import tensorflow as tf
from pydantic import BaseModel

import segmodels
from components import tracking
from components.artifacts import TileManifest, TrainedModelInfo
from components.atomic import atomic_path, write_json
from components.dataset_paths import ModelPaths, PreparedDataset
from components.train_callbacks import (
    CheckpointPaths,
    ClassIoUCurves,
    EpochCheckpoint,
    MlflowCurves,
    OverlayFigures,
)
from components.train_data import (
    balanced_class_weights,
    class_frequencies,
    load_split_arrays,
    make_dataset,
    make_source,
)
from components.train_options import MODEL_PARAM_PREFIX, TrainParams
from segmodels import EncoderWarmup, MeanIoU, build_loss, build_model

log = logging.getLogger(__name__)


class TrainResult(BaseModel):
    model_dir: str
    best_epoch: int
    best_val_miou: float
    epochs_run: int
    resumed_from_epoch: int
    stopped_early: bool
    history: dict[str, list[float]]
    mlflow_run_id: str | None


def params_digest(params: TrainParams) -> str:
    """Names the params a checkpoint was made with; key order does not matter."""
    text = json.dumps(params.model_dump(mode="json"), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def learning_rate_at(epoch: int, params: TrainParams) -> float:
    """Linear warm-up, then cosine decay to 1% of the base rate (or constant)."""
    base = params.learning_rate
    if epoch < params.warmup_epochs:
        return base * (epoch + 1) / (params.warmup_epochs + 1)
    if params.lr_schedule == "constant":
        return base
    span = max(params.epochs - params.warmup_epochs, 1)
    progress = min((epoch - params.warmup_epochs) / span, 1.0)
    return base * (0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * progress)))


def gpu_visible() -> bool:
    """TensorFlow sees a GPU here (what the recipe's GPU choices key on)."""
    return bool(tf.config.list_physical_devices("GPU"))


def _accelerated(params: TrainParams) -> bool:
    return params.accelerate == "auto" and gpu_visible()


def _class_weights(params: TrainParams, manifest: TileManifest, train_ids: list[str],
                   num_classes: int) -> list[float] | None:
    if params.class_weights == "none":
        return None
    if isinstance(params.class_weights, list):
        if len(params.class_weights) != num_classes:
            raise ValueError(f"class_weights: {len(params.class_weights)} values for "
                             f"{num_classes} classes")
        return params.class_weights
    wanted = set(train_ids)
    counts = [t.class_counts for t in manifest.tiles if t.id in wanted]
    return balanced_class_weights(class_frequencies(counts, num_classes),
                                  params.max_class_weight)


def _compile(model: keras.Model, params: TrainParams, num_classes: int, ignore_index: int,
             class_weights: list[float] | None, jit: bool) -> MeanIoU:
    """Compile for training; returns the mIoU metric (its confusion matrix feeds the
    per-class curves)."""
    if params.weight_decay:
        optimizer = keras.optimizers.AdamW(params.learning_rate, weight_decay=params.weight_decay)
    else:
        optimizer = keras.optimizers.Adam(params.learning_rate)
    loss = build_loss(params.loss, num_classes, ignore_index=ignore_index,
                      class_weights=class_weights)
    miou = MeanIoU(num_classes, ignore_index=ignore_index, name="miou")
    model.compile(optimizer=optimizer, loss=loss, metrics=[miou], jit_compile=jit)
    return miou


def _load_state(paths: CheckpointPaths, params: TrainParams) -> dict[str, Any]:
    digest = params_digest(params)
    if paths.state.is_file():
        state = json.loads(paths.state.read_text())
        if state.get("params_digest") == digest and paths.last_weights.is_file():
            return state
        if not paths.last_weights.is_file():
            why = "its weights are missing"
        else:
            earlier = state.get("params", {})
            changed = [f"{k}: {json.dumps(earlier.get(k))} -> {json.dumps(v)}"
                       for k, v in params.model_dump(mode="json").items()
                       if json.dumps(earlier.get(k), sort_keys=True) !=
                       json.dumps(v, sort_keys=True)]
            why = f"it was made with other params ({'; '.join(changed) or 'same values'})"
        log.warning("%s: checkpoint not resumed, %s; starting over", paths.root, why)
        shutil.rmtree(paths.root)
    return {"params_digest": digest, "params": params.model_dump(mode="json"),
            "epochs_done": 0, "history": {}}


def train_model(dataset: PreparedDataset, params: TrainParams, out_dir: Path, *,
                callbacks: list[keras.callbacks.Callback] | None = None) -> TrainResult:
    """Train ``params.architecture`` on the train split, validate on val, keep the best epoch.

    Logs into the caller's active MLflow run (a new run "train" when there is none). A run
    killed mid-way resumes from ``out_dir/checkpoints`` (into the same MLflow run when the
    caller opened none). ``callbacks`` run after ours each epoch (e.g. Optuna pruning).
    """
    out_dir = Path(out_dir)
    classes, manifest, stats = dataset.class_map, dataset.tile_manifest, dataset.norm_stats
    train_src = make_source(dataset.tiles_dir, dataset.split, "train", stats, manifest.patch_size)
    val_src = make_source(dataset.tiles_dir, dataset.split, "val", stats, manifest.patch_size)
    num_classes, in_channels = classes.num_classes, len(stats.bands)

    ckpt = CheckpointPaths(out_dir / "checkpoints")
    ckpt.root.mkdir(parents=True, exist_ok=True)
    state = _load_state(ckpt, params)
    ckpt.root.mkdir(parents=True, exist_ok=True)
    resumed_from = int(state["epochs_done"])

    keras.utils.set_random_seed(params.seed + resumed_from)
    accelerated = _accelerated(params)
    keras.mixed_precision.set_dtype_policy("mixed_float16" if accelerated else "float32")
    try:
        model = build_model(params.architecture, num_classes, in_channels,
                            **params.model_params)
    finally:
        keras.mixed_precision.set_dtype_policy("float32")
    weights = _class_weights(params, manifest, train_src.tile_ids, num_classes)
    miou = _compile(model, params, num_classes, classes.ignore_index, weights, jit=accelerated)
    if resumed_from:
        model.optimizer.build(model.trainable_variables)
        model.load_weights(ckpt.last_weights)
        log.info("resuming %s at epoch %d", out_dir, resumed_from)

    budget = params.cache_budget_mb << 20
    train_ds = make_dataset(train_src, params.batch_size, training=True, augment=params.augment,
                            crop_size=params.crop_size, seed=params.seed,
                            cache_budget_bytes=budget)
    val_ds = make_dataset(val_src, params.batch_size, training=False, cache_budget_bytes=budget)
    sample_images, sample_masks = load_split_arrays(val_src, limit=params.overlay_tiles)

    with _training_run(state) as run:
        run_id = run.info.run_id
        if state.get("mlflow_run_id") != run_id:
            state["mlflow_run_id"] = run_id
            mlflow.log_params({"architecture": params.architecture, "epochs": params.epochs,
                               "batch_size": params.batch_size,
                               "learning_rate": params.learning_rate,
                               "lr_schedule": params.lr_schedule, "loss": str(params.loss),
                               "augment": params.augment, "crop_size": params.crop_size,
                               "encoder_warmup_epochs": params.encoder_warmup_epochs,
                               "class_weights": str(params.class_weights),
                               "weight_decay": params.weight_decay, "seed": params.seed,
                               "accelerated": accelerated, "parameters": model.count_params(),
                               **{f"{MODEL_PARAM_PREFIX}{k}": v
                                  for k, v in params.model_params.items()}})
            tracking.log_dataset(dataset.root, dataset.digest(), context="training")
        mlflow.set_tag("segpipe.resumed_from_epoch", str(resumed_from))
        epoch_cbs: list[keras.callbacks.Callback] = [
            keras.callbacks.LearningRateScheduler(lambda e, _lr: learning_rate_at(e, params)),
            EpochCheckpoint(ckpt, state, params.early_stopping_patience),
            MlflowCurves(),
            ClassIoUCurves(miou, classes.names),
            *([EncoderWarmup(params.encoder_warmup_epochs)] if params.encoder_warmup_epochs
              else []),
            OverlayFigures(sample_images, sample_masks, classes.palette(), classes.ignore_index,
                           params.overlay_every, params.epochs),
            *(callbacks or []),
        ]
        if resumed_from < params.epochs and not state.get("stopped_early"):
            model.fit(train_ds, validation_data=val_ds, epochs=params.epochs,
                      initial_epoch=resumed_from, callbacks=epoch_cbs, verbose=0)
        result = _finish(model_dir=out_dir, ckpt=ckpt, state=state, params=params,
                         num_classes=num_classes, in_channels=in_channels,
                         patch_size=manifest.patch_size, resumed_from=resumed_from)
        mlflow.log_metrics({"best_val_miou": result.best_val_miou,
                            "best_epoch": result.best_epoch})
        mlflow.set_tag("segpipe.stopped_early", str(result.stopped_early))
    return result


def _training_run(state: dict[str, Any]):
    """The caller's run; else the run an interrupted call of this training logged into;
    else a new one."""
    if mlflow.active_run() is None and state.get("mlflow_run_id"):
        return mlflow.start_run(run_id=state["mlflow_run_id"])
    return tracking.ensure_run("train")


def _finish(model_dir: Path, ckpt: CheckpointPaths, state: dict[str, Any], params: TrainParams,
            num_classes: int, in_channels: int, patch_size: int,
            resumed_from: int) -> TrainResult:
    """Best epoch's weights into a fresh float32 model, saved without optimizer state."""
    if "best_epoch" not in state:
        raise RuntimeError(f"{ckpt.root}: no epoch produced a finite validation mIoU")
    model = build_model(params.architecture, num_classes, in_channels, **params.model_params)
    model.load_weights(ckpt.best_weights)
    out = ModelPaths(model_dir)
    with atomic_path(out.keras_model, suffix=".keras") as tmp:
        model.save(tmp)
    info = TrainedModelInfo(architecture=params.architecture, params=params.model_params,
                            num_classes=num_classes, in_channels=in_channels,
                            patch_size=patch_size, best_epoch=state["best_epoch"],
                            best_val_miou=state["best_val_miou"],
                            mlflow_run_id=state.get("mlflow_run_id"))
    info.save(out.info)
    write_json(model_dir / "train_params.json", params.model_dump(mode="json"))
    return TrainResult(model_dir=str(model_dir), best_epoch=state["best_epoch"],
                       best_val_miou=state["best_val_miou"],
                       epochs_run=int(state["epochs_done"]), resumed_from_epoch=resumed_from,
                       stopped_early=bool(state.get("stopped_early")),
                       history=state.get("history", {}),
                       mlflow_run_id=state.get("mlflow_run_id"))


def load_trained_model(model_dir: Path) -> tuple[keras.Model, TrainedModelInfo]:
    paths = ModelPaths(model_dir)
    info = TrainedModelInfo.load(paths.info)
    model = segmodels.load_model(paths.keras_model)
    return model, info

