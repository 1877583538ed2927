"""The background forward pass: results in order, inputs never overwritten while the model
reads them, the caller's work overlapping the model's, and errors reaching the caller."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from serving.blending import BlendOptions, blend
from serving.forward import ForwardQueue
from tests.serving.test_blending import CLASSES, blend_image, identity_prepare, pointwise_model


def forward_threads(timeout: float = 0.0) -> list[threading.Thread]:
    """Forward threads still alive after waiting up to ``timeout`` seconds for them."""
    threads = [t for t in threading.enumerate() if t.name.startswith("segpipe-forward")]
    for thread in threads:
        thread.join(timeout)
    return [t for t in threads if t.is_alive()]


def slow_copy(batch: np.ndarray) -> np.ndarray:
    """Reads its input only after a pause, so a buffer refilled too early would show."""
    time.sleep(0.01)
    return batch.copy()


def test_results_come_back_in_order_with_the_inputs_they_were_given():
    results = []
    with ForwardQueue(slow_copy, tta=False, batch_size=4) as forward:
        for value in range(10):
            batch = forward.batch((2, 2, 1), np.float32)
            batch[:] = value
            results += forward.submit(3, value)
        results += forward.drain_all()
    assert [tag for _, tag in results] == list(range(10))
    for probs, tag in results:
        assert probs.shape == (3, 2, 2, 1)
        assert (probs == tag).all()


def test_the_model_runs_while_the_caller_reads_the_next_strip():
    forward_spans, reads = [], []

    def model(batch):
        start = time.perf_counter()
        time.sleep(0.05)
        forward_spans.append((start, time.perf_counter()))
        return pointwise_model(batch)

    image = np.random.default_rng(0).normal(size=(64, 64, 2)).astype(np.float32)

    def read(r0, r1, c0, c1):
        reads.append(time.perf_counter())
        return image[r0:r1, c0:c1]

    options = BlendOptions(window=16, num_classes=CLASSES, overlap=0.5, batch_size=4)
    blocks = list(blend(read, 64, 64, model, identity_prepare, options))
    assert blocks
    overlapped = [t for t in reads if any(a < t < b for a, b in forward_spans)]
    assert overlapped, "no strip was read while a forward pass was running"
    assert not forward_threads()


def test_a_failing_model_raises_at_once_and_leaves_no_thread():
    calls = []

    def model(batch):
        calls.append(len(batch))
        if len(calls) == 3:
            time.sleep(0.3)  # the next batch is queued meanwhile and starts on the error
            raise RuntimeError("device lost")
        if len(calls) > 3:
            time.sleep(3)
        return pointwise_model(batch)

    image = np.zeros((64, 64, 2), np.float32)
    options = BlendOptions(window=16, num_classes=CLASSES, overlap=0.5, batch_size=2)
    start = time.perf_counter()
    with pytest.raises(RuntimeError, match="device lost"):
        blend_image(image, model, options)
    assert time.perf_counter() - start < 2, "the error waited for the next forward pass"
    assert not forward_threads(timeout=10)
    assert len(calls) == 4  # the pass in progress ran to its end; nothing started after it


def test_stopping_early_ends_the_thread():
    options = BlendOptions(window=16, num_classes=CLASSES, overlap=0.5, batch_size=2)

    def read(r0, r1, c0, c1):
        return np.zeros((r1 - r0, c1 - c0, 2), np.float32)

    blocks = blend(read, 200, 200, pointwise_model, identity_prepare, options)
    next(blocks)
    blocks.close()
    assert not forward_threads()


def test_a_model_answering_read_only_arrays_is_blended():
    def model(batch):
        out = pointwise_model(batch)
        out.flags.writeable = False  # as np.asarray of a raw JAX array is
        return out

    image = np.random.default_rng(4).normal(size=(40, 50, 2)).astype(np.float32)
    options = BlendOptions(window=16, num_classes=CLASSES, overlap=0.5, batch_size=3)
    probs = blend_image(image, model, options)
    np.testing.assert_allclose(probs, pointwise_model(image), atol=1e-5)
