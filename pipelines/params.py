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
PALETTE_CLASSES_FILE = "classes.json"


def classes_to_param(palette: Any, classes_file: str | None = None) -> str:
    """IngestOptions' palette and classes_file -> the ``classes`` run parameter, one string
    in the run form: "auto", "classes.json", "ids", a classes.json path/URI or a JSON list."""
    if classes_file:
        return classes_file
    if palette is None:
        return PALETTE_IDS
    if isinstance(palette, str):
        return palette
    return json.dumps([p.model_dump() if hasattr(p, "model_dump") else p for p in palette])


def classes_from_param(classes: str) -> dict[str, Any]:
    """Inverse of ``classes_to_param``: the IngestOptions fields it stands for."""
    text = classes.strip() or PALETTE_AUTO
    if text == PALETTE_IDS:
        return {"palette": None}
    if text.startswith("["):
        return {"palette": json.loads(text)}
    if text in (PALETTE_AUTO, PALETTE_CLASSES_FILE):
        return {"palette": text}
    return {"palette": PALETTE_CLASSES_FILE, "classes_file": text}


def ingest_options_from_params(classes: str, ingest_options: dict[str, Any]):
    """The ingest step's options from its two run parameters."""
    from pipelines.options import IngestOptions

    return IngestOptions(**{**ingest_options, **classes_from_param(classes)})


def stride_for(patch_size: int, overlap: float) -> int | None:
    """The tile stride for an overlap fraction (0 = adjacent tiles: None, the tile step's
    default); the inverse of ``overlap_for``."""
    if not 0.0 <= overlap < 1.0:
        raise ValueError(f"tile_overlap must be at least 0 and below 1, got {overlap}")
    return None if overlap == 0 else max(1, round(patch_size * (1 - overlap)))


def tile_options_from_params(patch_size: int, overlap: float, scale: float,
                             min_valid_fraction: float):
    """The tile step's options from its run parameters (the inverse of the ``tile_*``
    entries of ``pipeline_arguments``)."""
    from components.tile import TileOptions

    return TileOptions(patch_size=patch_size, stride=stride_for(patch_size, overlap),
                       scale=scale, min_valid_fraction=min_valid_fraction)


def overlap_for(patch_size: int, stride: int | None) -> float:
    """The overlap fraction a stride gives (TileOptions keeps stride <= patch_size)."""
    return 0.0 if stride is None else 1.0 - stride / patch_size


def split_options_from_params(strategy: str, ratios: list, seed: int, block_size: int,
                              drop_overlaps: bool):
    """The split step's options from its run parameters (the inverse of the ``split_*``
    entries of ``pipeline_arguments``; 0 block size = the step's default)."""
    from components.split import SplitOptions

    return SplitOptions(strategy=strategy, ratios=tuple(ratios), seed=seed,
                        block_size=block_size or None, drop_overlaps=drop_overlaps)


def pipeline_arguments(config: PipelineConfig, *, local: bool) -> dict[str, Any]:
    """Run parameters of ``segmentation_pipeline`` for ``config``.

    ``local=True`` fills in the embedded stores under the workdir; a cluster run leaves
    unset stores empty so the tasks take them from the cluster's environment.
    """
    data, tuning = config.data, config.tuning
    ingest = data.ingest.model_dump(mode="json", exclude={"palette", "classes_file"},
                                    exclude_none=True)
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
        "classes": classes_to_param(data.ingest.palette, data.ingest.classes_file),
        "ingest_options": ingest,
        "patch_size": data.tile.patch_size,
        "tile_overlap": overlap_for(data.tile.patch_size, data.tile.stride),
        "tile_scale": data.tile.scale,
        "min_valid_fraction": data.tile.min_valid_fraction,
        "split_strategy": data.split.strategy,
        "split_ratios": list(data.split.ratios),
        "split_seed": data.split.seed,
        "split_block_size": data.split.block_size or 0,
        "split_drop_overlaps": data.split.drop_overlaps,
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
