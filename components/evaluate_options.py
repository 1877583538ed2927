"""The options of ``segpipe evaluate`` (components/evaluate_logged.py), in a module of their
own so the CLI builds its flags without importing MLflow or TensorFlow."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from components.artifacts import SplitName


class EvaluateOptions(BaseModel):
    """How ``segpipe evaluate`` scores a logged model; the source's reading is IngestOptions."""

    model_config = ConfigDict(extra="forbid")

    split: SplitName | None = Field(
        None, description="split of a prepared dataset to score; unset: test. A source is "
        "scored whole (all its scenes form the test split)")
    log_to_mlflow: bool = Field(
        False, description="also log the evaluation as a run of the model's tracking store, "
        "tagged with the model version and the dataset digest, its metrics linked to the model")
    mlflow_experiment: str = Field("segpipe-evaluations", min_length=1,
                                   description="MLflow experiment of evaluation runs")
    overlay_tiles: int = Field(4, ge=0, description="tiles drawn with their labels and "
                               "prediction in overlays.png")
    batch_size: int = Field(8, gt=0, description="tiles per forward pass (tile-level scores)")
