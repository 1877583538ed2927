"""Prediction at the resolution a model was trained at, answered on the input's own grid.

A model trained on scenes resampled by ``scale`` (or to ``gsd`` metres per pixel) sees the
input on a *model grid*: the input's extent at ``round(size * factor)`` pixels, read with
GDAL's Lanczos exactly as the tiling step read the training tiles (a fractional source
window per strip, so strips join seamlessly and memory stays bounded). Blended blocks on that
grid go back to the input grid by nearest neighbour: every input pixel takes the class (or
the probabilities) of the model pixel its centre falls in, so a mask and the argmax of the
probabilities always agree. Which input pixels are invalid is decided on the input grid."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
from rasterio.enums import Resampling
from rasterio.windows import Window

from serving.config import ServingConfig
from serving.windows import Block

#: Resampling of the input to the model grid; the tiling step uses the same.
IMAGE_RESAMPLING = Resampling.lanczos


def resample_factor(config: ServingConfig, dataset=None) -> float:
    """Model pixels per input pixel along each axis (0.5: the model sees half the pixels).

    ``config.gsd`` decides for inputs in a projected CRS (input pixel size / gsd, in metres);
    anything else (plain images, tensors, geographic CRSs) is resampled by ``config.scale``."""
    crs = getattr(dataset, "crs", None)
    if config.gsd is None or crs is None or not crs.is_projected:
        return config.scale
    transform = dataset.transform
    pixel = math.sqrt(abs(transform.a * transform.e - transform.b * transform.d))
    return pixel * crs.linear_units_factor[1] / config.gsd


def _nearest(length: int, model_length: int) -> np.ndarray:
    """For each input pixel, the model pixel its centre falls in (integer arithmetic)."""
    return (2 * np.arange(length, dtype=np.int64) + 1) * model_length // (2 * length)


@dataclass(frozen=True)
class ModelGrid:
    """An input of ``height`` x ``width`` pixels on the model's grid."""

    height: int
    width: int
    factor: float
    rows: int = field(init=False)
    cols: int = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "rows", max(1, round(self.height * self.factor)))
        object.__setattr__(self, "cols", max(1, round(self.width * self.factor)))

    # Computed on first use: a header's claimed size is checked (``pixels``) before any
    # array of that size exists.
    @cached_property
    def _row_of(self) -> np.ndarray:
        return _nearest(self.height, self.rows)

    @cached_property
    def _col_of(self) -> np.ndarray:
        return _nearest(self.width, self.cols)

    @property
    def pixels(self) -> int:
        """The larger of the input's and the model grid's pixel counts: what a limit on
        the work checks."""
        return max(self.height * self.width, self.rows * self.cols)

    def describe(self) -> str:
        text = f"{self.width}x{self.height}"
        if self.identity:
            return text
        return f"{text} ({self.cols}x{self.rows} at the model's resolution)"

    @property
    def identity(self) -> bool:
        return (self.rows, self.cols) == (self.height, self.width)

    def source_window(self, r0: int, r1: int, c0: int, c1: int) -> Window:
        """The input area (fractional pixels) of model rows [r0, r1) and cols [c0, c1)."""
        sy, sx = self.height / self.rows, self.width / self.cols
        return Window(c0 * sx, r0 * sy, (c1 - c0) * sx, (r1 - r0) * sy)

    def to_input(self, block: Block,
                 invalid: Callable[[int, int, int, int], np.ndarray]) -> Block | None:
        """A model-grid block as the input pixels whose centres fall in it (None if none do);
        ``invalid(r0, r1, c0, c1)`` gives the input grid's invalid pixels there."""
        h, w = block.invalid.shape
        rows, cols = self._row_of, self._col_of
        r0, r1 = np.searchsorted(rows, [block.row, block.row + h])
        c0, c1 = np.searchsorted(cols, [block.col, block.col + w])
        if r0 == r1 or c0 == c1:
            return None
        pick_rows, pick_cols = rows[r0:r1] - block.row, cols[c0:c1] - block.col
        return Block(int(r0), int(c0), block.weighted[np.ix_(pick_rows, pick_cols)],
                     block.row_weight[pick_rows], block.col_weight[pick_cols],
                     invalid(int(r0), int(r1), int(c0), int(c1)))
