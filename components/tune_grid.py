"""A search space of few points is searched point by point, each point once.

Optuna's TPE sampler draws its first points at random and may draw one twice: a space with
no more points than ``tuning.n_trials`` (a config that fixes every dimension has one) would
train the same model again, with the same parameters and result. Such a space is
enumerated here; the tune step enqueues each point once and runs that many trials."""

from __future__ import annotations

import itertools
import math
from decimal import Decimal
from typing import Any

from components.tune_space import Choice, ParamSpec, SearchSpace


def _distinct(choices: list[Choice]) -> list[Choice]:
    # By type too: True == 1 for Python, not for a choice.
    kept: list[Choice] = []
    for choice in choices:
        if not any(type(choice) is type(k) and choice == k for k in kept):
            kept.append(choice)
    return kept


def dimension_size(spec: ParamSpec) -> int | None:
    """How many values a trial can draw from ``spec``; None for a continuous range."""
    if spec.type == "categorical":
        return len(_distinct(list(spec.choices or [])))
    if spec.type == "int":
        return (int(spec.high) - int(spec.low)) // int(spec.step or 1) + 1
    if spec.step is None:
        return 1 if spec.low == spec.high else None
    # In decimal, as Optuna counts a stepped float range (0.0 to 0.3 by 0.1: four values).
    return int((Decimal(str(spec.high)) - Decimal(str(spec.low))) // Decimal(str(spec.step))) + 1


def dimension_values(spec: ParamSpec) -> list[Choice]:
    """The values a trial can draw from a finite ``spec`` (``dimension_size`` is not None),
    as Optuna holds them."""
    if spec.type == "categorical":
        return _distinct(list(spec.choices or []))
    if spec.type == "int":
        return list(range(int(spec.low), int(spec.high) + 1, int(spec.step or 1)))
    if spec.step is None:
        return [spec.low]
    low, step = Decimal(str(spec.low)), Decimal(str(spec.step))
    return [float(low + i * step) for i in range(dimension_size(spec) or 0)]


def space_points(space: SearchSpace, limit: int) -> list[dict[str, Any]] | None:
    """Every point of ``space`` as a trial's Optuna params (``architecture``, the training
    dimensions, ``<architecture>.<param>``: what ``sample_params`` suggests), when it has at
    most ``limit`` points; None when it has more, or a continuous dimension."""
    training = [dimension_size(spec) for spec in space.training.values()]
    if None in training:
        return None
    architectures = dimension_values(space.architecture)
    total = 0
    for architecture in architectures:
        sizes = [dimension_size(spec) for spec in space.models.get(architecture, {}).values()]
        if None in sizes:
            return None
        total += math.prod(training) * math.prod(sizes)  # type: ignore[arg-type]
        if total > limit:
            return None
    points = []
    for architecture in architectures:
        names = ["architecture", *space.training]
        values = [[architecture], *map(dimension_values, space.training.values())]
        for name, spec in space.models.get(architecture, {}).items():
            names.append(f"{architecture}.{name}")
            values.append(dimension_values(spec))
        points += [dict(zip(names, combination, strict=True))
                   for combination in itertools.product(*values)]
    return points


def describe_point(params: dict[str, Any]) -> str:
    return ", ".join(f"{name}={value}" for name, value in params.items())
