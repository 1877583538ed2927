"""Blended prediction with a model's own normalization and classes: arrays and rasterio
datasets in, probabilities or class masks out. File output lives in serving/scene.py."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Literal

import numpy as np
from rasterio.windows import Window

from serving.blending import BlendOptions, Block, PredictFn, array_reader, blend
from serving.config import ServingConfig
from serving.pixels import invalid_pixels, normalize_image

Output = Literal["mask", "probabilities"]


def keras_predict_fn(model) -> PredictFn:
    """Forward pass of a Keras model, one call at a time (the scoring server runs requests in
    threads; TensorFlow already spreads one call over the cores)."""
    lock = threading.Lock()

    def predict(batch: np.ndarray) -> np.ndarray:
        with lock:
            return np.asarray(model.predict_on_batch(batch))

    return predict


class ScenePredictor:
    """A forward pass plus the ServingConfig that turns raw pixels into its input.

    ``normalize=False`` hands raw pixels to ``predict_fn`` (a remote server normalizes)."""

    def __init__(self, predict_fn: PredictFn, config: ServingConfig, normalize: bool = True):
        self.predict_fn = predict_fn
        self.config = config
        self.normalize = normalize

    def options(self, tta: bool = False, overlap: float | None = None,
                batch_size: int | None = None, max_panel_width: int = 8192) -> BlendOptions:
        return BlendOptions(
            window=self.config.patch_size, num_classes=self.config.num_classes,
            overlap=self.config.overlap if overlap is None else overlap,
            batch_size=batch_size or self.config.batch_size, tta=tta,
            max_panel_width=max_panel_width)

    def warm_up(self) -> None:
        """Trace the forward pass for a full and a partial batch before real work: Keras then
        generalizes the batch dimension, so later partial batches do not retrace."""
        side, bands = self.config.patch_size, self.config.in_channels
        for size in sorted({self.config.batch_size, 1}, reverse=True):
            self.predict_fn(np.zeros((size, side, side, bands), np.float32))

    def _prepare(self, nodata: float | None):
        mean, std = self.config.mean, self.config.std

        def prepare(raw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            invalid = invalid_pixels(raw, nodata)
            if not self.normalize:
                return np.array(raw), invalid
            return normalize_image(raw, mean, std, nodata, invalid), invalid

        return prepare

    def to_mask(self, scores: np.ndarray, invalid: np.ndarray) -> np.ndarray:
        """Class ids from (H, W, K) probabilities, or any positive per-pixel multiple of
        them such as a Block's ``weighted``; ignore_index where the input was invalid."""
        mask = np.argmax(scores, axis=-1).astype(np.uint8)
        mask[invalid] = self.config.ignore_index
        return mask

    def block_mask(self, block: Block) -> np.ndarray:
        """A finished block's class ids: every mask (arrays, scenes, the server) comes from
        here, so ties that the division would round away break the same way everywhere."""
        return self.to_mask(block.weighted, block.invalid)

    def predict_array(self, image: np.ndarray, *, tta: bool = False,
                      overlap: float | None = None, output: Output = "mask",
                      nodata: float | None = None) -> np.ndarray:
        """(H, W, C) raw pixels -> (H, W) uint8 mask or (H, W, K) float32 probabilities."""
        nodata = self.config.nodata if nodata is None else nodata
        height, width = image.shape[:2]
        blocks = blend(array_reader(image), height, width, self.predict_fn,
                       self._prepare(nodata), self.options(tta, overlap))
        return self.assemble(blocks, height, width, output)

    def assemble(self, blocks: Iterator[Block], height: int, width: int,
                 output: Output = "mask") -> np.ndarray:
        """Finished blocks -> one (H, W) uint8 mask or (H, W, K) float32 probabilities."""
        if output == "probabilities":
            result = np.empty((height, width, self.config.num_classes), np.float32)
        else:
            result = np.empty((height, width), np.uint8)
        for block in blocks:
            h, w = block.invalid.shape
            where = (slice(block.row, block.row + h), slice(block.col, block.col + w))
            result[where] = (block.probabilities if output == "probabilities"
                             else self.block_mask(block))
        return result

    def iter_dataset(self, dataset, *, tta: bool = False, overlap: float | None = None,
                     batch_size: int | None = None, max_panel_width: int = 8192,
                     region: Window | None = None) -> Iterator[Block]:
        """Finished blocks of a rasterio dataset, read window by window (all bands).

        ``region`` restricts prediction to a window of the dataset; block rows and columns
        are then relative to it and its edges are reflect-padded like the scene's."""
        nodata = dataset.nodata if dataset.nodata is not None else self.config.nodata
        if region is None:
            region = Window(0, 0, dataset.width, dataset.height)
        row_off, col_off = int(region.row_off), int(region.col_off)

        def read(r0: int, r1: int, c0: int, c1: int) -> np.ndarray:
            data = dataset.read(window=Window(col_off + c0, row_off + r0, c1 - c0, r1 - r0))
            return np.moveaxis(data, 0, -1)

        yield from blend(read, int(region.height), int(region.width), self.predict_fn,
                         self._prepare(nodata),
                         self.options(tta, overlap, batch_size, max_panel_width))
