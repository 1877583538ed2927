"""docs/configuration.md is generated from the options models and kept current."""

from __future__ import annotations

import re
from pathlib import Path

from pipelines.config_reference import COMMAND, render, type_name

REPO_ROOT = Path(__file__).resolve().parents[2]
PAGE = REPO_ROOT / "docs" / "configuration.md"


def test_the_committed_page_is_what_the_models_say():
    assert PAGE.read_text() == render(), f"docs/configuration.md is stale: run `{COMMAND}`"


def test_the_page_states_fields_defaults_and_checks():
    text = render()
    tile = text.split("\n## data.tile\n", 1)[1].split("\n## ", 1)[0]
    assert "| `patch_size` | int | `256` | (≥ 8; ≤ 8192) |" in tile
    assert "| `source` | text | **required** |" in text
    assert "| `cache` | true/false | `true` |" in text
    # every section link lands on a heading (GitHub's anchors: lower case, dots dropped)
    headings = {h.replace(".", "").lower() for h in re.findall(r"^#+ (\S+)", text, re.M)}
    links = set(re.findall(r"\]\(#([^)]+)\)", text))
    assert links and links <= headings
    # the examples are the shipped configs, verbatim
    assert (REPO_ROOT / "pipelines" / "configs" / "example.yaml").read_text() in text


def test_type_names_read_as_a_config_author_writes_them():
    from typing import Literal

    assert type_name(int | None) == "int or unset"
    assert type_name(list[str | int]) == "list of (text or int)"
    assert type_name(Literal["scene", "block"]) == "`scene` \\| `block`"
    assert type_name(tuple[float, float, float]) == "3 × number"
    assert type_name(dict[int, int]) == "mapping int → int"


# A valid value other than the default for every TrainParams field: the test below fails
# when a field is added without one, so that the new field is checked too.
_OTHER_TRAIN_VALUES = {
    "architecture": "deeplabv3plus", "model_params": {"base_filters": 8}, "epochs": 5,
    "batch_size": 4, "learning_rate": 0.01, "lr_schedule": "constant", "warmup_epochs": 1,
    "encoder_warmup_epochs": 1, "weight_decay": 0.01, "loss": "ce", "augment": "d4",
    "crop_size": 64, "class_weights": "balanced", "max_class_weight": 5.0,
    "early_stopping_patience": 2, "seed": 3, "overlay_every": 2, "overlay_tiles": 2,
    "cache_budget_mb": 64, "accelerate": "off",
}


def test_the_page_marks_exactly_the_training_fields_tuning_refuses():
    from pydantic import ValidationError

    from components.train_options import TrainParams
    from components.tune_options import TuneOptions

    assert set(_OTHER_TRAIN_VALUES) == set(TrainParams.model_fields)
    refused = set()
    for name, value in _OTHER_TRAIN_VALUES.items():
        assert value != TrainParams.model_fields[name].default
        TrainParams.model_validate({name: value})  # valid for the train step itself
        try:
            TuneOptions.model_validate({"train": {name: value}})
        except ValidationError as err:
            assert f"train.{name}:" in str(err)
            refused.add(name)
    table = render().split("\n## tuning.train\n", 1)[1].split("\n## ", 1)[0]
    marked = set(re.findall(r"^\| `(\w+)` \|.*\| \*\*(?:not settable|searched)\*\*", table,
                            re.M))
    assert refused == marked
    assert {"epochs", "batch_size", "learning_rate", "loss", "architecture"} <= marked
