"""Keras callbacks for training: resumable checkpoints with early stopping, MLflow curves
and prediction-overlay figures."""

from __future__ import annotations

import contextlib
import logging
import math
import re
import time
from pathlib import Path
from typing import Any

import keras
import mlflow
import numpy as np
import optuna

from components.atomic import atomic_path, write_json
from components.figures import close, overlay_figure

log = logging.getLogger(__name__)

# Keras log key -> MLflow metric name, so the UI groups train/val curves side by side.
METRIC_NAMES = {"loss": "train_loss", "miou": "train_miou", "val_loss": "val_loss",
                "val_miou": "val_miou", "learning_rate": "learning_rate"}


class CheckpointPaths:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    last_weights = property(lambda self: self.root / "last.weights.h5")
    best_weights = property(lambda self: self.root / "best.weights.h5")
    state = property(lambda self: self.root / "state.json")


class EpochCheckpoint(keras.callbacks.Callback):
    """Each epoch: weights + optimizer state to ``last``, to ``best`` when val mIoU improves,
    then the state JSON (epochs done, best epoch/score, history). The state is written last,
    so a run killed mid-save resumes from the previous complete epoch. Also stops early
    after ``patience`` epochs without improvement; the counter survives a resume."""

    def __init__(self, paths: CheckpointPaths, state: dict[str, Any], patience: int,
                 monitor: str = "val_miou") -> None:
        super().__init__()
        self.paths = paths
        self.state = state
        self.patience = patience
        self.monitor = monitor

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        logs = logs or {}
        history = self.state.setdefault("history", {})
        for key, value in logs.items():
            history.setdefault(key, []).append(float(value))
        score = float(logs.get(self.monitor, float("nan")))
        best = self.state.get("best_val_miou")
        if math.isfinite(score) and (best is None or score > best):
            self.state["best_val_miou"], self.state["best_epoch"] = score, epoch
            with atomic_path(self.paths.best_weights, suffix=".weights.h5") as tmp:
                self.model.save_weights(tmp)
        with atomic_path(self.paths.last_weights, suffix=".weights.h5") as tmp:
            self.model.save_weights(tmp)
        self.state["epochs_done"] = epoch + 1
        best_epoch = self.state.get("best_epoch")
        if self.patience and best_epoch is not None and epoch - best_epoch >= self.patience:
            self.state["stopped_early"] = True
            self.model.stop_training = True
        write_json(self.paths.state, self.state)


class MlflowCurves(keras.callbacks.Callback):
    """Per-epoch metrics with step=epoch, so curves are live and comparable across runs."""

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        metrics = {METRIC_NAMES.get(k, k): float(v) for k, v in (logs or {}).items()
                   if math.isfinite(float(v))}
        if metrics:
            mlflow.log_metrics(metrics, step=epoch)


class EpochProgress(keras.callbacks.Callback):
    """One line per epoch on stdout (``trial 3 epoch 4/15: ...``), so a console following a
    run sees training move instead of minutes of silence."""

    def __init__(self, label: str, epochs: int) -> None:
        super().__init__()
        self.label, self.epochs = label, epochs
        self.started = 0.0

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self.started = time.monotonic()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        logs = logs or {}
        figures = ", ".join(f"{name} {float(logs[key]):.3f}" for key, name in (
            ("loss", "loss"), ("val_loss", "val loss"), ("val_miou", "val mIoU"))
            if key in logs)
        # Whoever read our output may be gone (a killed runner): progress is not worth
        # failing the trial, whose checkpoints a resumed run will want.
        with contextlib.suppress(OSError):
            print(f"{self.label} epoch {epoch + 1}/{self.epochs}: {figures} "
                  f"({time.monotonic() - self.started:.0f} s)", flush=True)


class ClassIoUCurves(keras.callbacks.Callback):
    """Per-class validation IoU each epoch (``val_iou_<class>``), read from the confusion
    matrix the mIoU metric holds after the epoch's validation pass: no extra pass, no
    per-step cost."""

    def __init__(self, metric, class_names: list[str]) -> None:
        super().__init__()
        self.metric = metric
        self.names = [re.sub(r"[^A-Za-z0-9_\-. /]", "_", name) for name in class_names]

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        from segmodels import scores_from_confusion

        confusion = keras.ops.convert_to_numpy(self.metric.confusion)
        ious = scores_from_confusion(confusion)["iou"]
        metrics = {f"val_iou_{name}": float(iou) for name, iou in zip(self.names, ious,
                                                                       strict=True)
                   if math.isfinite(iou)}
        if metrics:
            mlflow.log_metrics(metrics, step=epoch)


class OverlayFigures(keras.callbacks.Callback):
    """Predictions on a few fixed validation tiles every ``every`` epochs and at the end."""

    def __init__(self, images: np.ndarray, masks: np.ndarray, palette: np.ndarray,
                 ignore_index: int, every: int, epochs: int) -> None:
        super().__init__()
        self.images, self.masks = images, masks
        self.palette, self.ignore_index = palette, ignore_index
        self.every, self.epochs = max(every, 1), epochs

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        last = epoch + 1 == self.epochs or self.model.stop_training
        if not (last or (epoch + 1) % self.every == 0) or len(self.images) == 0:
            return
        probs = self.model.predict(self.images, verbose=0)
        fig = overlay_figure(self.images, self.masks, np.argmax(probs, axis=-1).astype(np.uint8),
                             self.palette, self.ignore_index)
        mlflow.log_figure(fig, f"overlays/val_epoch_{epoch:03d}.png")
        close(fig)


class StopAtDeadline(keras.callbacks.Callback):
    """Ends training after the epoch that crosses ``deadline``: the trial keeps its best
    epoch so far and completes, instead of being lost to the budget."""

    def __init__(self, deadline: float, trial: optuna.Trial | None = None) -> None:
        super().__init__()
        self.deadline, self.trial = deadline, trial
        self.stopped_after: int | None = None

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if time.time() >= self.deadline:
            self.model.stop_training = True
            self.stopped_after = epoch + 1
            if self.trial is not None:
                self.trial.set_user_attr("stopped_by_budget_after_epoch", epoch + 1)
            log.info("tuning budget spent: training stops after epoch %d", epoch + 1)
