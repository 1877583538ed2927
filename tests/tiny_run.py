"""The smallest real pipeline run the tests drive: sample scenes with their classes.json,
32 px tiles, a scene split and a two-level U-Net of 4 filters. A test states only what it
changes (``tiny_run_config(tuning={"epochs": 6})``)."""

from __future__ import annotations

import copy
from typing import Any

import yaml


def _choice(*values: Any) -> dict:
    return {"type": "categorical", "choices": list(values)}


TINY_RUN: dict[str, Any] = {
    "data": {"ingest": {"palette": "classes.json"},
             "tile": {"patch_size": 32, "min_valid_fraction": 0.3},
             "split": {"strategy": "scene", "ratios": [0.5, 0.25, 0.25]}},
    "tuning": {"n_trials": 2, "n_workers": 1, "epochs": 1,
               "search_space": {"architecture": _choice("unet"),
                                "training": {"batch_size": _choice(8)},
                                "models": {"unet": {"depth": _choice(2),
                                                    "filters": _choice(4)}}},
               "train": {"overlay_tiles": 0}},
    # One epoch of a 4-filter U-Net may well not beat the majority class everywhere; the
    # tests that run it still need a champion (the gate's refusal has its own tests).
    "registry": {"promote_below_trivial": True},
}
LEARNING_RATE = {"type": "float", "low": 0.001, "high": 0.01, "log": True}


def _merged(base: dict, over: dict) -> dict:
    merged = copy.deepcopy(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merged(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def tiny_run_config(**sections: Any) -> str:
    """The YAML of TINY_RUN with ``sections`` merged over it, mapping by mapping."""
    return yaml.safe_dump(_merged(TINY_RUN, sections), sort_keys=False)
