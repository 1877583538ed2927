"""The automatic name of a local run (pipelines/local_run.py ``run_name_for``): what resuming
goes by, so it depends on the values a config sets, not on the options the code has."""

from __future__ import annotations

from pydantic import Field, create_model

from components.prepare import PrepareOptions
from components.tile import TileOptions
from pipelines.config import PipelineConfig
from pipelines.local_run import run_name_for

SETS = {"source": "data", "data": {"tile": {"patch_size": 64}}, "tuning": {"n_trials": 3}}


def _with_a_new_tile_option(default: int = 3) -> type[PipelineConfig]:
    """PipelineConfig as the code would be with one more tile option, defaulted."""
    tile = create_model("TileOptions", __base__=TileOptions, future_option=(int, default))
    data = create_model("PrepareOptions", __base__=PrepareOptions,
                        tile=(tile, Field(default_factory=tile)))
    return create_model("PipelineConfig", __base__=PipelineConfig,
                        data=(data, Field(default_factory=data)))


def test_a_new_option_with_a_default_leaves_every_run_name_as_it_was():
    """An unfinished run from before the option existed is resumed, not started afresh."""
    newer = _with_a_new_tile_option()
    assert newer.model_validate(SETS).data.tile.future_option == 3
    assert run_name_for(newer.model_validate(SETS)) == run_name_for(
        PipelineConfig.model_validate(SETS))
    assert run_name_for(newer(source="data")) == run_name_for(PipelineConfig(source="data"))
    # Setting the new option to another value is another run.
    changed = {**SETS, "data": {"tile": {"patch_size": 64, "future_option": 4}}}
    assert run_name_for(newer.model_validate(changed)) != run_name_for(
        PipelineConfig.model_validate(SETS))


def test_names_pinned_for_configs_written_today():
    """A literal on purpose: any change of how names are derived renames (and so restarts)
    every unfinished run, and must show here."""
    assert run_name_for(PipelineConfig(source="data")) == "run-ad048d7a3d"
    assert run_name_for(PipelineConfig.model_validate(SETS)) == "run-73ef855edf"


def test_every_value_set_splits_names_and_a_default_given_does_not():
    base = run_name_for(PipelineConfig.model_validate(SETS))
    others = [{**SETS, "source": "other"},
              {**SETS, "data": {"tile": {"patch_size": 128}}},
              {**SETS, "tuning": {"n_trials": 4}},
              {**SETS, "registry": {"model_name": "other"}},
              {**SETS, "data": {"tile": {"patch_size": 64}, "ingest": {"ignore_values": [0]}}}]
    names = [run_name_for(PipelineConfig.model_validate(o)) for o in others]
    assert len({base, *names}) == len(others) + 1
    spelled_out = {**SETS, "data": {"tile": {"patch_size": 64,
                                             "stride": TileOptions().stride,
                                             "scale": TileOptions().scale}},
                   "tracking": {"mlflow_experiment": "elsewhere"}, "cache": False}
    # Defaults given as values, and sections that do not shape the run, change nothing.
    assert run_name_for(PipelineConfig.model_validate(spelled_out)) == base
    named = PipelineConfig.model_validate({**SETS, "tracking": {"run_name": "mine"}})
    assert run_name_for(named) == "mine"
