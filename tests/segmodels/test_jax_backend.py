"""segmodels is backend-neutral: the same code builds, predicts, scores and round-trips a
U-Net on JAX, and serving blends its predictions; the encoder U-Net builds, round-trips and
trains with its encoder warm-up on JAX (in subprocesses, since Keras fixes its backend at
import)."""

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


ENCODER_UNET_SCRIPT = r"""
import sys
import keras
import numpy as np
import segmodels
from segmodels.encoder_unet import EncoderWarmup

assert keras.backend.backend() == "jax", keras.backend.backend()
keras.utils.set_random_seed(0)
rng = np.random.default_rng(0)
images = rng.normal(size=(2, 32, 32, 4)).astype("float32")
labels = (images[..., 0] > 0).astype("int32")
model = segmodels.build_model("encoder_unet", 2, 4, encoder="mobilenetv2", encoder_width=0.35,
                              encoder_depth=3, decoder_filters=2)
probs = np.asarray(model(images))
assert probs.shape == (2, 32, 32, 2) and probs.dtype == np.float32
model.save(sys.argv[1])
np.testing.assert_array_equal(np.asarray(keras.models.load_model(sys.argv[1])(images)), probs)

encoder = model.get_layer("mobilenetv2")
snapshots = []
record = keras.callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: snapshots.append(
    ([v.numpy().copy() for v in encoder.trainable_variables],
     model.get_layer("dec0_conv1").kernel.numpy().copy())))
record.on_epoch_end(-1, None)
model.compile(optimizer=keras.optimizers.Adam(1e-2), loss=segmodels.build_loss("ce+dice"))
model.fit(images, labels, epochs=2, batch_size=2, verbose=0,
          callbacks=[EncoderWarmup(1), record])
(enc0, dec0), (enc1, dec1), (enc2, _) = snapshots
assert all(np.array_equal(a, b) for a, b in zip(enc0, enc1)), "encoder moved while closed"
assert not np.array_equal(dec0, dec1), "decoder did not learn"
assert any(not np.array_equal(a, b) for a, b in zip(enc1, enc2)), "encoder never opened"
print("ok")
"""


def _run_on_jax(script: str, tmp_path: Path) -> None:
    env = {**os.environ, "KERAS_BACKEND": "jax", "PYTHONPATH": str(REPO_ROOT),
           "JAX_PLATFORMS": "cpu",
           # JAX compiles one XLA kernel per weight shape to initialise a model (~30 s CPU
           # for a tiny U-Net); a persistent cache makes every later run cheap
           "JAX_COMPILATION_CACHE_DIR": str(REPO_ROOT / ".pytest_cache" / "jax"),
           "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",
           "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES": "0"}
    result = subprocess.run([sys.executable, "-c", script, str(tmp_path / "model.keras")],
                            env=env, capture_output=True, text=True, timeout=300,
                            cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().endswith("ok")


@pytest.mark.skipif(importlib.util.find_spec("jax") is None, reason="jax not installed")
def test_unet_on_jax_backend(tmp_path):
    _run_on_jax(SCRIPT, tmp_path)


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("jax") is None, reason="jax not installed")
def test_encoder_unet_and_its_warmup_on_jax_backend(tmp_path):
    _run_on_jax(ENCODER_UNET_SCRIPT, tmp_path)
