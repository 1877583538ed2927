"""The first and last steps of a pipeline run: open (or resume) the MLflow parent run with the
run's whole config recorded on it and the Optuna study prepared; close it whatever happened."""

from __future__ import annotations

from components.ingest_options import IngestOptions
from components.lineage import log_pipeline_config
from components.parent_run import (
    RunContext,
    finish_pipeline_run,
    resume_parent_run,
    start_pipeline_run,
)
from components.register import RegisterOptions
from components.split import SplitOptions
from components.tile import TileOptions
from components.tracking import TrackingOptions
from components.tune import prepare_study
from components.tune_options import TuneOptions


def open_pipeline_run(source: str, ingest: IngestOptions, tile: TileOptions,
                      split: SplitOptions, tuning: TuneOptions, registry: RegisterOptions,
                      tracking: TrackingOptions, *, kfp_run_id: str,
                      kfp_run_name: str) -> RunContext:
    """The parent run (an unfinished one of the same name resumed), with the resolved config
    as params (tuning.train's fields as the trials ran them) and ``config.yaml``, and the
    run's Optuna study ready for its workers."""
    context = start_pipeline_run(tracking, model_name=registry.model_name,
                                 kfp_run_id=kfp_run_id, kfp_run_name=kfp_run_name)
    config = {"source": source,
              "data": {"ingest": ingest.model_dump(mode="json"),
                       "tile": tile.model_dump(mode="json"),
                       "split": split.model_dump(mode="json")},
              "tuning": tuning.model_dump(mode="json"),
              "registry": registry.model_dump(mode="json"),
              "tracking": tracking.model_dump(mode="json")}
    with resume_parent_run(context):
        log_pipeline_config(config, resumed=context.resumed, as_run={
            f"tuning.train.{name}": value for name, value in tuning.train_as_run().items()})
        prepare_study(tuning, context.optuna_storage, context.study_name)
    return context


__all__ = ["finish_pipeline_run", "open_pipeline_run"]
