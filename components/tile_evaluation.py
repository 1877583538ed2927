"""Tile-level evaluation: each tile of a split predicted on its own, as training's
validation sees them, for comparison with the scene-level headline
(components/scene_evaluation.py)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from components.artifacts import SplitName
from components.dataset_paths import PreparedDataset, read_tile
from segmodels import confusion_matrix
from serving.pixels import normalize_image
from serving.predict import ScenePredictor

#: (N, H, W, C) raw tiles -> (N, H, W) class ids; ids >= K mark pixels the model refused.
PredictTiles = Callable[[np.ndarray], np.ndarray]


def split_confusion(dataset: PreparedDataset, split: SplitName, predict: PredictTiles,
                    batch_size: int) -> np.ndarray:
    """(K, K) confusion matrix over every labelled pixel of ``split``'s tiles, read raw and
    predicted ``batch_size`` at a time. Pixels the model refuses (ids >= K, its own nodata)
    are left out of the count, as are ignored labels."""
    classes = dataset.class_map
    k, ignore = classes.num_classes, classes.ignore_index
    cm = np.zeros((k, k), dtype=np.int64)
    ids = dataset.tile_ids(split)
    for first in range(0, len(ids), batch_size):
        tiles = [read_tile(dataset.tiles_dir, i) for i in ids[first:first + batch_size]]
        masks = np.stack([mask for _, mask in tiles])
        predicted = np.asarray(predict(np.stack([image for image, _ in tiles])))
        if predicted.shape != masks.shape:
            raise ValueError(f"prediction shape {predicted.shape} for tiles of shape "
                             f"{masks.shape}")
        keep = predicted < k
        cm += confusion_matrix(np.where(keep, masks, ignore), np.where(keep, predicted, 0), k,
                               ignore).astype(np.int64)
    return cm


def tile_predictor(predictor: ScenePredictor) -> PredictTiles:
    """Class ids of raw tiles of the model's window size, each on its own (no blending), from
    the served forward pass with the model's own statistics: what training's validation
    sees."""
    config = predictor.config

    def predict(images: np.ndarray) -> np.ndarray:
        if images.shape[1:3] != (config.patch_size, config.patch_size):
            # An OpenVINO export takes its window size only; blending would hide the edges.
            raise ValueError(f"tiles of {images.shape[2]}x{images.shape[1]} px, the model "
                             f"takes {config.patch_size} px windows")
        x = normalize_image(images, config.mean, config.std, config.nodata)
        return np.argmax(np.asarray(predictor.predict_fn(x)), axis=-1)

    return predict
