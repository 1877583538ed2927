"""`segpipe sample-data` and `segpipe prepare`."""

from __future__ import annotations

from pathlib import Path

import typer


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


def _ratios(text: str) -> tuple[float, float, float]:
    try:
        parts = tuple(float(p) for p in text.split(","))
    except ValueError as err:
        raise typer.BadParameter(f"{text!r}: expected three numbers like 0.7,0.15,0.15") from err
    if len(parts) != 3:
        raise typer.BadParameter(f"{text!r}: expected three numbers like 0.7,0.15,0.15")
    return parts  # type: ignore[return-value]


def _pair(text: str) -> tuple[int, int]:
    raw, _, class_id = text.partition("=")
    try:
        return int(raw), int(class_id)
    except ValueError as err:
        raise typer.BadParameter(f"{text!r}: expected RAW=ID, e.g. 255=1") from err


def _palette(palette: str | None) -> str | None:
    """'auto', 'classes.json', 'none', or a path to a JSON palette / classes file."""
    if palette is None:
        return "auto"
    if palette.lower() == "none":
        return None
    if palette not in ("auto", "classes.json") and not Path(palette).is_file():
        raise typer.BadParameter(f"{palette}: no such palette file")
    return palette


def prepare(
    source: str = typer.Argument(..., help="folder, .zip/.tar archive or s3://bucket/prefix"),
    out: Path = typer.Argument(..., help="dataset folder to create (replaced when complete)"),
    patch_size: int = typer.Option(256, "--patch-size", help="tile side in pixels"),
    stride: int | None = typer.Option(None, "--stride", help="tile step (default: patch size)"),
    overlap: float | None = typer.Option(None, "--overlap",
                                         help="tile overlap in [0, 1) (or --stride)"),
    scale: float = typer.Option(1.0, "--scale", help="resample scenes by this factor first"),
    min_valid: float = typer.Option(0.5, "--min-valid",
                                    help="drop tiles with a smaller valid (non-nodata) share"),
    split: str = typer.Option("scene", "--split", help="random | scene | block"),
    ratios: str = typer.Option("0.7,0.15,0.15", "--ratios", help="train,val,test"),
    seed: int = typer.Option(0, "--seed", help="split seed"),
    block_size: int | None = typer.Option(None, "--block-size",
                                          help="block side in pixels (--split block)"),
    palette: str | None = typer.Option(
        None, "--palette", help="auto | classes.json | none | PATH to a JSON palette"),
    classes_file: Path | None = typer.Option(None, "--classes",
                                             help="classes.json with class names/colours"),
    mask_dir: list[str] = typer.Option([], "--mask-dir",
                                       help="extra mask folder name beside images/"),
    color_tolerance: int = typer.Option(40, "--color-tolerance",
                                        help="JPEG colour masks: max channel distance"),
    class_names: str | None = typer.Option(None, "--class-names",
                                           help="comma-separated names for class ids 0..K-1"),
    class_value: list[str] = typer.Option([], "--class-value",
                                          help="RAW=ID: map a mask value to a class id"),
    ignore_value: list[int] = typer.Option([], "--ignore-value",
                                           help="mask value to ignore (repeatable)"),
    ignore_color: list[str] = typer.Option([], "--ignore-color",
                                           help="mask colour #RRGGBB to ignore (repeatable)"),
) -> None:
    """ingest -> tile -> split -> normalize, without Kubeflow."""
    from pydantic import ValidationError
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from components.ingest import IngestOptions
    from components.prepare import PrepareOptions, prepare_dataset
    from components.split import SplitOptions
    from components.tile import TileOptions
    from pipelines.params import stride_for

    console = Console()
    try:
        if overlap is not None and stride is None:
            stride = stride_for(patch_size, overlap)
        options = PrepareOptions(
            ingest=IngestOptions(
                mask_dir_names=[*mask_dir, *IngestOptions.model_fields["mask_dir_names"].default],
                palette=_palette(palette),
                classes_file=str(classes_file) if classes_file else None,
                color_tolerance=color_tolerance, ignore_values=ignore_value,
                class_names=class_names.split(",") if class_names else None,
                class_values=dict(_pair(v) for v in class_value) or None,
                ignore_colors=ignore_color),
            tile=TileOptions(patch_size=patch_size, stride=stride, scale=scale,
                             min_valid_fraction=min_valid),
            split=SplitOptions(strategy=split, ratios=_ratios(ratios), seed=seed,
                               block_size=block_size))
    except (ValidationError, ValueError, OSError) as err:
        console.print(f"[red]invalid options:[/red] {err}", soft_wrap=True)
        raise typer.Exit(2) from err

    with Progress(TextColumn("{task.description:<10}"), BarColumn(), MofNCompleteColumn(),
                  console=console, transient=False) as bar:
        tasks: dict[str, int] = {}

        def report(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(stage, total=total)
            bar.update(tasks[stage], completed=done, total=total)

        try:
            summary = prepare_dataset(source, out, options, progress=report)
        except ValueError as err:
            bar.stop()
            console.print(f"[red]prepare failed:[/red] {err}", soft_wrap=True)
            raise typer.Exit(1) from err
    _print_summary(console, summary)


def _print_summary(console, summary) -> None:
    from rich.table import Table

    table = Table(title=f"dataset {summary.dataset_dir} ({summary.bands} bands)")
    table.add_column("split")
    table.add_column("scenes", justify="right")
    table.add_column("tiles", justify="right")
    for name in summary.classes:
        table.add_column(name, justify="right")
    for split_name, s in summary.splits.items():
        table.add_row(split_name, str(s.scenes), str(s.tiles),
                      *(f"{100 * s.class_shares[c]:.1f}%" for c in summary.classes))
    console.print(table)
    for message in summary.warnings:
        console.print(f"[yellow]warning:[/yellow] {message}")
