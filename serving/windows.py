"""Window geometry for blended prediction: the squared-spline window, the reflect-padded
grid of window origins, the D4 flips/rotations, and the option and block types."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from serving.pixels import PIXEL_UINTS

#: (N, window, window, C) float32 -> (N, window, window, K) probabilities. Called on the
#: prediction's own thread (serving/forward.py), so context set on the caller's thread (a
#: device scope) does not reach it; it must return a fresh array each call.
PredictFn = Callable[[np.ndarray], np.ndarray]
#: (row0, row1, col0, col1), always inside the scene -> (rows, cols, C) raw pixels
ReadFn = Callable[[int, int, int, int], np.ndarray]
#: (raw (rows, cols, C), out) -> (model input, bool invalid mask (rows, cols)). With ``out``
#: (an array of the model input's shape and dtype, from an earlier call) the input is written
#: there and ``out`` returned, so a rolling strip fills in place.
PrepareFn = Callable[[np.ndarray, np.ndarray | None], tuple[np.ndarray, np.ndarray]]


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


def take_reflected(data: np.ndarray, first: int, start: int, stop: int, length: int,
                   axis: int) -> np.ndarray:
    """Positions [start, stop) of an axis of ``length``, reflect-padded, from ``data`` that
    holds positions [first, first + data.shape[axis]) of it (all the reflected ones).

    Padding of less than the length is a descending slice, the inside and a descending slice
    copied whole, far cheaper than a gather over every pixel of a strip."""
    if start >= 0 and stop <= length:
        return _slice(data, axis, start - first, stop - first)
    if length < 2 or start < -(length - 1) or stop > 2 * length - 1:
        return np.take(data, reflect_indices(np.arange(start, stop), length) - first, axis)
    parts = []
    if start < 0:  # positions start..min(stop, 0)-1 are -start down to -min(stop, 0)+1
        parts.append(_slice(data, axis, -start - first, -min(stop, 0) - first, step=-1))
    if min(stop, length) > max(start, 0):
        parts.append(_slice(data, axis, max(start, 0) - first, min(stop, length) - first))
    if stop > length:  # positions max(start, length)..stop-1 are 2*length-2-position
        begin = 2 * length - 2 - max(start, length)
        parts.append(_slice(data, axis, begin - first, 2 * length - 2 - stop - first,
                            step=-1))
    return np.concatenate(parts, axis=axis)


def _slice(data: np.ndarray, axis: int, begin: int, end: int, step: int = 1) -> np.ndarray:
    """data[begin:end:step] along ``axis``; a descending ``end`` below 0 means "through 0"."""
    index = [slice(None)] * data.ndim
    index[axis] = slice(begin, None if end < 0 else end, step)
    return data[tuple(index)]


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


#: D4, the 8 flips/rotations of a square window: the 4 flips (rows, columns) of the window
#: and the 4 flips of its transpose. Each is its own inverse.
FLIPS = [(False, False), (True, False), (False, True), (True, True)]
D4 = [(transpose, *flip) for transpose in (False, True) for flip in FLIPS]


def _flip(x: np.ndarray, rows: bool, cols: bool) -> np.ndarray:
    return x[:, ::-1 if rows else 1, ::-1 if cols else 1]


def _transpose(x: np.ndarray) -> np.ndarray:
    return x.swapaxes(1, 2)


#: Item types that move one whole pixel (all its channels) in one go, by its size in bytes;
#: other sizes move as raw bytes (np.void), slower. Moved, never compared or computed on.
_PIXEL_ITEMS = {**PIXEL_UINTS, 16: np.complex128}


def _move(x: np.ndarray, out: np.ndarray, move, *args) -> np.ndarray:
    """``move(x, *args)``, a reordering of the pixels of (N, H, W, C) ``x``, copied into
    C-contiguous ``out``. Each pixel moves as one item (its bytes are copied, never
    reinterpreted as numbers): moving arrays of C small values is several times slower."""
    x = np.ascontiguousarray(x)
    size = x.shape[-1] * x.itemsize
    item = _PIXEL_ITEMS.get(size, np.dtype((np.void, size)))
    np.copyto(out.view(item)[..., 0], move(x.view(item)[..., 0], *args))
    return out


def _add_moved(total: np.ndarray, x: np.ndarray, move, *args,
               buffer: np.ndarray) -> None:
    """``total += move(x, *args)``: in one pass where the move keeps the pixels of a row in
    order (a row flip), else moved whole pixels at a time into ``buffer`` first (an add over
    a moved view would run its inner loop over the C values of each pixel)."""
    moved = move(x, *args)
    if moved.strides[-2:] == x.strides[-2:]:
        total += moved
    else:
        total += _move(x, buffer, move, *args)


def predict_views(batch: np.ndarray, predict_fn: PredictFn, tta: bool) -> np.ndarray:
    """Probabilities for a batch; with ``tta`` the mean over its 8 D4 views.

    D4 is walked as the 4 flips of the batch and the 4 flips of its transpose, and the
    outputs are summed in the order that undoes the fewest costly moves: the batch is
    transposed once and the sum of the transposed views' outputs transposed back once, and
    the two column-flipped outputs of each half are summed before their columns are flipped
    back. A transpose or a column flip scatters pixels across cache lines; a row flip moves
    whole rows. At most four outputs and one buffer of an output's size are held at a time."""
    if not tta:
        out = np.asarray(predict_fn(batch), dtype=np.float32)
        # weighted in place next; np.asarray of a raw JAX array is read-only
        return out if out.flags.writeable else out.copy()
    view = np.empty(batch.shape, batch.dtype)
    transposed = np.empty(batch.shape, batch.dtype)

    def forward(source: np.ndarray, rows: bool, cols: bool) -> np.ndarray:
        out = np.asarray(predict_fn(_move(source, view, _flip, rows, cols)
                                    if rows or cols else source), dtype=np.float32)
        # summed into in place; predict_fn answers a fresh array
        return out if out.flags.writeable and out.flags.c_contiguous else out.copy()

    total = moved = None
    for transpose in (False, True):
        source = _move(batch, transposed, _transpose) if transpose else batch
        half = forward(source, False, False)
        moved = np.empty_like(half) if moved is None else moved
        _add_moved(half, forward(source, True, False), _flip, True, False, buffer=moved)
        flipped = forward(source, False, True)  # sum of the column-flipped views
        _add_moved(flipped, forward(source, True, True), _flip, True, False, buffer=moved)
        _add_moved(half, flipped, _flip, False, True, buffer=moved)
        if total is None:
            total = half
        else:
            _add_moved(total, half, _transpose, buffer=moved)
    total /= len(D4)
    return total


@dataclass(frozen=True)
class Block:
    """A finished piece of the output at rows/cols of the scene: class probabilities, kept
    as their weighted sum and the sum of weights so a mask needs no division. The sum of
    weights is separable (the grid is), so it is kept as its row and column factors.

    ``weighted`` is a view of the predictor's row accumulator, which is reused once the
    consumer asks for the next block: copy what you keep."""

    row: int
    col: int
    weighted: np.ndarray  # (h, w, K) float32: window-weighted sum of probabilities
    row_weight: np.ndarray  # (h,) float32 } their outer product is the sum of the window
    col_weight: np.ndarray  # (w,) float32 } weights at each pixel, > 0
    invalid: np.ndarray  # (h, w) bool: input nodata/NaN

    @property
    def weight(self) -> np.ndarray:
        """(h, w) float32 sum of the window weights."""
        return np.outer(self.row_weight, self.col_weight)

    @property
    def probabilities(self) -> np.ndarray:
        return self.weighted / self.weight[:, :, None]


class DeadlinePassed(RuntimeError):
    """A prediction stopped between two batches because its deadline had passed (its client
    was already answered 504); the message says how far it got."""


#: Pixels of padded width one strip holds; wider scenes are cut into panels.
MAX_PANEL_WIDTH = 8192


@dataclass(frozen=True)
class BlendOptions:
    """How one prediction is blended; overlap and batch size come from the model's
    ServingConfig (serving.config.ServingOptions holds their defaults) or the caller."""

    window: int
    num_classes: int
    overlap: float
    batch_size: int
    tta: bool = False
    max_panel_width: int = MAX_PANEL_WIDTH
    #: ``time.monotonic()`` after which no further batch starts (DeadlinePassed); None: none
    deadline: float | None = None

    @property
    def step(self) -> int:
        return grid_step(self.window, self.overlap)


def panels(grid: Grid, max_width: int) -> list[tuple[int, int, int, int]]:
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
