"""segmodels is backend-neutral: the same code builds, predicts, scores and round-trips a
U-Net on JAX, and serving blends its predictions (in a subprocess, since Keras fixes its
backend at import)."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]

SCRIPT = r"""
import sys
import keras
import numpy as np
import segmodels

assert keras.backend.backend() == "jax", keras.backend.backend()
rng = np.random.default_rng(0)
images = rng.normal(size=(2, 32, 32, 3)).astype("float32")
labels = rng.integers(0, 3, size=(2, 32, 32))
labels[:, 0] = 255
model = segmodels.build_model("unet", 3, 3, depth=3, filters=4)
probs = np.asarray(model(images))  # eager: cheaper than compiling predict
assert probs.shape == (2, 32, 32, 3) and probs.dtype == np.float32
model.save(sys.argv[1])
restored = keras.models.load_model(sys.argv[1])
np.testing.assert_array_equal(np.asarray(restored(images)), probs)
metric = segmodels.MeanIoU(3)
metric.update_state(labels, probs)
expected = segmodels.scores_from_confusion(segmodels.confusion_matrix(labels, probs, 3))
assert abs(float(metric.result()) - expected["miou"]) < 1e-6
loss = float(segmodels.build_loss({"ce": 1.0, "focal_tversky": 1.0})(labels, probs))
assert np.isfinite(loss)

from serving.config import ServingConfig
from serving.predict import ScenePredictor, keras_predict_fn

config = ServingConfig(in_channels=3, num_classes=3, class_names=["a", "b", "c"],
                       class_colors=["#000000"] * 3, mean=[0.0] * 3, std=[1.0] * 3,
                       patch_size=32, batch_size=2, model_stride=4)
predictor = ScenePredictor(keras_predict_fn(model), config)
# one window, no overlap: blending must give back the model's own output
single = predictor.predict_array(images[0], overlap=0.0, output="probabilities")
np.testing.assert_allclose(single, probs[0], atol=1e-5)
mask = predictor.predict_array(rng.normal(size=(40, 70, 3)), tta=True)
assert mask.shape == (40, 70) and mask.max() < 3
print("ok")
"""


@pytest.mark.skipif(importlib.util.find_spec("jax") is None, reason="jax not installed")
def test_unet_on_jax_backend(tmp_path):
    env = {**os.environ, "KERAS_BACKEND": "jax", "PYTHONPATH": str(REPO_ROOT),
           "JAX_PLATFORMS": "cpu",
           # JAX compiles one XLA kernel per weight shape to initialise a model (~30 s CPU
           # for a tiny U-Net); a persistent cache makes every later run cheap
           "JAX_COMPILATION_CACHE_DIR": str(REPO_ROOT / ".pytest_cache" / "jax"),
           "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",
           "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES": "0"}
    result = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path / "unet.keras")],
                            env=env, capture_output=True, text=True, timeout=300,
                            cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().endswith("ok")
