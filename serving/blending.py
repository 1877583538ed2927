"""Window-by-window prediction with smooth blending, for scenes of any size.

The grid and the weights are those of the classic smooth-blending recipe (Chevalier, 2017):
reflect padding by ``window - step``, windows every ``step`` pixels, a squared-spline
window, optional averaging over the 8 flips/rotations (D4). Unlike that recipe it works on
any shape (non-square, smaller than one window) and never holds the scene's patches: it
walks the scene in horizontal strips one window high, keeps accumulators only for the rows
still open, and hands back finished blocks as soon as no later window touches them. Very wide
scenes are cut into vertical panels that share the windows on their seam, so memory depends
on the window and the panel width, not on the scene.

Probabilities are divided by the exact sum of weights per pixel (separable because the grid
is), so with overlap 0.5 the result equals the classic recipe's and with any other overlap it
is still a proper weighted mean. Masks skip the division: it does not change the argmax.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np

from serving.forward import ForwardQueue
from serving.panel import Panel, StripReader
from serving.windows import (
    D4,
    MAX_PANEL_WIDTH,
    BlendOptions,
    Block,
    DeadlinePassed,
    Grid,
    PredictFn,
    PrepareFn,
    ReadFn,
    grid_step,
    panels,
    reflect_indices,
    spline_window,
)

__all__ = ["D4", "MAX_PANEL_WIDTH", "BlendOptions", "Block", "DeadlinePassed", "Grid",
           "PredictFn", "PrepareFn", "ReadFn", "array_reader", "assemble", "blend", "grid_step",
           "panels", "reflect_indices", "spline_window"]


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
    # Repeated over classes, not broadcast: numpy multiplies 8x faster without a stride-0
    # innermost axis, and this multiply runs once per window.
    weights = np.repeat(np.outer(weights_1d, weights_1d)[:, :, None], options.num_classes,
                        axis=2).astype(np.float32)
    row_sum = rows.weight_sum(weights_1d)
    col_sum = cols.weight_sum(weights_1d)
    parts = [part for part in panels(cols, options.max_panel_width) if part[3] > part[2]]
    # each panel's windows go in full batches, and its last batch holds the rest
    batches = sum(-(-rows.count * (end - first) // options.batch_size)
                  for first, end, _, _ in parts)

    with ForwardQueue(predict_fn, options.tta, options.batch_size, options.deadline,
                      batches) as forward:
        for first, end, out_c0, out_c1 in parts:
            p0 = cols.origin(first)
            strip = StripReader(read, prepare, height, width, p0, cols.origin(end - 1) + win,
                                win)
            offsets = [cols.origin(j) - p0 for j in range(first, end)]
            panel = Panel(rows, options, weights, forward, (out_c0, out_c1), p0, row_sum,
                          col_sum)
            for i in range(rows.count):
                strip.advance(rows.origin(i), step)
                yield from panel.blocks(panel.add_row(i, strip, offsets))
            yield from panel.blocks(panel.flush())


def array_reader(image: np.ndarray) -> ReadFn:
    """A ReadFn over an (H, W, C) array in memory."""

    def read(r0: int, r1: int, c0: int, c1: int) -> np.ndarray:
        return image[r0:r1, c0:c1]

    return read


def assemble(blocks: Iterator[Block], height: int, width: int, num_classes: int,
             block_mask: Callable[[Block], np.ndarray] | None = None) -> np.ndarray:
    """Finished blocks -> one (H, W, K) float32 array of probabilities (all 0 where the input
    was invalid), or with ``block_mask`` the (H, W) uint8 mask it gives each block."""
    if block_mask is None:
        result = np.empty((height, width, num_classes), np.float32)
    else:
        result = np.empty((height, width), np.uint8)
    for block in blocks:
        h, w = block.invalid.shape
        where = result[block.row:block.row + h, block.col:block.col + w]
        if block_mask is not None:
            where[...] = block_mask(block)
            continue
        np.divide(block.weighted, block.weight[:, :, None], out=where)
        where[block.invalid] = 0.0
    return result
