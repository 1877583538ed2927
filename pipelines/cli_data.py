"""`segpipe sample-data` and `segpipe prepare` (issue 2 fills these in)."""

from __future__ import annotations

from pathlib import Path

import typer


def sample_data(out: Path = typer.Argument(..., help="output folder")) -> None:
    """Generate a deterministic synthetic georeferenced dataset."""
    raise typer.Exit("not built yet")


def prepare(source: str = typer.Argument(...), out: Path = typer.Argument(...)) -> None:
    """ingest -> tile -> split -> normalize, without Kubeflow."""
    raise typer.Exit("not built yet")
