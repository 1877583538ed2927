"""The background forward pass: results in order, inputs never overwritten while the model
reads them, the caller's work overlapping the model's, and errors reaching the caller."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from serving.blending import BlendOptions, DeadlinePassed, blend
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


def test_a_passed_deadline_stops_the_prediction_between_batches_and_says_how_far():
    """The server's abandoned requests (answered 504) must stop taking the cores: no batch
    starts once the deadline has passed, and the thread ends."""
    calls = []

    def model(batch):
        calls.append(len(batch))
        time.sleep(0.02)
        return pointwise_model(batch)

    image = np.zeros((160, 160, 2), np.float32)  # 21 x 21 windows: 221 batches of 2
    options = BlendOptions(window=16, num_classes=CLASSES, overlap=0.5, batch_size=2,
                           deadline=time.monotonic() + 0.3)
    with pytest.raises(DeadlinePassed, match=r"stopped after (\d+) of 221 batches") as error:
        blend_image(image, model, options)
    done = int(error.value.args[0].split("after ")[1].split(" of")[0])
    assert done < 221 and len(calls) <= done  # no batch after the check that stopped it
    assert not forward_threads(timeout=10)
    gone = BlendOptions(window=16, num_classes=CLASSES, overlap=0.5, batch_size=2,
                        deadline=time.monotonic() - 1)
    with pytest.raises(DeadlinePassed, match="stopped after 0 of 221 batches"):
        blend_image(image, model, gone)


def test_batches_are_counted_per_panel():
    """The count in the message is the batches the model is called with (without TTA, one
    call each), for a scene cut into panels that each end on a partial batch."""
    image = np.zeros((40, 100, 2), np.float32)
    late = BlendOptions(window=16, num_classes=CLASSES, overlap=0.5, batch_size=4,
                        max_panel_width=48, deadline=time.monotonic() - 1)
    with pytest.raises(DeadlinePassed) as error:
        blend_image(image, pointwise_model, late)
    announced = int(str(error.value).rsplit("of ", 1)[1].split()[0])
    calls = []

    def model(batch):
        calls.append(len(batch))
        return pointwise_model(batch)

    blend_image(image, model, BlendOptions(window=16, num_classes=CLASSES, overlap=0.5,
                                           batch_size=4, max_panel_width=48))
    assert announced == len(calls)
    assert 4 in calls and min(calls) < 4  # full batches, and partial ones at panel ends
