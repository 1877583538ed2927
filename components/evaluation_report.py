"""The evaluation as a report: Markdown (for MLflow beside its figures, and Kubeflow's Markdown
viewer) and self-contained HTML (figures embedded as data URIs, so it renders in MLflow's and
Kubeflow's artifact viewers, which resolve no relative links)."""

from __future__ import annotations

import base64
import html
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from components.evaluation_scores import EvaluationResult

SCALARS = ("miou", "f1_macro", "precision_macro", "recall_macro", "pixel_accuracy")
SUMMARY = ["mIoU", "F1 (macro)", "precision (macro)", "recall (macro)", "pixel accuracy",
           "tile mIoU", "trivial mIoU"]
HEADER = ["class", "IoU", "F1", "precision", "recall", "pixels", "tile IoU"]


def _fmt(value: float | None, missing: str = "n/a") -> str:
    return missing if value is None else f"{value:.4f}"


def _summary(result: EvaluationResult) -> list[str]:
    m = result.metrics
    # The trivial baseline: a majority class answered everywhere (baseline_line: which).
    return [_fmt(m.get(k)) for k in SCALARS] + [_fmt(m.get("tile_miou")),
                                                _fmt(m.get("trivial_miou"))]


def baseline_line(result: EvaluationResult) -> str | None:
    """Which class the trivial baseline answered, and why that one."""
    if result.majority_class is None:
        return None
    origin = f" ({result.majority_origin})" if result.majority_origin else ""
    return f"trivial baseline: {result.majority_class} everywhere{origin}"


def seen_ground_line(result: EvaluationResult) -> str | None:
    """The warning that part of the scored ground is the model's training ground."""
    seen = result.seen_ground
    return f"warning: {seen.message()}" if seen is not None and seen.seen_tiles else None


def _sentence(line: str) -> str:
    return f"{line[0].upper()}{line[1:]}."


def _rows(result: EvaluationResult) -> list[list[str]]:
    """Scene-level scores per class plus the tile-level IoU; a class in neither truth nor
    prediction is "absent" (left out of the means), not 0."""
    return [[c.name, _fmt(c.iou, "absent"), _fmt(c.f1), _fmt(c.precision), _fmt(c.recall),
             str(c.support), _fmt(result.tile_class_iou.get(c.name), "absent")]
            for c in result.per_class]


def _intro(result: EvaluationResult) -> str:
    # Overlapping scenes of one survey: their shared ground counts at most once, said so.
    repeated = (f"; {result.repeated_pixels_skipped} more repeat earlier scenes' ground with "
                f"the same pixels and labels: {result.repeated_pixels_scored_earlier} scored "
                f"once, with an earlier scene of this split, "
                f"{result.repeated_pixels_other_split} another split's ground, not scored here"
                if result.repeated_pixels_skipped else "")
    return (f"{result.scene_count} scenes predicted whole at native resolution, as served "
            f"({result.pixel_count} scored pixels{repeated}); tile-level figures over "
            f"{result.tile_count} tiles ({result.tile_pixel_count} labelled pixels) for "
            f"comparison")


def _model(result: EvaluationResult) -> str:
    """The architecture, and the logged model's URI when one was scored."""
    return result.architecture + (f" from {result.model_uri}" if result.model_uri else "")


def data_uri(png: str | Path) -> str:
    return "data:image/png;base64," + base64.b64encode(Path(png).read_bytes()).decode("ascii")


def _figures(result: EvaluationResult, inline: bool) -> list[tuple[str, str]]:
    """(alt text, src) of the report's figures: file names beside it, or data URIs."""
    figures = [("confusion matrix", result.confusion_png)]
    if result.overlays_png:
        figures.append(("test overlays", result.overlays_png))
    return [(alt, data_uri(path) if inline else Path(path).name) for alt, path in figures]


def markdown_report(result: EvaluationResult, images_inline: bool = False) -> str:
    lines = [f"# Evaluation on the {result.split} split", "",
             f"Model `{_model(result)}`: {_intro(result)}. Split digest "
             f"`{result.split_digest[:16]}`.", "",
             *([f"**{_sentence(line)}**", ""] if (line := seen_ground_line(result)) else []),
             "| " + " | ".join(SUMMARY) + " |", "|" + " --- |" * len(SUMMARY),
             "| " + " | ".join(_summary(result)) + " |", "",
             *([_sentence(line), ""] if (line := baseline_line(result)) else []),
             "| " + " | ".join(HEADER) + " |", "|" + " --- |" * len(HEADER)]
    lines += ["| " + " | ".join(r) + " |" for r in _rows(result)]
    for alt, src in _figures(result, images_inline):
        lines += ["", f"![{alt}]({src})"]
    return "\n".join(lines) + "\n"


def html_report(result: EvaluationResult, images_inline: bool = True) -> str:
    def table(header: list[str], rows: list[list[str]]) -> str:
        head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
        body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>"
                       for r in rows)
        return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"

    summary = table(SUMMARY, [_summary(result)])
    line = baseline_line(result)
    baseline = f"<p>{html.escape(_sentence(line))}</p>" if line else ""
    seen = seen_ground_line(result)
    seen_html = f"<p><strong>{html.escape(_sentence(seen))}</strong></p>" if seen else ""
    images = "".join(f'<img src="{src}" alt="{html.escape(alt)}">'
                     for alt, src in _figures(result, images_inline))
    return ("<!doctype html><html><head><meta charset='utf-8'><title>segpipe evaluation</title>"
            "<style>table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;"
            "padding:4px 8px}img{max-width:100%}</style></head><body>"
            f"<h1>Evaluation on the {html.escape(result.split)} split</h1>"
            f"<p>Model <code>{html.escape(_model(result))}</code>: "
            f"{html.escape(_intro(result))}.</p>{seen_html}{summary}{baseline}"
            f"{table(HEADER, _rows(result))}{images}</body></html>\n")
