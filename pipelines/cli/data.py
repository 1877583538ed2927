"""`segpipe sample-data` and `segpipe prepare`."""

from __future__ import annotations

from pathlib import Path

import typer

from components.ingest_options import IngestOptions
from components.split import SplitOptions
from components.tile import TileOptions
from components.wording import counted
from pipelines.cli.errors import interrupted
from pipelines.cli.flags import flagged_problems, setting_named, with_model_flags


def sample_data(
    out: Path = typer.Argument(..., help="output folder"),
    scenes: int = typer.Option(6, "--scenes", min=1, help="number of scenes"),
    size: int = typer.Option(256, "--size", min=16, help="scene side in pixels"),
    seed: int = typer.Option(0, "--seed", help="random seed (same seed, same bytes)"),
) -> None:
    """Generate a deterministic synthetic georeferenced dataset (R, G, B, DEM GeoTIFFs)."""
    from components.sample_data import generate_sample_dataset

    generate_sample_dataset(out, scenes=scenes, size=size, seed=seed)
    typer.echo(f"wrote {scenes} scenes of {size}x{size} px and classes.json to {out}")


_SECTIONS = {"ingest": IngestOptions, "tile": TileOptions, "split": SplitOptions}


@with_model_flags(_SECTIONS)
def prepare(
    source: str = typer.Argument(..., help="folder, .zip/.tar archive or s3://bucket/prefix"),
    out: Path = typer.Argument(..., help="dataset folder to create (replaced when complete)"),
    config: Path | None = typer.Option(
        None, "--config", "-c", help="a pipeline config whose data section to start from; "
        "the options below override it"),
    *,
    overrides: dict,
) -> None:
    """ingest -> tile -> split -> normalize, without Kubeflow.

    Every option below is a field of the config file's data section (data.ingest,
    data.tile, data.split) with the same name, default and check."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from components.prepare import prepare_dataset
    from pipelines.config_file import ConfigError

    console = Console(highlight=False)
    try:
        options = _prepare_options(config, overrides)
    except ConfigError as err:
        console.print("invalid options:", style="red", end=" ")
        console.print(str(err), markup=False, soft_wrap=True)
        raise typer.Exit(2) from None

    with Progress(TextColumn("{task.description:<10}"), BarColumn(), MofNCompleteColumn(),
                  console=console, transient=False) as bar:
        tasks: dict[str, int] = {}

        def report(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(stage, total=total)
            bar.update(tasks[stage], completed=done, total=total)

        existed = out.exists()
        try:
            summary = prepare_dataset(source, out, options, progress=report)
        except KeyboardInterrupt:
            bar.stop()  # the dataset is replaced whole when complete (components/prepare.py)
            raise interrupted(f"{out} unchanged" if existed
                              else f"nothing written to {out}") from None
        except ValueError as err:
            bar.stop()
            console.print("prepare failed:", style="red", end=" ")
            console.print(setting_named(err, _SECTIONS, as_flag=True), markup=False,
                          soft_wrap=True)
            raise typer.Exit(1) from None
    _print_summary(console, summary)


def _prepare_options(config: Path | None, overrides: dict):
    """The config file's data section (if any) with the flags over it, validated once."""
    from pydantic import ValidationError

    from components.prepare import PrepareOptions
    from pipelines.config_file import ConfigError, read_yaml

    data: dict = {}
    origin = ""  # the error is printed after "invalid options:"
    if config is not None:
        section = read_yaml(config).get("data") or {}
        if not isinstance(section, dict):
            raise ConfigError(f"{config}: data: expected a mapping of sections")
        data = {key: dict(value) if isinstance(value, dict) else value
                for key, value in section.items()}
        origin = f"{config} + options"
    for name, fields in overrides.items():
        base = data.get(name) if isinstance(data.get(name), dict) else {}
        data[name] = {**base, **fields}
    try:
        return PrepareOptions.model_validate(data)
    except ValidationError as err:
        lines = flagged_problems(err, _SECTIONS, origin, prefix="data")
        raise ConfigError("\n".join(lines)) from None


def _print_summary(console, summary) -> None:
    """Splits as columns, classes as rows: the table stays within 80 columns whatever the
    number of classes (long class names are cut, the full names are in classes.json)."""
    from rich.table import Table

    console.print(f"dataset {summary.dataset_dir} ({counted(summary.bands, 'band')})", markup=False,
                  soft_wrap=True)
    if summary.layout:
        console.print(summary.layout, markup=False, soft_wrap=True)
    console.print("image nodata: " + ("none (only NaN pixels are invalid)"
                                      if summary.nodata is None else f"{summary.nodata:g}"),
                  markup=False)
    table = Table(show_edge=False)
    table.add_column("", max_width=40, overflow="ellipsis", no_wrap=True)
    for split_name in summary.splits:
        table.add_column(split_name, justify="right")
    splits = list(summary.splits.values())
    table.add_row("scenes", *(str(s.scenes) for s in splits))
    table.add_row("tiles", *(str(s.tiles) for s in splits), end_section=True)
    for name in summary.classes:
        table.add_row(name, *(f"{100 * s.class_shares[name]:.1f}%" for s in splits))
    console.print(table)
    for message in summary.warnings:
        console.print("warning:", style="yellow", end=" ")
        console.print(message, markup=False, soft_wrap=True)
