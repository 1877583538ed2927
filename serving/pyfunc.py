"""The MLflow pyfunc model: raw pixels in, masks out; normalization, resampling to the
training resolution and tiling inside. Request formats are in serving/handler.py and
docs/serving.md.

Errors: MLflow's scoring server answers an MlflowException with its ``serialize_as_json()``
and HTTP status, after prefixing the message with the whole request data ("Failed to predict
data '...'"); any other exception becomes a 400 with a server-side ``stack_trace`` in the
body. So every failure of this model leaves ``predict`` as a ServingError, which serializes
only its own message: a bad request is a 400 that says what is wrong (quoting at most a short
excerpt of the input), anything else a 500 that says only that it failed; the traceback goes
to the server's log, never into a response.
"""

from __future__ import annotations

import json
import logging
import tempfile
import warnings
from importlib import metadata
from pathlib import Path

import mlflow
import numpy as np
from mlflow.exceptions import MlflowException
from mlflow.models.signature import ModelSignature
from mlflow.protos.databricks_pb2 import DEADLINE_EXCEEDED, INTERNAL_ERROR, INVALID_PARAMETER_VALUE
from mlflow.types.schema import ParamSchema, ParamSpec, Schema, TensorSpec

from serving.config import ServingConfig
from serving.decode import PARAMS, RequestError, param_defaults
from serving.handler import RequestHandler
from serving.predict import ScenePredictor
from serving.runtime import export_openvino, load_predict_fn, openvino_available
from serving.windows import DeadlinePassed

KERAS_ARTIFACT = "keras_model"
CONFIG_ARTIFACT = "serving_config"
OPENVINO_ARTIFACT = "openvino_model"
_PACKAGED = ("serving", "segmodels")
_REQUIREMENTS = ("mlflow", "keras", "tensorflow", "rasterio", "numpy", "pandas", "pydantic",
                 "openvino")
_logger = logging.getLogger(__name__)


class ServingError(MlflowException):
    """An MlflowException whose HTTP body is only its own message and error code, whatever the
    scoring server does to ``message`` afterwards."""

    def __init__(self, message: str, error_code: int):
        super().__init__(message, error_code=error_code)
        self.client_message = message

    def serialize_as_json(self) -> str:
        return json.dumps({"error_code": self.error_code, "message": self.client_message})


def _show_other_warnings(caught: list[warnings.WarningMessage]) -> None:
    for warning in caught:
        if "type hints" not in str(warning.message):
            warnings.showwarning(warning.message, warning.category, warning.filename,
                                 warning.lineno)


# MLflow's advice to model authors about type hints is printed (with raw colour codes and a
# site-packages path) when the class is defined, i.e. whenever this module is imported: on
# every `segpipe predict` and `evaluate`. No concern of the user, so held back here: recorded
# rather than filtered, as MLflow puts a filter of its own in front of ours.
with warnings.catch_warnings(record=True) as _defining:

    class SegmentationModel(mlflow.pyfunc.PythonModel):
        """The segmentation network (on OpenVINO or Keras, serving/runtime.py) + ServingConfig
        behind the MLflow scoring server."""

        def load_context(self, context) -> None:
            self.config = ServingConfig.load(Path(context.artifacts[CONFIG_ARTIFACT]))
            openvino_dir = context.artifacts.get(OPENVINO_ARTIFACT)
            predict_fn, self.runtime = load_predict_fn(
                Path(context.artifacts[KERAS_ARTIFACT]), openvino_dir and Path(openvino_dir))
            self.predictor = ScenePredictor(predict_fn, self.config)
            self.predictor.warm_up()  # trace now, not in the first requests
            self.handler = RequestHandler(self.predictor)

        def predict(self, context, model_input, params=None):
            try:
                return self.handler(model_input, params)
            except RequestError as exc:
                raise ServingError(str(exc), INVALID_PARAMETER_VALUE) from None
            except DeadlinePassed as exc:  # its client was answered 504 already
                _logger.warning("stopped a request past its deadline: %s", exc)
                raise ServingError(str(exc), DEADLINE_EXCEEDED) from None
            except Exception as exc:
                _logger.exception("segmentation model failed on a request")
                raise ServingError(f"the model failed on this request ({type(exc).__name__}); "
                                   f"the server log has the details", INTERNAL_ERROR) from None


_show_other_warnings(_defining)


def load_predictor(model_uri: str) -> ScenePredictor:
    """The logged model's ScenePredictor (its forward pass on OpenVINO or Keras, its config):
    what ``segpipe predict`` runs locally and evaluation scores."""
    # Held back: MLflow's advice to model authors about type hints (with a site-packages
    # path), which is no concern of the user. Recorded rather than filtered because loading
    # the model puts filters of its own in front of ours.
    with warnings.catch_warnings(record=True) as caught:
        model = mlflow.pyfunc.load_model(model_uri).unwrap_python_model()
    _show_other_warnings(caught)
    return model.predictor


def params_schema(config: ServingConfig) -> ParamSchema:
    defaults = param_defaults(config)
    return ParamSchema([ParamSpec(name, kind, defaults[name])
                        for name, (kind, _) in PARAMS.items()])


def model_signature(config: ServingConfig) -> ModelSignature:
    """Input: a batch of (H, W, C) images of the training dtype, any H and W (MLflow checks
    tensor requests and ``pyfunc.predict`` calls against it); params as PARAMS. The
    dataframe routes (``npy``, ``image``) carry encoded data a tensor schema cannot describe:
    segpipe's server answers them before MLflow's schema check (serving/server.py)."""
    inputs = Schema([TensorSpec(np.dtype(config.input_dtype), (-1, -1, -1, config.in_channels))])
    return ModelSignature(inputs=inputs, params=params_schema(config))


def _package_dir(name: str) -> str:
    module = __import__(name)
    return str(Path(module.__file__).resolve().parent)


def pip_requirements() -> list[str]:
    """The installed versions of what the served model imports (OpenVINO only if present:
    the model falls back to Keras without it)."""
    return [f"{name}=={metadata.version(name)}" for name in _REQUIREMENTS
            if name != "openvino" or openvino_available()]


def raw_pixel_example(config: ServingConfig, size: int = 32) -> np.ndarray:
    """One (1, size, size, C) image of raw pixel values of the training dtype (each band at
    its training mean): what a client sends, before the normalization the model applies
    itself."""
    dtype = np.dtype(config.input_dtype)
    mean = np.asarray(config.mean, dtype=np.float64)
    if dtype.kind != "f":
        info = np.iinfo(dtype) if dtype.kind in "iu" else None
        mean = np.round(mean) if info is None else np.clip(np.round(mean), info.min, info.max)
    return np.broadcast_to(mean.astype(dtype), (1, size, size, config.in_channels)).copy()


def log_segmentation_model(keras_model_path: Path, config: ServingConfig, name: str = "model",
                           registered_model_name: str | None = None):
    """Log (and optionally register) the served model in the active MLflow run.

    Packages serving/ and segmodels/ with it, so it loads anywhere with only the pinned pip
    requirements installed, and the network exported to OpenVINO beside the Keras file when
    OpenVINO is installed (serving/runtime.py). Returns MLflow's ModelInfo."""
    keras_model_path = Path(keras_model_path)
    if not keras_model_path.is_file():
        raise FileNotFoundError(f"keras model {keras_model_path} does not exist")
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        # Type hints would make MLflow skip parsing request data; the signature is explicit.
        warnings.filterwarnings("ignore", message=".*type hints.*", category=UserWarning)
        warnings.filterwarnings("ignore", message=".*input example.*", category=UserWarning)
        config_path = Path(tmp) / "serving_config.json"
        config.save(config_path)
        artifacts = {KERAS_ARTIFACT: str(keras_model_path), CONFIG_ARTIFACT: str(config_path)}
        openvino_dir = export_openvino(keras_model_path, config, Path(tmp) / "openvino")
        if openvino_dir is not None:
            artifacts[OPENVINO_ARTIFACT] = str(openvino_dir)
        return mlflow.pyfunc.log_model(
            name=name,
            python_model=SegmentationModel(),
            artifacts=artifacts,
            code_paths=[_package_dir(package) for package in _PACKAGED],
            signature=model_signature(config),
            input_example=raw_pixel_example(config),
            pip_requirements=pip_requirements(),
            registered_model_name=registered_model_name,
        )
