"""The search space part of the Train form: which architectures and settings the study
searches, each dimension edited through ParamSpec's own fields, starting from the defaults
components.tune_space defines."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from components.train import gpu_visible
from components.train_options import TrainParams
from components.tune_space import (
    TRAINING_DIMENSIONS,
    ParamSpec,
    SearchSpace,
    default_search_space,
)
from pipelines.ui.config_form import FormField, form_fields, widget_value
from segmodels import available_models

SEARCH_PATH = ("tuning", "search_space")
#: ParamSpec's fields that mean something for each dimension type.
SHOWN = {"categorical": ("choices",), "int": ("low", "high", "step", "log"),
         "float": ("low", "high", "step", "log")}


def architectures() -> list[str]:
    return list(available_models())


def default_space() -> SearchSpace:
    """The built-in space for this machine (CPU or GPU): the one a run from this form
    searches when the form is left as it is."""
    return default_search_space(gpu_visible())


def default_spec(dimension: str, space: SearchSpace | None = None) -> dict[str, Any]:
    """A training dimension's default range, or for one the defaults do not search, its
    fixed value as the only choice."""
    space = space or default_space()
    if dimension in space.training:
        return space.training[dimension].model_dump(mode="json", exclude_defaults=True)
    value = TrainParams.model_fields[dimension].get_default(call_default_factory=True)
    return {"type": "categorical", "choices": [value]}


def spec_fields(prefix: tuple[str, ...], spec: dict[str, Any]) -> list[FormField]:
    """ParamSpec's widgets for one dimension, starting from ``spec``."""
    return [replace(field, default=spec.get(field.path[-1], field.default))
            for field in form_fields(ParamSpec, prefix)]


def spec_value(fields: list[FormField], raw: dict[str, Any]) -> dict[str, Any]:
    """One dimension's spec from its widgets: the fields its type uses, without unset ones
    and ParamSpec's own defaults."""
    by_name = {field.path[-1]: field for field in fields}
    kind = raw.get(by_name["type"].key, by_name["type"].default)
    spec: dict[str, Any] = {"type": kind}
    for name in SHOWN.get(kind, ()):
        field = by_name[name]
        value = widget_value(field, raw.get(field.key, field.widget_default()))
        if value is not None and value != ParamSpec.model_fields[name].default:
            spec[name] = value
    return spec


def search_space_value(chosen: list[str], training: dict[str, dict[str, Any]],
                       models: dict[str, dict[str, dict[str, Any]]]) -> dict[str, Any] | None:
    """The config's search_space from the form's parts, None when it is the default one
    (so the written config leaves it out). ``models`` holds the chosen architectures'
    ranges only."""
    value = {"architecture": {"type": "categorical", "choices": list(chosen)},
             "training": training, "models": models}
    default = default_space()
    everything = {**value, "models": {**default.model_dump(mode="json")["models"], **models}}
    try:
        if SearchSpace.model_validate(everything) == default:
            return None
    except ValueError:
        pass  # parse_config reports it, naming the field
    return value


__all__ = ["SEARCH_PATH", "SHOWN", "TRAINING_DIMENSIONS", "architectures", "default_space",
           "default_spec", "search_space_value", "spec_fields", "spec_value"]
