"""A config section, as a Kubeflow task receives it, back into its step's options model.

Imported inside the Kubeflow components' bodies, so it must not import the kfp SDK (a task's
runtime has only kfp's executor)."""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel

_Options = TypeVar("_Options", bound=BaseModel)


def step_options(model: type[_Options], section: dict[str, Any]) -> _Options:
    """A config section as its step's options model. Kubeflow carries dict parameters as
    protobuf Structs, whose numbers are all doubles: depth 3 arrives as 3.0, which a
    categorical choice or a free-form dict (model params) would keep, so integral floats
    become ints again before validation."""
    return model.model_validate(restore_integers(section))


def restore_integers(value: Any) -> Any:
    """Integral floats inside dicts and lists back to ints (bools and strings untouched)."""
    if isinstance(value, dict):
        return {k: restore_integers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [restore_integers(v) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value
