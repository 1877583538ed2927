"""The GPU training benchmark: its numpy input pipeline is the twin of the tf.data one, and
it runs end to end on JAX (CPU here, tiny sizes) with TensorFlow made unimportable, as on
the GPU machines where it is not installed."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
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
def test_gpu_benchmark_runs_on_jax_without_tensorflow(tmp_path):
    # tensorflow made unimportable: the benchmark (and keras on JAX under it) must not need it
    runner = ("import runpy, sys; sys.modules['tensorflow'] = None; "
              f"sys.argv = [{str(SCRIPT)!r}] + sys.argv[1:]; "
              f"runpy.run_path({str(SCRIPT)!r}, run_name='__main__')")
    args = ["--size", "32", "--tiles", "8", "--batch", "4", "--steps", "2", "--rounds", "1",
            "--workers", "2", "--unet-depth", "2", "--unet-filters", "2",
            "--encoder", "mobilenetv2", "--encoder-width", "0.35", "--encoder-depth", "2",
            "--decoder-filters", "2"]
    env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu",
           "PYTHONPATH": str(REPO_ROOT),
           "JAX_COMPILATION_CACHE_DIR": str(REPO_ROOT / ".pytest_cache" / "jax"),
           "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",
           "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES": "0"}
    proc = subprocess.run([sys.executable, "-c", runner, *args], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=580)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout)
    assert report["machine"]["backend"] == "jax"
    assert report["machine"]["tensorflow_imported"] is False
    runs = {(r["architecture"], r["precision"]) for r in report["results"]}
    assert runs == {(a, p) for a in ("encoder_unet", "unet")
                    for p in ("float32", "mixed_float16")}
    for result in report["results"]:
        assert result["in_memory_images_per_s"] > 0 and result["ratio"] > 0
    assert set(report["mixed_speedup"]) == {"encoder_unet", "unet"}
