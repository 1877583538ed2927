"""Counts in messages agree with their number."""

from __future__ import annotations

from components.wording import counted


def test_one_is_singular_and_every_other_count_plural():
    assert counted(1, "file") == "1 file"
    assert counted(0, "file") == "0 files"
    assert counted(2, "mask has", "masks have") == "2 masks have"
    assert counted(1, "mask has", "masks have") == "1 mask has"
    assert counted(12_345, "scene") == "12,345 scenes"
