"""`segpipe demo|run|compile|submit` (issue 5 fills these in)."""

from __future__ import annotations

from pathlib import Path

import typer


def demo(workdir: Path = typer.Option(Path("demo-workdir"))) -> None:
    """Sample data -> whole pipeline locally -> champion model."""
    raise typer.Exit("not built yet")


def run(config: Path = typer.Option(..., "--config")) -> None:
    """Run the pipeline locally through Kubeflow's local runner."""
    raise typer.Exit("not built yet")


def compile_pipeline(out: Path = typer.Option(Path("pipeline.yaml"), "--out")) -> None:
    """Compile the pipeline to Kubeflow IR YAML."""
    raise typer.Exit("not built yet")


def submit(host: str = typer.Option(..., "--host")) -> None:
    """Submit the pipeline to a Kubeflow Pipelines API."""
    raise typer.Exit("not built yet")
