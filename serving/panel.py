"""The moving parts of blended prediction over one panel of a scene: a rolling strip of
model input and the open rows of accumulated probabilities."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from serving.forward import ForwardQueue
from serving.windows import (
    BlendOptions,
    Block,
    Grid,
    PrepareFn,
    ReadFn,
    reflect_indices,
    take_reflected,
)


class StripReader:
    """Model input for rows [top, top + window) of one panel, reflect-padded, rolling."""

    def __init__(self, read: ReadFn, prepare: PrepareFn, height: int, width: int,
                 col0: int, col1: int, window: int):
        self.read, self.prepare = read, prepare
        self.height, self.width, self.window = height, width, window
        self.cols = col0, col1
        reflected = reflect_indices(np.arange(col0, col1), width)
        self.col_lo, self.col_hi = int(reflected.min()), int(reflected.max()) + 1
        self.data: np.ndarray | None = None
        self.invalid: np.ndarray | None = None

    def _rows(self, start: int, stop: int,
              out: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        rows = reflect_indices(np.arange(start, stop), self.height)
        lo, hi = int(rows.min()), int(rows.max()) + 1
        raw = self.read(lo, hi, self.col_lo, self.col_hi)
        raw = take_reflected(raw, lo, start, stop, self.height, axis=0)
        raw = take_reflected(raw, self.col_lo, *self.cols, self.width, axis=1)
        return self.prepare(raw, out)

    def advance(self, top: int, step: int) -> None:
        if self.data is None:
            self.data, self.invalid = self._rows(top, top + self.window)
            return
        if step >= self.window:
            self.invalid = self._rows(top, top + self.window, self.data)[1]
            return
        keep = self.window - step
        self.data[:keep] = self.data[step:]
        self.invalid[:keep] = self.invalid[step:]
        self.invalid[keep:] = self._rows(top + keep, top + self.window, self.data[keep:])[1]


@dataclass
class _OpenRow:
    """Accumulated weighted probabilities of one window row, rows [top, top + window)."""

    top: int
    acc: np.ndarray  # (window, panel width, K)
    invalid: np.ndarray  # (window, panel width)
    remaining: int  # windows of this row not yet predicted


class Panel:
    """Blends one panel. Windows are batched across window rows, so every forward pass but
    the panel's last is a full batch; a row is finished once its windows are all in and the
    rows above it are finished, then its overlap with the next row is carried down. The
    model runs one batch ahead (ForwardQueue) while this blends the batch before."""

    def __init__(self, rows: Grid, options: BlendOptions, weights: np.ndarray,
                 forward: ForwardQueue[list[tuple[int, int]]], out_cols: tuple[int, int],
                 panel_col: int, row_sum: np.ndarray, col_sum: np.ndarray):
        self.rows, self.options, self.weights = rows, options, weights
        self.forward = forward
        self.out_c0, self.out_c1 = out_cols
        self.c0, self.c1 = out_cols[0] - panel_col, out_cols[1] - panel_col
        self.row_sum = row_sum.astype(np.float32)
        self.col_sum = col_sum[out_cols[0]:out_cols[1]].astype(np.float32)
        self.emitted = 0
        self.open: dict[int, _OpenRow] = {}
        # Accumulators of closed rows, reused: a fresh one costs page faults on every row.
        self.spare: list[np.ndarray] = []
        self.carry: np.ndarray | None = None
        self.queue: list[tuple[int, int]] = []  # (window row, column offset) in the batch

    def add_row(self, index: int, strip: StripReader, offsets: list[int]) -> Iterator[int]:
        """Queue the windows of row ``index``; yields rows finished meanwhile."""
        win, keep = self.options.window, self.options.window - self.options.step
        shape = (win, strip.data.shape[1], self.options.num_classes)
        acc = self.spare.pop() if self.spare else np.empty(shape, np.float32)
        if self.carry is not None and keep > 0:
            acc[:keep] = self.carry
            acc[keep:] = 0.0
        else:
            acc.fill(0.0)
        self.carry = None
        self.open[index] = _OpenRow(self.rows.origin(index), acc, strip.invalid.copy(),
                                    len(offsets))
        window_shape = (win, win, strip.data.shape[2])
        batch = self.forward.batch(window_shape, strip.data.dtype)
        for offset in offsets:
            batch[len(self.queue)] = strip.data[:, offset:offset + win]
            self.queue.append((index, offset))
            if len(self.queue) == self.options.batch_size:
                yield from self._submit()
                batch = self.forward.batch(window_shape, strip.data.dtype)

    def flush(self) -> Iterator[int]:
        """Predict what is still queued and wait for every batch; yields the last rows."""
        if self.queue:
            yield from self._submit()
        yield from self._blend(self.forward.drain_all())

    def _submit(self) -> Iterator[int]:
        queued, self.queue = self.queue, []
        yield from self._blend(self.forward.submit(len(queued), queued))

    def _blend(self, results: list[tuple[np.ndarray, list[tuple[int, int]]]]) -> Iterator[int]:
        win = self.options.window
        for probs, windows in results:
            for (index, offset), p in zip(windows, probs, strict=True):
                row = self.open[index]
                # weighted window by window, so it is still in the core's cache when added
                p *= self.weights
                row.acc[:, offset:offset + win] += p
                row.remaining -= 1
        while self.open:
            first = min(self.open)
            if self.open[first].remaining:
                return
            yield first

    def _close_row(self, index: int) -> _OpenRow:
        """Close a finished row; its overlap with the rows below moves to the next row."""
        row = self.open.pop(index)
        step, keep = self.options.step, self.options.window - self.options.step
        if keep > 0:
            if index + 1 in self.open:
                self.open[index + 1].acc[:keep] += row.acc[step:]
            else:
                self.carry = row.acc[step:].copy()
        return row

    def blocks(self, done_rows: Iterator[int]) -> Iterator[Block]:
        """Output blocks for finished rows: the rows no later window touches."""
        for index in done_rows:
            row = self._close_row(index)
            done = self.rows.final_before(index)
            if done > self.emitted:
                r0, r1 = self.emitted - row.top, done - row.top
                yield Block(self.emitted, self.out_c0, row.acc[r0:r1, self.c0:self.c1],
                            self.row_sum[self.emitted:done], self.col_sum,
                            row.invalid[r0:r1, self.c0:self.c1])
                self.emitted = done
            # the consumer asked for the next block, so it is done with this row's view
            self.spare.append(row.acc)
