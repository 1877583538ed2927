"""`segpipe evaluate`: score a logged model on a labelled dataset
(components/evaluate_logged.py)."""

from __future__ import annotations

from pathlib import Path

import typer

from components.evaluate_options import (
    EvaluateOptions,
    EvaluationInputError,
    check_options_apply,
    check_out_folder,
)
from components.ingest_options import IngestOptions
from pipelines.cli.errors import cleanup_on_sigterm, fail
from pipelines.cli.flags import flagged_problems, with_model_flags
from pipelines.cli.paths import check_writable_folder
from pipelines.cli.store import DEFAULT_MODEL_URI, use_store

_SECTIONS = {"evaluate": EvaluateOptions, "ingest": IngestOptions}


@with_model_flags(_SECTIONS)
def evaluate(
    data: str = typer.Argument(..., help="prepared dataset folder (segpipe prepare), or a "
                               "source of scenes and labels: folder, .zip/.tar archive or "
                               "s3://bucket/prefix"),
    out: Path = typer.Option(..., "--out", help="folder for metrics.json, report.md, "
                             "report.html and the figures"),
    model_uri: str = typer.Option(DEFAULT_MODEL_URI, "--model-uri",
                                  help="registered model, runs:/ URI or local model folder"),
    tracking_uri: str | None = typer.Option(None, "--tracking-uri",
                                            help="MLflow tracking URI (default: environment)"),
    *,
    overrides: dict,
) -> None:
    """Score a logged model on a labelled dataset: per-class IoU and F1, mIoU.

    A prepared dataset is scored on one split (--split, default test); a source is ingested
    and tiled the model's way into a hidden folder beside --out (removed afterwards) and
    scored whole. The model normalizes with its own statistics. Scenes are predicted whole
    as `segpipe predict` does (the headline figures); tiles on their own for comparison."""
    options, ingest = _options(overrides)
    check_writable_folder("--out", out)
    if "://" not in data and not Path(data).exists():
        raise fail(f"DATA {data}: no such file or folder", 2)
    try:
        check_options_apply(data, options, ingest)
        check_out_folder(out, data)
    except EvaluationInputError as err:
        raise fail(err, 2) from None
    use_store(model_uri, tracking_uri)
    from mlflow.exceptions import MlflowException

    # TensorFlow is imported (quietly) once the data has been checked against the model.
    from components.evaluate_logged import evaluate_logged_model

    typer.echo(f"evaluating {model_uri} on {data}", err=True)
    before = _results_stamp(out)
    try:
        with cleanup_on_sigterm():
            result = evaluate_logged_model(model_uri, data, out, options, ingest)
    except KeyboardInterrupt:
        raise fail(_interrupted(out, before), 130) from None
    except SystemExit as stop:
        if stop.code == 143:  # SIGTERM, see cleanup_on_sigterm
            raise fail(_interrupted(out, before), 143) from None
        raise
    except EvaluationInputError as err:
        raise fail(err, 2) from None
    except (ValueError, OSError, MlflowException) as err:
        raise fail(str(err).splitlines()[0] if str(err) else type(err).__name__, 1) from None
    _print_scores(result)


def _results_stamp(out: Path) -> bytes | None:
    """The results' metrics.json as it is, to tell after an interrupt which set --out holds
    (the set is replaced whole: components/evaluate_logged.py)."""
    try:
        return (out / "metrics.json").read_bytes()
    except OSError:
        return None


def _interrupted(out: Path, before: bytes | None) -> str:
    now = _results_stamp(out)
    if now is not None and now != before:
        return f"interrupted after the results were written: {out} holds this evaluation's"
    if before is not None:
        return f"interrupted: {out} keeps the previous evaluation's results, unchanged"
    return f"interrupted: no results written to {out}"


def _options(overrides: dict) -> tuple[EvaluateOptions, IngestOptions | None]:
    """The flags validated by their models (exit 2 naming each bad flag); ingest options
    only when one was given."""
    from pydantic import ValidationError

    validated = {}
    for section, model in _SECTIONS.items():
        try:
            validated[section] = model.model_validate(overrides.get(section, {}))
        except ValidationError as err:
            lines = flagged_problems(err, _SECTIONS, "options", section=section)
            raise fail("; ".join(lines), 2) from None
    options = validated["evaluate"]
    ingest = validated["ingest"] if "ingest" in overrides else None
    return options, ingest


def _print_scores(result) -> None:
    """Scene-level scores per class (the headline), the tile-level IoU beside them, and
    where the report went."""
    from rich.console import Console
    from rich.table import Table

    from components.evaluation_report import baseline_line

    def fmt(value: float | None) -> str:
        return "absent" if value is None else f"{value:.4f}"

    console = Console(highlight=False)
    repeated = (f", {result.repeated_pixels_skipped} px of repeated ground left out: "
                f"{result.repeated_pixels_scored_earlier} scored with an earlier scene, "
                f"{result.repeated_pixels_other_split} another split's"
                if result.repeated_pixels_skipped else "")
    table = Table(show_edge=False, title=f"{result.split} split: {result.scene_count} scenes "
                  f"({result.pixel_count} px{repeated}), {result.tile_count} tiles",
                  title_justify="left")
    for column in ("class", "IoU", "F1", "precision", "recall", "pixels", "tile IoU"):
        table.add_column(column, justify="left" if column == "class" else "right",
                         max_width=30 if column == "class" else None, overflow="ellipsis")
    for scores in result.per_class:
        table.add_row(scores.name, fmt(scores.iou), fmt(scores.f1), fmt(scores.precision),
                      fmt(scores.recall), str(scores.support),
                      fmt(result.tile_class_iou.get(scores.name)))
    console.print(table)
    metrics = result.metrics
    console.print(f"mIoU {fmt(metrics.get('miou'))}  F1 (macro) {fmt(metrics.get('f1_macro'))}  "
                  f"pixel accuracy {fmt(metrics.get('pixel_accuracy'))}  "
                  f"tile mIoU {fmt(metrics.get('tile_miou'))}  "
                  f"trivial mIoU {fmt(metrics.get('trivial_miou'))}", markup=False,
                  soft_wrap=True)
    if baseline := baseline_line(result):
        console.print(baseline, markup=False, soft_wrap=True)
    if (seen := result.seen_ground) is not None and seen.seen_tiles:
        # Again under the figures it qualifies: the warning above scrolls away.
        console.print(f"not held out: {seen.seen_ground_share:.0%} of the scored tiles' "
                      f"pixels lie on the model's training ground", style="yellow",
                      markup=False, soft_wrap=True)
    console.print(f"report: {result.report_md} (metrics.json, report.html and figures beside "
                  f"it)", markup=False, soft_wrap=True)
    if result.mlflow_run_id:
        console.print(f"MLflow run: {result.mlflow_run_id}", markup=False)
