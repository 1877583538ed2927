"""The tracking store and model a command reads: shared by the commands that load a logged
model (serve, predict, evaluate)."""

from __future__ import annotations

import os

from pipelines.cli.errors import fail

DEFAULT_MODEL_URI = "models:/segpipe@champion"


def use_store(model_uri: str, tracking_uri: str | None) -> None:
    """Check that the store holds the model, creating nothing (one line and exit 1 when it
    does not, 2 when a local --model-uri is no MLflow model), then use the store in this
    process and the children it starts."""
    from pipelines.tracking_store import NotAModelError, StoreError, check_model

    try:
        tracking_uri = check_model(model_uri, tracking_uri)
    except StoreError as err:
        raise fail(str(err), 2 if isinstance(err, NotAModelError) else 1) from None
    import mlflow

    os.environ["MLFLOW_TRACKING_URI"] = tracking_uri
    mlflow.set_tracking_uri(tracking_uri)
