"""The forward pass the served model runs.

On CPU, OpenVINO runs the network 1.8-6x faster than TensorFlow at equal probabilities (max
abs difference ~2e-7; benchmarks/runtimes.py, figures in benchmarks/README.md), so the
logged model carries the network exported to OpenVINO IR beside its Keras file, and serving
runs that when it can: OpenVINO installed, no GPU for TensorFlow. Otherwise, or with
``SEGPIPE_RUNTIME=keras``, it runs the Keras model. The export fixes the window size
(serving always feeds whole windows) and leaves the batch free.
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path

import numpy as np

from serving.config import ServingConfig
from serving.predict import keras_predict_fn
from serving.windows import PredictFn

#: Environment variable choosing the runtime: "openvino", "keras" or unset (automatic).
RUNTIME_ENV = "SEGPIPE_RUNTIME"
OPENVINO_XML = "model.xml"
RUNTIMES = ("openvino", "keras")
_logger = logging.getLogger(__name__)


def openvino_available() -> bool:
    try:
        import openvino  # noqa: F401
    except ImportError:
        return False
    return True


def export_openvino(keras_model_path: Path, config: ServingConfig, out_dir: Path) -> Path | None:
    """The Keras model as OpenVINO IR (``out_dir/model.xml`` + ``.bin``) for windows of the
    config's size; None when OpenVINO is not installed."""
    if not openvino_available():
        return None
    import keras

    import segmodels

    model = segmodels.load_model(keras_model_path)
    side, bands = config.patch_size, config.in_channels
    out_dir.mkdir(parents=True, exist_ok=True)
    xml = out_dir / OPENVINO_XML
    model.export(str(xml), format="openvino", verbose=False,
                 input_signature=[keras.InputSpec(shape=(None, side, side, bands),
                                                  dtype="float32")])
    return out_dir


def _tensorflow_gpu() -> bool:
    import keras

    if keras.backend.backend() != "tensorflow":
        return False
    import tensorflow as tf

    return bool(tf.config.list_physical_devices("GPU"))


def choose_runtime(openvino_dir: Path | None) -> str:
    """"openvino" or "keras" for a model that carries ``openvino_dir`` (or none)."""
    wanted = os.environ.get(RUNTIME_ENV, "").strip().lower()
    if wanted and wanted not in RUNTIMES:
        raise ValueError(f"{RUNTIME_ENV}={wanted!r}: choose one of {list(RUNTIMES)} or unset")
    if wanted == "keras":
        return "keras"
    usable = openvino_dir is not None and (openvino_dir / OPENVINO_XML).is_file() \
        and openvino_available()
    if wanted == "openvino" and not usable:
        raise ValueError(f"{RUNTIME_ENV}=openvino, but the model carries no OpenVINO export or "
                         f"OpenVINO is not installed")
    if wanted == "openvino" or (usable and not _tensorflow_gpu()):
        return "openvino"
    return "keras"


def openvino_predict_fn(openvino_dir: Path) -> PredictFn:
    """Forward pass of the exported network on OpenVINO's CPU plugin at float32 (its
    default on CPUs with bf16 units would round the probabilities), one call at a time."""
    import openvino

    compiled = openvino.Core().compile_model(str(openvino_dir / OPENVINO_XML), "CPU",
                                             {"INFERENCE_PRECISION_HINT": "f32"})
    lock = threading.Lock()

    def predict(batch: np.ndarray) -> np.ndarray:
        with lock:  # one infer request: calls from several requests' threads take turns
            return compiled(np.ascontiguousarray(batch, dtype=np.float32))[0]

    return predict


def load_predict_fn(keras_model_path: Path, openvino_dir: Path | None) -> tuple[PredictFn, str]:
    """The served model's forward pass and the runtime's name."""
    runtime = choose_runtime(openvino_dir)
    _logger.info("segmentation model runs on %s", runtime)
    if runtime == "openvino":
        return openvino_predict_fn(openvino_dir), runtime
    import segmodels

    return keras_predict_fn(segmodels.load_model(keras_model_path)), runtime
