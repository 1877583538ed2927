"""The MLflow pyfunc model: raw pixels in, masks out, normalization and tiling inside.

Request formats (``/invocations``):
- ``{"inputs": [...] , "params": {...}}``: raw pixels (N, H, W, C) or (H, W, C), any H, W;
  answers ``{"predictions": ...}`` with (N, H, W) class ids, or (N, H, W, K) probabilities.
- ``{"dataframe_split": {"columns": ["image"], "data": [[<base64>], ...]}}``: encoded
  GeoTIFF/PNG/JPEG; answers one record per image with column ``mask`` (base64 PNG, or
  GeoTIFF with the input's CRS and transform when it was georeferenced) or ``probabilities``
  (base64 float32 GeoTIFF).
- params: ``tta`` (bool), ``overlap`` (0 to 0.75), ``output`` ("mask" | "probabilities").

Bad requests raise ``MlflowException(INVALID_PARAMETER_VALUE)``, which the scoring server
answers with HTTP 400 and the message, and then goes on serving.
"""

from __future__ import annotations

import tempfile
import warnings
from importlib import metadata
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
from mlflow.exceptions import MlflowException
from mlflow.models.signature import ModelSignature
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE
from mlflow.types.schema import ParamSchema, ParamSpec

from serving.config import ServingConfig
from serving.decode import (
    RequestError,
    check_params,
    check_tensor,
    decode_base64,
    encode_mask,
    encode_probabilities,
    open_image,
)
from serving.predict import ScenePredictor, keras_predict_fn

KERAS_ARTIFACT = "keras_model"
CONFIG_ARTIFACT = "serving_config"
IMAGE_COLUMN = "image"
_PACKAGED = ("serving", "segmodels")
_REQUIREMENTS = ("mlflow", "keras", "tensorflow", "rasterio", "numpy", "pandas", "pydantic")


class SegmentationModel(mlflow.pyfunc.PythonModel):
    """Keras segmentation network + ServingConfig behind the MLflow scoring server."""

    def load_context(self, context) -> None:
        import keras

        import segmodels  # noqa: F401  registers the custom layers/losses before loading

        self.config = ServingConfig.load(Path(context.artifacts[CONFIG_ARTIFACT]))
        model = keras.saving.load_model(context.artifacts[KERAS_ARTIFACT], compile=False)
        self.predictor = ScenePredictor(keras_predict_fn(model), self.config)
        self.predictor.warm_up()  # trace now, not in the first requests

    def predict(self, context, model_input, params=None):
        try:
            return self._predict(model_input, params)
        except RequestError as exc:
            raise MlflowException(str(exc), error_code=INVALID_PARAMETER_VALUE) from exc

    def _predict(self, model_input: Any, params: dict[str, Any] | None) -> Any:
        tta, overlap, output = check_params(params, self.config)
        import pandas as pd

        if isinstance(model_input, pd.DataFrame):
            if IMAGE_COLUMN not in model_input.columns:
                raise RequestError(f"dataframe input needs a column {IMAGE_COLUMN!r} of base64 "
                                   f"images, got columns {list(model_input.columns)}")
            return self._predict_encoded(list(model_input[IMAGE_COLUMN]), tta, overlap, output)
        images = check_tensor(model_input, self.config)
        results = [self.predictor.predict_array(image, tta=tta, overlap=overlap, output=output)
                   for image in images]
        return np.stack(results)

    def _predict_encoded(self, values: list[Any], tta: bool, overlap: float,
                         output: str) -> Any:
        import pandas as pd

        raws = [decode_base64(value, i) for i, value in enumerate(values)]
        total = 0
        encoded = []
        for i, raw in enumerate(raws):
            with open_image(raw, i, self.config) as dataset:
                total += dataset.width * dataset.height
                if total > self.config.max_pixels:
                    raise RequestError(f"too many pixels: the request's images have {total} or "
                                       f"more, the limit per request is {self.config.max_pixels}")
                encoded.append(self._predict_dataset(dataset, tta, overlap, output))
        return pd.DataFrame({output: encoded})

    def _predict_dataset(self, dataset, tta: bool, overlap: float, output: str) -> str:
        """Base64 answer for one decoded image; only the result is held whole."""
        blocks = self.predictor.iter_dataset(dataset, tta=tta, overlap=overlap)
        result = self.predictor.assemble(blocks, dataset.height, dataset.width, output)
        if output == "probabilities":
            return encode_probabilities(result, dataset)
        return encode_mask(result, self.config, dataset)


def params_schema(config: ServingConfig) -> ParamSchema:
    return ParamSchema([
        ParamSpec("tta", "boolean", False),
        ParamSpec("overlap", "double", float(config.overlap)),
        ParamSpec("output", "string", "mask"),
    ])


def _package_dir(name: str) -> str:
    module = __import__(name)
    return str(Path(module.__file__).resolve().parent)


def pip_requirements() -> list[str]:
    return [f"{name}=={metadata.version(name)}" for name in _REQUIREMENTS]


def raw_pixel_example(config: ServingConfig, size: int = 32) -> np.ndarray:
    """One (1, size, size, C) image of raw pixel values (each band at its training mean):
    what a client sends, before the normalization the model applies itself."""
    return np.broadcast_to(np.asarray(config.mean, dtype=np.float32),
                           (1, size, size, config.in_channels)).copy()


def log_segmentation_model(keras_model_path: Path, config: ServingConfig, name: str = "model",
                           registered_model_name: str | None = None):
    """Log (and optionally register) the served model in the active MLflow run.

    Packages serving/ and segmodels/ with it, so it loads anywhere with only the pinned pip
    requirements installed. Returns MLflow's ModelInfo."""
    keras_model_path = Path(keras_model_path)
    if not keras_model_path.is_file():
        raise FileNotFoundError(f"keras model {keras_model_path} does not exist")
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        # Type hints would make MLflow skip parsing request data. The input schema is left
        # open because any H and W is served; the example shows one small raw-pixel image.
        warnings.filterwarnings("ignore", message=".*type hints.*", category=UserWarning)
        warnings.filterwarnings("ignore", message=".*input example.*", category=UserWarning)
        config_path = Path(tmp) / "serving_config.json"
        config.save(config_path)
        return mlflow.pyfunc.log_model(
            name=name,
            python_model=SegmentationModel(),
            artifacts={KERAS_ARTIFACT: str(keras_model_path), CONFIG_ARTIFACT: str(config_path)},
            code_paths=[_package_dir(package) for package in _PACKAGED],
            signature=ModelSignature(params=params_schema(config)),
            input_example=raw_pixel_example(config),
            pip_requirements=pip_requirements(),
            registered_model_name=registered_model_name,
        )
