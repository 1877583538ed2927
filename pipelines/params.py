"""Translation between the config file and the pipeline's run parameters.

The Kubeflow run form shows flat, typed parameters; the config file groups them in sections.
``pipeline_arguments`` is the one place that maps one onto the other, and the wrappers use
the ``*_from_params`` helpers to turn parameters back into the components' option objects.
"""

from __future__ import annotations

import json
from typing import Any

from pipelines.config import PipelineConfig

PALETTE_AUTO = "auto"
PALETTE_IDS = "ids"


def palette_to_param(palette: Any) -> str:
    """IngestOptions.palette -> the ``classes`` run parameter (a string in the run form)."""
    if palette is None:
        return PALETTE_IDS
    if isinstance(palette, str):
        return palette
    return json.dumps([p.model_dump() if hasattr(p, "model_dump") else p for p in palette])


def palette_from_param(classes: str) -> Any:
    """Inverse of ``palette_to_param``: "ids" -> None, a JSON list -> list, else the string."""
    text = classes.strip()
    if text == PALETTE_IDS:
        return None
    if text.startswith("["):
        return json.loads(text)
    return text or PALETTE_AUTO


def pipeline_arguments(config: PipelineConfig, *, local: bool) -> dict[str, Any]:
    """Run parameters of ``segmentation_pipeline`` for ``config``.

    ``local=True`` fills in the embedded stores under the workdir; a cluster run leaves
    unset stores empty so the tasks take them from the cluster's environment.
    """
    data, tuning = config.data, config.tuning
    ingest = data.ingest.model_dump(mode="json", exclude={"palette"}, exclude_none=True)
    if local:
        tracking_uri = config.mlflow_tracking_uri()
        artifact_location = config.mlflow_artifact_location()
        storage = config.optuna_storage()
    else:
        tracking_uri = config.tracking.mlflow_tracking_uri or ""
        artifact_location = ""
        storage = config.tracking.optuna_storage or ""
    return {
        "source": config.source,
        "classes": palette_to_param(data.ingest.palette),
        "ingest_options": ingest,
        "patch_size": data.tile.patch_size,
        "tile_stride": data.tile.stride or 0,
        "tile_scale": data.tile.scale,
        "min_valid_fraction": data.tile.min_valid_fraction,
        "split_strategy": data.split.strategy,
        "split_ratios": list(data.split.ratios),
        "split_seed": data.split.seed,
        "split_block_size": data.split.block_size or 0,
        "search_space": tuning.search_space,
        "train_settings": tuning.train,
        "n_trials": tuning.n_trials,
        "tune_workers": list(range(tuning.n_workers)),
        "timeout_s": float(tuning.timeout_s or 0.0),
        "epochs": tuning.epochs,
        "tuning_seed": tuning.seed,
        "pruner": tuning.pruner,
        "model_name": config.registry.model_name,
        "mlflow_tracking_uri": tracking_uri,
        "mlflow_experiment": config.tracking.mlflow_experiment,
        "mlflow_artifact_location": artifact_location,
        "optuna_storage": storage,
    }
