"""Window-by-window prediction with smooth blending, for scenes of any size.

The grid and the weights are those of the classic smooth-blending recipe (Chevalier, 2017):
reflect padding by ``window - step``, windows every ``step`` pixels, a squared-spline
window, optional averaging over the 8 flips/rotations (D4). Unlike that recipe it works on
any shape (non-square, smaller than one window) and never holds the scene's patches: it
walks the scene in horizontal strips one window high, keeps accumulators only for the rows
still open, and hands back finished blocks as soon as no later window touches them. Very wide
scenes are cut into vertical panels that share the windows on their seam, so memory depends
on the window and the panel width, not on the scene.

Weights are divided out exactly (sum of weights per pixel, which is separable because the
grid is), so with overlap 0.5 the result equals the classic recipe's and with any other
overlap it is still a proper weighted mean.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

#: (N, window, window, C) float32 -> (N, window, window, K) probabilities
PredictFn = Callable[[np.ndarray], np.ndarray]
#: (row0, row1, col0, col1), always inside the scene -> (rows, cols, C) raw pixels
ReadFn = Callable[[int, int, int, int], np.ndarray]
#: raw (rows, cols, C) -> (float32 model input, bool invalid mask (rows, cols))
PrepareFn = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]


def _triang(n: int) -> np.ndarray:
    """scipy.signal.windows.triang, without scipy."""
    half = np.arange(1, (n + 1) // 2 + 1, dtype=np.float64)
    if n % 2 == 0:
        w = (2 * half - 1.0) / n
        return np.concatenate([w, w[::-1]])
    w = 2 * half / (n + 1.0)
    return np.concatenate([w, w[-2::-1]])


def spline_window(size: int, power: int = 2) -> np.ndarray:
    """1-D squared-spline window; two copies half a window apart sum to a constant."""
    intersection = int(size / 4)
    tri = _triang(size)
    outer = (np.abs(2 * tri) ** power) / 2
    outer[intersection:size - intersection] = 0
    inner = 1 - (np.abs(2 * (tri - 1)) ** power) / 2
    inner[:intersection] = 0
    inner[size - intersection:] = 0
    window = inner + outer
    return window / np.average(window)


def reflect_indices(indices: np.ndarray, length: int) -> np.ndarray:
    """Map any integer positions into [0, length) as numpy's ``pad(mode="reflect")`` does."""
    if length == 1:
        return np.zeros_like(indices)
    period = 2 * (length - 1)
    folded = np.mod(indices, period)
    return np.where(folded >= length, period - folded, folded)


@dataclass(frozen=True)
class Grid:
    """Window origins along one axis: ``-pad + i * step`` for i in range(count)."""

    length: int
    window: int
    step: int

    @property
    def pad(self) -> int:
        return self.window - self.step

    @property
    def count(self) -> int:
        return (self.length - 1 + self.pad) // self.step + 1

    def origin(self, index: int) -> int:
        return -self.pad + index * self.step

    def weight_sum(self, weights: np.ndarray) -> np.ndarray:
        """Sum of window weights over every window covering each position in [0, length)."""
        total = np.zeros(self.length + 2 * self.window, dtype=np.float64)
        for i in range(self.count):
            start = self.origin(i) + self.window
            total[start:start + self.window] += weights
        return total[self.window:self.window + self.length]

    def final_before(self, index: int) -> int:
        """Positions below this are touched by no window after ``index``."""
        if index >= self.count - 1:
            return self.length
        return min(self.length, self.origin(index) + self.step)


def grid_step(window: int, overlap: float) -> int:
    if not 0.0 <= overlap < 1.0:
        raise ValueError(f"overlap must be in [0, 1), got {overlap}")
    return max(1, int(round(window * (1.0 - overlap))))


# D4: (rotation quarter-turns, mirror first). Applied to (N, H, W, C) batches on axes 1, 2.
D4 = [(k, mirror) for mirror in (False, True) for k in range(4)]


def _d4_forward(x: np.ndarray, k: int, mirror: bool) -> np.ndarray:
    if mirror:
        x = x[:, :, ::-1]
    return np.rot90(x, k, axes=(1, 2))


def _d4_inverse(y: np.ndarray, k: int, mirror: bool) -> np.ndarray:
    y = np.rot90(y, -k, axes=(1, 2))
    return y[:, :, ::-1] if mirror else y


def predict_batch(batch: np.ndarray, predict_fn: PredictFn, tta: bool) -> np.ndarray:
    """Probabilities for a batch of windows; with ``tta`` the mean over the D4 group."""
    if not tta:
        return np.asarray(predict_fn(batch), dtype=np.float32)
    total = None
    for k, mirror in D4:
        view = np.ascontiguousarray(_d4_forward(batch, k, mirror))
        out = _d4_inverse(np.asarray(predict_fn(view), dtype=np.float32), k, mirror)
        total = out.copy() if total is None else total + out
    return total / len(D4)


@dataclass(frozen=True)
class Block:
    """A finished piece of the output: rows/cols of the scene and its class probabilities."""

    row: int
    col: int
    probabilities: np.ndarray  # (h, w, K) float32
    invalid: np.ndarray  # (h, w) bool: input nodata/NaN


@dataclass(frozen=True)
class BlendOptions:
    window: int
    num_classes: int
    overlap: float = 0.5
    batch_size: int = 8
    tta: bool = False
    max_panel_width: int = 8192  # pixels of padded width held per strip

    @property
    def step(self) -> int:
        return grid_step(self.window, self.overlap)


def _panels(grid: Grid, max_width: int) -> list[tuple[int, int, int, int]]:
    """Split window columns into panels: (first window, end window, first col, end col out).

    Neighbouring panels repeat the windows on their seam so each panel can finish the
    columns it hands back on its own."""
    seam = math.ceil(grid.pad / grid.step)
    per_panel = max(seam + 1, (max_width - grid.window) // grid.step + 1)
    panels, first, col = [], 0, 0
    while True:
        end = min(grid.count, first + per_panel)
        col_end = grid.final_before(end - 1)
        panels.append((first, end, col, col_end))
        if end == grid.count:
            return panels
        first, col = end - seam, col_end


class _StripReader:
    """Model input for rows [top, top + window) of one panel, reflect-padded, rolling."""

    def __init__(self, read: ReadFn, prepare: PrepareFn, height: int, width: int,
                 col0: int, col1: int, window: int):
        self.read, self.prepare = read, prepare
        self.height, self.window = height, window
        cols = reflect_indices(np.arange(col0, col1), width)
        self.col_lo, self.col_hi = int(cols.min()), int(cols.max()) + 1
        contiguous = np.array_equal(cols, np.arange(self.col_lo, self.col_hi))
        self.col_take = None if contiguous else cols - self.col_lo
        self.data: np.ndarray | None = None
        self.invalid: np.ndarray | None = None

    def _rows(self, start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
        rows = reflect_indices(np.arange(start, stop), self.height)
        lo, hi = int(rows.min()), int(rows.max()) + 1
        raw = self.read(lo, hi, self.col_lo, self.col_hi)
        if not np.array_equal(rows, np.arange(lo, hi)):
            raw = raw[rows - lo]
        if self.col_take is not None:
            raw = raw[:, self.col_take]
        return self.prepare(raw)

    def advance(self, top: int, step: int) -> None:
        if self.data is None or step >= self.window:
            self.data, self.invalid = self._rows(top, top + self.window)
            return
        keep = self.window - step
        new_data, new_invalid = self._rows(top + keep, top + self.window)
        self.data[:keep] = self.data[step:]
        self.data[keep:] = new_data
        self.invalid[:keep] = self.invalid[step:]
        self.invalid[keep:] = new_invalid


def blend(read: ReadFn, height: int, width: int, predict_fn: PredictFn,
          prepare: PrepareFn, options: BlendOptions) -> Iterator[Block]:
    """Blended class probabilities of a ``height`` x ``width`` scene, as finished blocks.

    Blocks come panel by panel, top to bottom; together they tile the scene exactly once.
    """
    if height < 1 or width < 1:
        raise ValueError(f"empty scene: {height}x{width}")
    win, step = options.window, options.step
    rows, cols = Grid(height, win, step), Grid(width, win, step)
    weights_1d = spline_window(win)
    weights = (np.outer(weights_1d, weights_1d)[:, :, None]).astype(np.float32)
    row_sum = rows.weight_sum(weights_1d)
    col_sum = cols.weight_sum(weights_1d)

    for first, end, out_c0, out_c1 in _panels(cols, options.max_panel_width):
        if out_c1 <= out_c0:
            continue
        p0 = cols.origin(first)
        p1 = cols.origin(end - 1) + win
        strip = _StripReader(read, prepare, height, width, p0, p1, win)
        acc = np.zeros((win, p1 - p0, options.num_classes), dtype=np.float32)
        emitted = 0
        for i in range(rows.count):
            top = rows.origin(i)
            if i:
                acc[:win - step] = acc[step:] if step < win else 0
                acc[max(0, win - step):] = 0
            strip.advance(top, step)
            offsets = [cols.origin(j) - p0 for j in range(first, end)]
            for b in range(0, len(offsets), options.batch_size):
                chunk = offsets[b:b + options.batch_size]
                batch = np.stack([strip.data[:, o:o + win] for o in chunk])
                probs = predict_batch(batch, predict_fn, options.tta)
                probs *= weights
                for o, p in zip(chunk, probs, strict=True):
                    acc[:, o:o + win] += p
            done = rows.final_before(i)
            if done <= emitted:
                continue
            r0, r1 = emitted - top, done - top
            c0, c1 = out_c0 - p0, out_c1 - p0
            norm = (row_sum[emitted:done, None] * col_sum[None, out_c0:out_c1]).astype(np.float32)
            yield Block(emitted, out_c0, acc[r0:r1, c0:c1] / norm[:, :, None],
                        strip.invalid[r0:r1, c0:c1].copy())
            emitted = done


def blend_array(image: np.ndarray, predict_fn: PredictFn, prepare: PrepareFn,
                options: BlendOptions) -> tuple[np.ndarray, np.ndarray]:
    """(H, W, C) in memory -> ((H, W, K) probabilities, (H, W) invalid)."""
    height, width = image.shape[:2]
    probs = np.zeros((height, width, options.num_classes), dtype=np.float32)
    invalid = np.zeros((height, width), dtype=bool)

    def read(r0: int, r1: int, c0: int, c1: int) -> np.ndarray:
        return image[r0:r1, c0:c1]

    for block in blend(read, height, width, predict_fn, prepare, options):
        h, w = block.invalid.shape
        probs[block.row:block.row + h, block.col:block.col + w] = block.probabilities
        invalid[block.row:block.row + h, block.col:block.col + w] = block.invalid
    return probs, invalid
