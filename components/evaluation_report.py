"""The evaluation as a report: Markdown (for MLflow beside its figures, and Kubeflow's Markdown
viewer) and self-contained HTML (figures embedded as data URIs, so it renders in MLflow's and
Kubeflow's artifact viewers, which resolve no relative links)."""

from __future__ import annotations

import base64
import html
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from components.evaluate import EvaluationResult

SCALARS = ("miou", "f1_macro", "precision_macro", "recall_macro", "pixel_accuracy")
HEADER = ["class", "IoU", "F1", "precision", "recall", "pixels"]


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def _rows(result: EvaluationResult) -> list[list[str]]:
    return [[c.name, _fmt(c.iou), _fmt(c.f1), _fmt(c.precision), _fmt(c.recall), str(c.support)]
            for c in result.per_class]


def data_uri(png: str | Path) -> str:
    return "data:image/png;base64," + base64.b64encode(Path(png).read_bytes()).decode("ascii")


def _figures(result: EvaluationResult, inline: bool) -> list[tuple[str, str]]:
    """(alt text, src) of the report's figures: file names beside it, or data URIs."""
    figures = [("confusion matrix", result.confusion_png)]
    if result.overlays_png:
        figures.append(("test overlays", result.overlays_png))
    return [(alt, data_uri(path) if inline else Path(path).name) for alt, path in figures]


def markdown_report(result: EvaluationResult, images_inline: bool = False) -> str:
    m = result.metrics
    lines = [f"# Evaluation on the {result.split} split", "",
             f"Model `{result.architecture}`, {result.tile_count} tiles, {result.pixel_count} "
             f"labelled pixels, split digest `{result.split_digest[:16]}`.", "",
             "| mIoU | F1 (macro) | precision (macro) | recall (macro) | pixel accuracy |",
             "| --- | --- | --- | --- | --- |",
             "| " + " | ".join(_fmt(m.get(k)) for k in SCALARS) + " |", "",
             "| " + " | ".join(HEADER) + " |", "|" + " --- |" * len(HEADER)]
    lines += ["| " + " | ".join(r) + " |" for r in _rows(result)]
    for alt, src in _figures(result, images_inline):
        lines += ["", f"![{alt}]({src})"]
    return "\n".join(lines) + "\n"


def html_report(result: EvaluationResult, images_inline: bool = True) -> str:
    m = result.metrics

    def table(header: list[str], rows: list[list[str]]) -> str:
        head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
        body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>"
                       for r in rows)
        return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"

    summary = table(["mIoU", "F1 (macro)", "precision (macro)", "recall (macro)",
                     "pixel accuracy"], [[_fmt(m.get(k)) for k in SCALARS]])
    images = "".join(f'<img src="{src}" alt="{html.escape(alt)}">'
                     for alt, src in _figures(result, images_inline))
    return ("<!doctype html><html><head><meta charset='utf-8'><title>segpipe evaluation</title>"
            "<style>table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;"
            "padding:4px 8px}img{max-width:100%}</style></head><body>"
            f"<h1>Evaluation on the {html.escape(result.split)} split</h1>"
            f"<p>Model <code>{html.escape(result.architecture)}</code>, {result.tile_count} tiles, "
            f"{result.pixel_count} labelled pixels.</p>{summary}"
            f"{table(HEADER, _rows(result))}{images}</body></html>\n")
