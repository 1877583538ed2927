"""Counts in messages that agree with their number: "1 scene has", "3 scenes have"."""

from __future__ import annotations


def counted(n: int, one: str, many: str | None = None) -> str:
    """``n`` and the phrase for that many: ``one`` for 1, else ``many`` (default ``one`` plus
    "s"); counted(1, "mask has", "masks have") -> "1 mask has". Thousands get commas."""
    return f"{n:,} {one if n == 1 else many or one + 's'}"


def listed(items: list[str], most: int = 5) -> str:
    """The first ``most`` of ``items``, comma-separated, and how many more there are."""
    more = f" and {len(items) - most} more" if len(items) > most else ""
    return ", ".join(items[:most]) + more
