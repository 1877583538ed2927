"""`segpipe serve` and `segpipe predict` (issue 6 fills these in)."""

from __future__ import annotations

from pathlib import Path

import typer


def serve(model_uri: str = typer.Option("models:/segpipe@champion", "--model-uri")) -> None:
    """Start the MLflow scoring server on a model."""
    raise typer.Exit("not built yet")


def predict(input: Path = typer.Argument(...), out: Path = typer.Option(..., "--out")) -> None:
    """Predict a georeferenced mask for a scene of any size."""
    raise typer.Exit("not built yet")
