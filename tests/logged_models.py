"""A model whose answer is known pixel by pixel, saved as the train step saves one and logged
to MLflow as registration logs one, for the tests of `segpipe evaluate`: a 1x1 convolution
on the first normalized band (with 3 classes: 0 below the mean, 2 above, 1 never), so blending
and window edges cannot change it and no training is needed."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from components.artifacts import TrainedModelInfo
from components.dataset_paths import PreparedDataset


def save_known_model(folder: Path, classes: int = 3, bands: int = 4,
                     patch_size: int = 32) -> Path:
    import keras

    inputs = keras.Input((None, None, bands))
    conv = keras.layers.Conv2D(classes, 1)
    model = keras.Model(inputs, keras.layers.Softmax()(conv(inputs)))
    kernel = np.zeros((1, 1, bands, classes), np.float32)
    kernel[0, 0, 0] = np.linspace(-1.0, 1.0, classes)
    conv.set_weights([kernel, np.zeros(classes, np.float32)])
    folder.mkdir(parents=True, exist_ok=True)
    model.save(folder / "model.keras")
    TrainedModelInfo(architecture="unet", params={"depth": 1, "filters": 4},
                     num_classes=classes, in_channels=bands, patch_size=patch_size
                     ).save(folder / "model.json")
    return folder


def register_known_model(model_dir: Path, dataset: PreparedDataset, name: str) -> str:
    """Log ``model_dir`` with the serving config of ``dataset`` (its statistics and classes)
    in the active tracking store and register it as ``name`` (alias champion), with the
    record of its training ground as registration logs it; its models:/name/version URI."""
    import mlflow

    from components.dataset_paths import ModelPaths
    from components.register import RegisterOptions, serving_config
    from components.training_ground import log_training_ground
    from serving.pyfunc import log_segmentation_model

    info = TrainedModelInfo.load(ModelPaths(model_dir).info)
    config = serving_config(info, dataset, RegisterOptions())
    with mlflow.start_run(run_name="register"):
        logged = log_segmentation_model(ModelPaths(model_dir).keras_model, config,
                                        registered_model_name=name)
        log_training_ground(dataset, str(dataset.root))
    version = str(logged.registered_model_version)
    mlflow.MlflowClient().set_registered_model_alias(name, "champion", version)
    return f"models:/{name}/{version}"
