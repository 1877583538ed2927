"""The GPU training benchmark: its numpy input pipeline is the twin of the tf.data one, and
it runs end to end on JAX (CPU here, tiny sizes) with TensorFlow made unimportable, as on
the GPU machines where it is not installed."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from components import train_augment
from segmodels import views

REPO_ROOT = Path(__file__).resolve().parents[2]
SCRIPT = REPO_ROOT / "benchmarks" / "training_gpu.py"


def _benchmark_module():
    spec = importlib.util.spec_from_file_location("training_gpu", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_numpy_pipeline_is_the_twin_of_train_augment():
    bench = _benchmark_module()
    images, masks = bench.synthetic_tiles(6, 80, 3, 4)
    z_low, z_high = [-1.5, -2.0, -1.0], [2.0, 1.5, 2.5]
    draws = np.random.default_rng(0).random((6, len(views.DRAWS) + 3), dtype=np.float32)
    twin = bench.Augmenter(80, 72, 3, np.array(z_low), np.array(z_high))
    reference = train_augment.BatchAugmenter(80, 72, 3, "d4_color", z_low, z_high)
    got_images, got_masks = twin.apply(images, masks, draws)
    want_images, want_masks = reference.apply(images, masks, draws)
    np.testing.assert_array_equal(got_masks, want_masks.numpy())
    np.testing.assert_allclose(got_images, want_images.numpy(), rtol=1e-5, atol=1e-5)
    assert (got_masks == 255).any() and not np.allclose(got_images, 0)


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_gpu_benchmark_runs_on_jax_without_tensorflow(jax_checks):
    # run by the `jax_checks` fixture (tests/jax_checks.py) with tensorflow made
    # unimportable: the benchmark (and keras on JAX under it) must not need it
    result = jax_checks["gpu_benchmark"]
    assert "error" not in result, result["error"]
    report = json.loads(result["stdout"])
    assert report["machine"]["backend"] == "jax"
    assert report["machine"]["tensorflow_imported"] is False
    runs = {(r["architecture"], r["precision"]) for r in report["results"]}
    assert runs == {(a, p) for a in ("encoder_unet", "unet")
                    for p in ("float32", "mixed_float16")}
    for result in report["results"]:
        assert result["in_memory_images_per_s"] > 0 and result["ratio"] > 0
    assert set(report["mixed_speedup"]) == {"encoder_unet", "unet"}
