"""A search space of few points: enumerated as the trials' Optuna params, each point once."""

from __future__ import annotations

import pytest

from components.tune_grid import dimension_size, dimension_values, space_points
from components.tune_space import ParamSpec, SearchSpace, cat


@pytest.mark.parametrize(("spec", "values"), [
    (cat(8, 8, 16), [8, 16]),
    (cat(1, True, 0, False), [1, True, 0, False]),  # equal to Python, not as choices
    (ParamSpec(type="int", low=2, high=2), [2]),
    (ParamSpec(type="int", low=16, high=64, step=16), [16, 32, 48, 64]),
    (ParamSpec(type="int", low=0, high=7, step=3), [0, 3, 6]),  # Optuna stops at 6 too
    (ParamSpec(type="float", low=0.0, high=0.3, step=0.1), [0.0, 0.1, 0.2, 0.3]),
    (ParamSpec(type="float", low=1e-3, high=1e-3, log=True), [1e-3]),
])
def test_finite_dimensions_list_what_a_trial_can_draw(spec, values):
    assert dimension_size(spec) == len(values)
    assert dimension_values(spec) == values
    assert [type(v) for v in dimension_values(spec)] == [type(v) for v in values]


def test_a_continuous_range_has_no_size():
    assert dimension_size(ParamSpec(type="float", low=1e-4, high=1e-2, log=True)) is None


def _space(**unet) -> SearchSpace:
    return SearchSpace(architecture=cat("unet", "attention_unet"),
                       training={"batch_size": cat(8)},
                       models={"unet": {"filters": cat(8), **unet},
                               "attention_unet": {"depth": ParamSpec(type="int", low=2,
                                                                     high=3)}})


def test_each_architecture_counts_its_own_dimensions():
    points = space_points(_space(), limit=3)
    assert points == [
        {"architecture": "unet", "batch_size": 8, "unet.filters": 8},
        {"architecture": "attention_unet", "batch_size": 8, "attention_unet.depth": 2},
        {"architecture": "attention_unet", "batch_size": 8, "attention_unet.depth": 3}]
    assert space_points(_space(), limit=2) is None  # more points than trials: sampled
    continuous = _space(dropout=ParamSpec(type="float", low=0.0, high=0.5))
    assert space_points(continuous, limit=100) is None


def test_a_huge_space_is_not_enumerated_to_find_out():
    huge = SearchSpace(architecture=cat("unet"),
                       training={"learning_rate": ParamSpec(type="float", low=0.0, high=1.0,
                                                            step=1e-12)},
                       models={"unet": {}})
    assert space_points(huge, limit=20) is None
