"""Evaluate a trained model on the untouched test split.

Exact dataset-level scores from confusion matrices accumulated over every valid pixel
(ignore index honoured), then per-class IoU/F1/precision/recall, mIoU, macro averages and
pixel accuracy, twice:

- scene level, the headline (``miou``, ``iou_<class>``...): each test scene predicted whole at
  native resolution through serving's path (components/scene_evaluation.py), what a user
  gets from ``segpipe predict``; the champion gate and the registry tags use these;
- tile level, for comparison (``tile_miou``, ``tile_iou_<class>``...): each test tile on its
  own, as training's validation sees them (components/tile_evaluation.py).

Ground that overlapping scenes hold with the same pixels and labels is scored at most once
at scene level: with the earlier scene when it is this split's there, not at all when it is
another split's (``repeated_pixels_skipped`` counts the pixels left out, split into
``repeated_pixels_scored_earlier`` and ``repeated_pixels_other_split``).

A class with no pixels in truth or prediction has no score (None, "absent" in the report)
and is left out of the means (the scores and ``EvaluationResult``:
components/evaluation_scores.py). Writes metrics.json, a confusion-matrix figure, overlays and a
Markdown + HTML report, logs them to MLflow and returns them for the Kubeflow wrapper."""

from __future__ import annotations

from pathlib import Path

import mlflow
import numpy as np

from components import tracking
from components.artifacts import SplitName
from components.atomic import atomic_path, write_json, write_text
from components.dataset_paths import PreparedDataset, read_tile
from components.evaluation_report import html_report, markdown_report
from components.evaluation_scores import (
    TILE_PREFIX,
    EvaluationResult,
    class_scores,
    summary_metrics,
)
from components.figures import close, confusion_figure, overlay_figure
from components.register import RegisterOptions, serving_config
from components.scene_evaluation import scene_confusion
from components.split_regions import check_scene_files
from components.tile_evaluation import split_confusion, tile_predictor
from components.train import load_trained_model
from components.training_ground import SEEN_GROUND_METRIC, SEEN_GROUND_TAG, SeenGround
from components.trivial_baseline import (
    TRIVIAL_PREFIX,
    choose_baseline,
    quality_warnings,
    trivial_metrics,
)
from components.wording import counted
from serving.decode import param_defaults
from serving.pixels import normalize_image
from serving.predict import ScenePredictor, keras_predict_fn


def evaluate_model(model_dir: Path, dataset: PreparedDataset, out_dir: Path, *,
                   batch_size: int, overlay_tiles: int, split: SplitName = "test",
                   registry: RegisterOptions | None = None,
                   log_to_mlflow: bool = True) -> EvaluationResult:
    """Score ``model_dir`` on ``split``, by scene and by tile; logs into the caller's active
    MLflow run (a new run "evaluate" when there is none). ``registry`` gives the serving
    options (overlap, batch size) the registered model will have; ``batch_size`` and
    ``overlay_tiles`` are EvaluateOptions' (components/evaluate_options.py)."""
    classes, stats = dataset.class_map, dataset.norm_stats
    model, info = load_trained_model(Path(model_dir))
    if info.num_classes != classes.num_classes or info.in_channels != len(stats.bands):
        raise ValueError(f"{model_dir}: model has {info.num_classes} classes and "
                         f"{counted(info.in_channels, 'band')}, dataset has "
                         f"{classes.num_classes} classes and {counted(len(stats.bands), 'band')}")
    config = serving_config(info, dataset, registry or RegisterOptions())
    predictor = ScenePredictor(keras_predict_fn(model), config)
    result = score_predictor(predictor, dataset, out_dir, split=split,
                             architecture=info.architecture, batch_size=batch_size,
                             overlay_tiles=overlay_tiles)
    save_evaluation(result, dataset, log_to_mlflow=log_to_mlflow)
    return result


def check_split(dataset: PreparedDataset, split: SplitName) -> None:
    """``split`` has tiles, and the ingested scenes to predict whole: before any work."""
    if not dataset.tile_ids(split):
        raise ValueError(f"{dataset.split}: split {split!r} has no tiles to evaluate on")
    check_scene_files(dataset, split)


def score_predictor(predictor: ScenePredictor, dataset: PreparedDataset, out_dir: Path, *,
                    architecture: str, batch_size: int, overlay_tiles: int,
                    split: SplitName = "test", model_uri: str | None = None,
                    seen_ground: SeenGround | None = None) -> EvaluationResult:
    """Score a served model (``predictor``: its forward pass, classes, statistics and
    resolution) on ``split``, by scene and by tile; writes the figures and the reports into
    ``out_dir``, not metrics.json (``save_evaluation``). The dataset's tiles must be of the
    model's window size; its own statistics are not used. ``seen_ground``: how much of the
    split lies on the model's training ground, for the result and its reports."""
    out_dir = Path(out_dir)
    config, classes = predictor.config, dataset.class_map
    check_split(dataset, split)
    tile_ids = dataset.tile_ids(split)
    scenes = scene_confusion(predictor, dataset, split, tta=param_defaults(config)["tta"])
    cm = scenes.confusion
    if not cm.sum():
        raise ValueError(f"{dataset.split}: the {split} split's scenes hold no labelled pixel "
                         f"that the model answered: all ignored or nodata, or covered by "
                         f"tiles of other splits (overlapping tiles with drop_overlaps off)")
    predict = tile_predictor(predictor)
    tile_cm = split_confusion(dataset, split, predict, batch_size)
    names = classes.names
    per_class, tile_per_class = class_scores(cm, names), class_scores(tile_cm, names)
    metrics = {**summary_metrics(cm, names), **summary_metrics(tile_cm, names, TILE_PREFIX)}
    recorded = config.train_majority_class
    baseline = choose_baseline(
        dataset, None if recorded is None else config.class_names.index(recorded), cm)
    majority = baseline.class_id
    # Every score the gate may compare has its baseline (trivial_key names it).
    metrics.update(trivial_metrics(cm, majority, names, TRIVIAL_PREFIX))
    metrics.update(trivial_metrics(tile_cm, majority, names, TILE_PREFIX + TRIVIAL_PREFIX))
    quality_warnings(metrics.get("miou", float("nan")), metrics["trivial_miou"],
                     names[majority], {c.name: c.iou for c in per_class},
                     {c.name: c.support for c in per_class}, f"{split} split",
                     baseline.origin)

    out_dir.mkdir(parents=True, exist_ok=True)
    fig = confusion_figure(cm, classes.names)
    confusion_png = out_dir / "confusion_matrix.png"
    with atomic_path(confusion_png) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    close(fig)
    overlays_png = None
    if overlay_tiles:
        shown = tile_ids[:overlay_tiles]
        tiles = [read_tile(dataset.tiles_dir, i) for i in shown]
        raw = np.stack([image for image, _ in tiles])
        images = normalize_image(raw, config.mean, config.std, config.nodata)
        predicted = predict(raw).astype(np.uint8)
        fig = overlay_figure(images, np.stack([m for _, m in tiles]), predicted,
                             classes.palette(), classes.ignore_index, titles=shown)
        overlays_png = out_dir / "overlays.png"
        with atomic_path(overlays_png) as tmp:
            fig.savefig(tmp, dpi=90, format="png")
        close(fig)

    result = EvaluationResult(
        architecture=architecture, model_uri=model_uri, split=split,
        split_digest=dataset.split_digest(split),
        dataset_digest=dataset.digest(), scene_count=scenes.scene_count,
        tile_count=len(tile_ids), pixel_count=int(cm.sum()),
        repeated_pixels_skipped=scenes.repeated_pixels,
        repeated_pixels_scored_earlier=scenes.repeated_scored_earlier,
        repeated_pixels_other_split=scenes.repeated_other_split,
        tile_pixel_count=int(tile_cm.sum()),
        class_names=names,
        majority_class=names[majority], majority_origin=baseline.origin,
        metrics=metrics, class_iou={c.name: c.iou for c in per_class},
        tile_class_iou={c.name: c.iou for c in tile_per_class}, per_class=per_class,
        tile_per_class=tile_per_class, confusion_matrix=cm.tolist(),
        tile_confusion_matrix=tile_cm.tolist(),
        metrics_path=str(out_dir / "metrics.json"), report_md=str(out_dir / "report.md"),
        report_html=str(out_dir / "report.html"), confusion_png=str(confusion_png),
        overlays_png=str(overlays_png) if overlays_png else None, mlflow_run_id=None,
        seen_ground=seen_ground)
    write_text(result.report_md, markdown_report(result))
    write_text(result.report_html, html_report(result))
    return result


def save_evaluation(result: EvaluationResult, dataset: PreparedDataset, *,
                    log_to_mlflow: bool = True, dataset_source: str | None = None,
                    model_id: str | None = None, final_dir: Path | None = None) -> None:
    """Write metrics.json, after logging the evaluation into the caller's active MLflow run
    (a new run "evaluate" when there is none) if ``log_to_mlflow``: the dataset as an input
    (``dataset_source`` names it where the dataset folder is a temporary one), the split
    summary, the ``<split>_`` metrics (linked to the dataset, and to the logged model
    ``model_id`` if given), the
    reports and figures. ``final_dir``: the folder the files will be moved to from the staging
    folder they were written into; ``result`` and metrics.json name them there."""
    if log_to_mlflow:
        from components.lineage import log_split_summary
        from components.prepare import summarize

        split = result.split
        with tracking.ensure_run("evaluate") as run:
            result.mlflow_run_id = run.info.run_id
            logged = tracking.log_dataset(dataset.root, result.dataset_digest, context=split,
                                          source=dataset_source)
            log_split_summary({name: figures.model_dump()
                               for name, figures in summarize(dataset).splits.items()})
            # Linked to the data too: a logged model's metrics then tell the pipeline's own
            # test figures from evaluations on other data.
            mlflow.log_metrics({f"{split}_{k}": v for k, v in result.metrics.items()},
                               model_id=model_id, dataset=logged)
            mlflow.set_tag("segpipe.test_split_digest", result.split_digest)
            if (seen := result.seen_ground) is not None:
                # Apart from the <split>_ scores: a property of the data, not of the model.
                mlflow.log_metric(SEEN_GROUND_METRIC, seen.seen_ground_share)
                mlflow.set_tag(SEEN_GROUND_TAG, seen.message() if seen.seen_tiles
                               else "held out: no scored tile lies on the training ground")
            for path in (result.report_md, result.report_html, result.confusion_png,
                         result.overlays_png):
                if path:
                    mlflow.log_artifact(path, artifact_path="evaluation")
            mlflow.log_dict(result.model_dump(mode="json"), "evaluation/metrics.json")
    staged = result.metrics_path
    if final_dir is not None:
        for field in ("metrics_path", "report_md", "report_html", "confusion_png",
                      "overlays_png"):
            if (path := getattr(result, field)) is not None:
                setattr(result, field, str(Path(final_dir) / Path(path).name))
    write_json(staged, result.model_dump(mode="json"))
