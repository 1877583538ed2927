"""The windowed predictor against the classic smooth-blending code and against models whose
right answer is known for any shape."""

from __future__ import annotations

import numpy as np
import pytest

from serving.blending import (
    BlendOptions,
    Grid,
    array_reader,
    assemble,
    blend,
    reflect_indices,
)
from serving.windows import predict_views, take_reflected
from tests.serving.chevalier import predict_img_with_smooth_windowing

CLASSES = 3


def identity_prepare(raw, out=None):
    if out is None:
        out = np.empty(raw.shape, np.float32)
    out[...] = raw
    return out, np.zeros(raw.shape[:2], bool)


def blend_image(image: np.ndarray, predict_fn, options: BlendOptions) -> np.ndarray:
    """(H, W, C) in memory -> (H, W, K) blended probabilities."""
    height, width = image.shape[:2]
    blocks = blend(array_reader(image), height, width, predict_fn, identity_prepare, options)
    return assemble(blocks, height, width, options.num_classes)


def pointwise_model(batch: np.ndarray) -> np.ndarray:
    """Softmax of a fixed per-pixel linear map: blending must give back exactly this."""
    weights = np.array([[1.0, -2.0, 0.5], [0.3, 0.8, -1.0]], np.float32)
    logits = batch[..., :2] @ weights
    exp = np.exp(logits - logits.max(-1, keepdims=True))
    return exp / exp.sum(-1, keepdims=True)


@pytest.fixture(scope="module")
def unet():
    import keras

    from segmodels import build_model

    keras.utils.set_random_seed(1)
    model = build_model("unet", num_classes=CLASSES, in_channels=2, depth=3, filters=4)
    return model.predict_on_batch


@pytest.mark.parametrize("length", [1, 2, 5, 16])
@pytest.mark.parametrize("pad", [0, 3, 40])
def test_reflect_indices_match_numpy_reflect_padding(length, pad):
    expected = np.pad(np.arange(length), pad, mode="reflect" if length > 1 else "edge")
    np.testing.assert_array_equal(reflect_indices(np.arange(-pad, length + pad), length),
                                  expected)


@pytest.mark.parametrize("max_panel_width", [8192, 80])
def test_equals_classic_smooth_blending_with_tta_at_half_overlap(unet, max_panel_width):
    image = np.random.default_rng(0).normal(size=(96, 96, 2)).astype(np.float32)
    expected = predict_img_with_smooth_windowing(image, window_size=32, subdivisions=2,
                                                 nb_classes=CLASSES, pred_func=unet)
    options = BlendOptions(window=32, num_classes=CLASSES, overlap=0.5, tta=True,
                           batch_size=5, max_panel_width=max_panel_width)
    probs = blend_image(image, unet, options)
    assert probs.shape == (96, 96, CLASSES)
    np.testing.assert_allclose(probs, expected, atol=1e-4)
    # TTA is not a no-op for this network, so the comparison above did test it
    plain = blend_image(image, unet, BlendOptions(window=32, num_classes=CLASSES, overlap=0.5,
                                                  batch_size=8))
    assert np.abs(plain - expected).max() > 1e-3


@pytest.mark.parametrize("shape", [(50, 70), (70, 50), (5, 3), (1, 1), (33, 129)])
@pytest.mark.parametrize("overlap", [0.0, 0.3, 0.5, 0.75])
def test_any_shape_and_overlap_gives_the_per_pixel_answer(shape, overlap):
    image = np.random.default_rng(2).normal(size=(*shape, 2)).astype(np.float32)
    options = BlendOptions(window=16, num_classes=CLASSES, overlap=overlap, batch_size=3,
                           tta=True, max_panel_width=40)
    probs = blend_image(image, pointwise_model, options)
    np.testing.assert_allclose(probs, pointwise_model(image), atol=1e-5)


def test_blocks_tile_the_scene_once_and_stay_strip_sized():
    height, width, window = 150, 230, 32
    seen = np.zeros((height, width), int)
    reads = []

    def read(r0, r1, c0, c1):
        reads.append((r1 - r0) * (c1 - c0))
        return np.zeros((r1 - r0, c1 - c0, 2), np.float32)

    options = BlendOptions(window=window, num_classes=CLASSES, overlap=0.5, batch_size=8,
                           max_panel_width=96)
    for block in blend(read, height, width, pointwise_model, identity_prepare, options):
        h, w = block.invalid.shape
        assert block.probabilities.shape == (h, w, CLASSES)
        assert h <= window and w <= 96
        seen[block.row:block.row + h, block.col:block.col + w] += 1
    assert (seen == 1).all()
    assert max(reads) <= window * 96


@pytest.mark.parametrize("length", [1, 31, 32, 1000])
def test_every_pixel_is_covered_by_window_over_step_windows(length):
    grid = Grid(length=length, window=32, step=16)
    sums = grid.weight_sum(np.ones(32))
    assert sums.min() == 2 and sums.max() == 2


def test_forward_passes_are_full_batches_across_window_rows():
    sizes = []

    def model(batch):
        sizes.append(len(batch))
        return pointwise_model(batch)

    image = np.random.default_rng(3).normal(size=(40, 100, 2)).astype(np.float32)
    options = BlendOptions(window=16, num_classes=CLASSES, overlap=0.5, batch_size=5)
    probs = blend_image(image, model, options)
    # 6 window rows x 14 window columns = 84 windows: 16 full batches and the rest
    assert sizes == [5] * 16 + [4]
    np.testing.assert_allclose(probs, pointwise_model(image), atol=1e-5)


@pytest.mark.parametrize("length", [1, 2, 5, 17])
def test_take_reflected_equals_a_gather_of_reflected_indices(length):
    values = np.arange(length) * 10 + 7
    for start in range(-2 * length - 2, length + 2):
        for stop in range(start + 1, start + 3 * length + 3):
            indices = reflect_indices(np.arange(start, stop), length)
            lo, hi = int(indices.min()), int(indices.max()) + 1
            # exactly the positions needed, and more than them on either side
            for first, last in {(lo, hi), (0, length), (0, hi), (lo, length)}:
                np.testing.assert_array_equal(
                    take_reflected(values[first:last], first, start, stop, length, axis=0),
                    values[indices], err_msg=f"{start}:{stop} of {length} from {first}:{last}")


@pytest.mark.parametrize("bands,classes", [(4, 3), (3, 4), (2, 5)])
def test_tta_is_the_mean_over_the_eight_rotations_and_mirrors(bands, classes):
    """Against the textbook enumeration (rot90 k times, mirrored or not), with a model that
    depends on position, so a view undone the wrong way shows; for pixels that move as one
    item (16 bytes in, 12 out) and for pixels that move value by value."""
    rng = np.random.default_rng(bands)
    batch = rng.random((3, 8, 8, bands)).astype(np.float32)
    ramp = rng.random((8, 8, classes)).astype(np.float32)

    def model(x):
        return x[..., :1] * ramp + x.sum(-1, keepdims=True) ** 2

    views = []
    for mirror in (False, True):
        for k in range(4):
            x = batch[:, :, ::-1] if mirror else batch
            y = np.rot90(model(np.ascontiguousarray(np.rot90(x, k, axes=(1, 2)))), -k,
                         axes=(1, 2))
            views.append(y[:, :, ::-1] if mirror else y)
    before = batch.copy()
    np.testing.assert_allclose(predict_views(batch, model, tta=True), np.mean(views, axis=0),
                               rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(batch, before)
