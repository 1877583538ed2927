"""Every check the suite runs on Keras' JAX backend, in ONE interpreter: each check in its own
interpreter paid a Python + JAX start-up and compiled its own XLA kernels (~75 s CPU for the
three on 2 cores). The GPU training benchmark runs first, with TensorFlow unimportable as on
the GPU machines; the U-Net and encoder U-Net checks follow, each from a cleared Keras
session. A check that fails records its traceback and the next ones still run, so each test
reports its own check's failure.

XLA compiles these tiny models at ``--xla_backend_optimization_level=0``: LLVM's passes were
most of the compile time (the U-Net check: 19 s CPU at the default level, 9 s at 0), and the
checks assert what the code computes, never how fast (the benchmark's figures are only
printed)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
GPU_BENCHMARK = REPO_ROOT / "benchmarks" / "training_gpu.py"
GPU_BENCHMARK_ARGS = [
    "--size", "32", "--tiles", "8", "--batch", "4", "--steps", "2", "--rounds", "1",
    "--workers", "2", "--unet-depth", "2", "--unet-filters", "2", "--encoder", "mobilenetv2",
    "--encoder-width", "0.35", "--encoder-depth", "2", "--decoder-filters", "2"]

# segmodels is backend-neutral: the same code builds, predicts, scores and round-trips a U-Net
# on JAX, and serving blends its predictions. sys.argv[1] is the model's path.
UNET_SCRIPT = r"""
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

# The encoder U-Net builds, round-trips and trains with its encoder warm-up on JAX.
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

CHECKS = {"unet": UNET_SCRIPT, "encoder_unet": ENCODER_UNET_SCRIPT}

DRIVER = r"""
import contextlib, io, json, runpy, sys, traceback
from pathlib import Path

from serving import quick_exit

quick_exit.install()  # JAX and TensorFlow made millions of objects: no GC walk at exit

benchmark, folder = sys.argv[1], Path(sys.argv[2])
benchmark_args, checks = json.loads(sys.argv[3]), json.loads(sys.argv[4])
results = {}


def run(name, body):
    out = io.StringIO()
    try:
        with contextlib.redirect_stdout(out):
            body()
        results[name] = {"stdout": out.getvalue()}
    except BaseException:  # SystemExit and AssertionError included: the next checks run
        results[name] = {"stdout": out.getvalue(), "error": traceback.format_exc()[-3000:]}


# tensorflow made unimportable: the benchmark (and keras on JAX under it) must not need it
sys.modules["tensorflow"] = None
sys.argv = [benchmark, *benchmark_args]
run("gpu_benchmark", lambda: runpy.run_path(benchmark, run_name="__main__"))
del sys.modules["tensorflow"]  # importable again, as in a fresh interpreter

import keras

for name, script in checks.items():
    keras.config.set_dtype_policy("float32")
    keras.utils.clear_session()
    sys.argv = ["-c", str(folder / f"{name}.keras")]
    run(name, lambda: exec(compile(script, name, "exec"), {"__name__": "__main__"}))
print(json.dumps(results))
"""


def run_jax_checks(folder: Path) -> dict[str, dict]:
    """Run every check in one KERAS_BACKEND=jax interpreter started in ``folder``: per
    check, its captured stdout and, where it failed, its ``error`` (a traceback)."""
    env = {**os.environ, "KERAS_BACKEND": "jax", "PYTHONPATH": str(REPO_ROOT),
           "JAX_PLATFORMS": "cpu",
           "XLA_FLAGS": " ".join([os.environ.get("XLA_FLAGS", ""),
                                  "--xla_backend_optimization_level=0"]).strip(),
           # a persistent cache makes every later run cheap (JAX compiles one XLA kernel per
           # weight shape to initialise a model)
           "JAX_COMPILATION_CACHE_DIR": str(REPO_ROOT / ".pytest_cache" / "jax"),
           "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",
           "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES": "0"}
    done = subprocess.run(
        [sys.executable, "-c", DRIVER, str(GPU_BENCHMARK), str(folder),
         json.dumps(GPU_BENCHMARK_ARGS), json.dumps(CHECKS)],
        env=env, cwd=folder, capture_output=True, text=True, timeout=580)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])
