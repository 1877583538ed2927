"""Counts in messages that agree with their number: "1 scene has", "3 scenes have"."""

from __future__ import annotations

from serving.wording import counted

__all__ = ["counted", "listed"]


def listed(items: list[str], most: int = 5) -> str:
    """The first ``most`` of ``items``, comma-separated, and how many more there are."""
    more = f" and {len(items) - most} more" if len(items) > most else ""
    return ", ".join(items[:most]) + more
