"""Forward passes on a background thread, one batch ahead of the blending.

The model call releases the GIL (TensorFlow, JAX and an HTTP request alike), so while it runs
on one batch the caller blends the batch before it, reads the next strip and fills the next
batch. The blending then adds little wall time to the model's own: on a GPU it runs beside
the model; on a CPU it takes what the model leaves of the cores."""

from __future__ import annotations

import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Generic, TypeVar

import numpy as np

from serving.windows import DeadlinePassed, PredictFn, predict_views

Tag = TypeVar("Tag")


class ForwardQueue(Generic[Tag]):
    """Batches go in through ``batch()`` + ``submit()``, probabilities come out in order
    (D4-averaged with ``tta``; the worker keeps running sums, so at most four views'
    outputs are held at a time).

    Two input buffers alternate: one is being read by the model while the other is filled.
    ``submit`` therefore waits for every earlier batch, so at most one is in flight while the
    caller works; use as a context manager so the thread ends with the prediction.

    Past ``deadline`` (``time.monotonic()``) ``submit`` raises DeadlinePassed instead of
    starting another batch; ``expected`` (the batches the whole prediction takes) is only for
    its message."""

    def __init__(self, predict_fn: PredictFn, tta: bool, batch_size: int,
                 deadline: float | None = None, expected: int | None = None):
        self.predict_fn, self.tta, self.batch_size = predict_fn, tta, batch_size
        self.deadline, self.expected, self.submitted = deadline, expected, 0
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="segpipe-forward")
        self._buffers: list[np.ndarray] = []
        self._pending: deque[tuple[Future, Tag]] = deque()

    def batch(self, window_shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
        """The buffer to fill next: (batch_size, *window_shape)."""
        shape = (self.batch_size, *window_shape)
        if not self._buffers:
            self._buffers = [np.empty(shape, dtype) for _ in range(2)]
        elif self._buffers[0].shape != shape or self._buffers[0].dtype != dtype:
            raise ValueError(f"windows of {window_shape} {np.dtype(dtype)} after "
                             f"{self._buffers[0].shape[1:]} {self._buffers[0].dtype}")
        return self._buffers[0]

    def submit(self, count: int, tag: Tag) -> list[tuple[np.ndarray, Tag]]:
        """Start the model on the first ``count`` windows of ``batch()``; returns the
        (probabilities, tag) of every earlier batch, which frees the other buffer."""
        if self.deadline is not None and time.monotonic() > self.deadline:
            of = f" of {self.expected}" if self.expected is not None else ""
            raise DeadlinePassed(f"the request's deadline passed: stopped after "
                                 f"{self.submitted}{of} batches")
        inputs = self._buffers[0][:count]
        self.submitted += 1
        future = self._pool.submit(predict_views, inputs, self.predict_fn, self.tta)
        self._pending.append((future, tag))
        self._buffers.reverse()
        return self._collect(keep=1)

    def drain_all(self) -> list[tuple[np.ndarray, Tag]]:
        return self._collect(keep=0)

    def _collect(self, keep: int) -> list[tuple[np.ndarray, Tag]]:
        done = []
        while len(self._pending) > keep:
            future, tag = self._pending.popleft()
            done.append((future.result(), tag))
        return done

    def close(self, wait: bool = True) -> None:
        """End the thread; ``wait=False`` returns at once (the pass in progress still runs
        to its end, and nothing after it starts)."""
        self._pending.clear()
        self._pool.shutdown(wait=wait, cancel_futures=True)

    def __enter__(self) -> ForwardQueue[Tag]:
        return self

    def __exit__(self, exc_type, exc, traceback) -> None:
        # On an error (a failed pass, Ctrl-C) do not wait for the next pass too: with TTA or
        # a slow --endpoint that would delay the error by a whole batch.
        failed = exc_type is not None and not issubclass(exc_type, GeneratorExit)
        self.close(wait=not failed)
