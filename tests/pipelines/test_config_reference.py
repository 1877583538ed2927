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
