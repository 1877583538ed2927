"""Counts in messages that agree with their number: "1 band", "3 bands" (components/wording.py
takes it from here: serving/ is packaged with the model alone)."""

from __future__ import annotations


def counted(n: int, one: str, many: str | None = None) -> str:
    """``n`` and the phrase for that many: ``one`` for 1, else ``many`` (default ``one`` plus
    "s"); counted(1, "mask has", "masks have") -> "1 mask has". Thousands get commas."""
    return f"{n:,} {one if n == 1 else many or one + 's'}"
